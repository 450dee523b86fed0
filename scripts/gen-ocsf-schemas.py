#!/usr/bin/env python3
"""Generate the OCSF JSON Schemas the Rust tests validate normalized events against.

The output is committed under tests/fixtures/ocsf/<version>/ so that `cargo test` needs neither
Python nor network access. Regenerate after changing the classes or profiles the normalizer can
emit (shared/src/ocsf/), or when moving to a new OCSF version:

    python3 -m venv .venv
    .venv/bin/pip install -r scripts/requirements-ocsf.txt
    .venv/bin/python scripts/gen-ocsf-schemas.py            # writes the fixtures
    .venv/bin/python scripts/gen-ocsf-schemas.py --check    # fails if the fixtures are stale

Output:
  <class_uid>_<profiles joined by '+'>.json
      A self-contained draft 2020-12 schema (every object embedded under $defs, local $refs
      only, additionalProperties false) built by `ocsf-json-schema` from the compiled OCSF export
      bundled in that package.
  captions.json
      The enum captions JSON Schema cannot check (class, category, activity, severity, status,
      and the few nested enums the normalizer fills), taken from the same export. The Rust tests
      compare every emitted caption sibling with it, independently of the normalizer's own tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

VERSION = "1.8.0"

# (class_uid, profile sets) the normalizer can emit. Every event declares `cloud`; sign-ins add
# `host` when the record has device details and `security_control` when it has a visible risk level.
SIGNIN_PROFILE_SETS = [
    ["cloud"],
    ["cloud", "host"],
    ["cloud", "security_control"],
    ["cloud", "host", "security_control"],
]
EMITTED = {
    3002: SIGNIN_PROFILE_SETS,  # Authentication
    3001: [["cloud"]],  # Account Change
    3004: [["cloud"]],  # Entity Management
    3005: [["cloud"]],  # User Access Management
    3006: [["cloud"]],  # Group Management
    6003: [["cloud"]],  # API Activity
    5003: [["cloud"]],  # User Inventory Info (identity inventory)
    5023: [["cloud"]],  # Cloud Resources Inventory Info (apps, roles, policies, inbox rules)
    2003: [["cloud"]],  # Compliance Finding (the Identity Security Assessment's findings)
}

# Nested enums whose captions the normalizer emits: (object name, attribute).
OBJECT_ENUMS = [
    ("user", "type_id"),
    ("account", "type_id"),
    ("os", "type_id"),
    ("device", "type_id"),
    ("managed_entity", "type_id"),
    ("auth_factor", "factor_type_id"),
    ("observable", "type_id"),
    ("fingerprint", "algorithm_id"),
    ("compliance", "status_id"),
]
# Class-level enums besides activity/severity/status: (class name, attribute).
CLASS_ENUMS = [
    ("authentication", "auth_protocol_id"),
    ("authentication", "logon_type_id"),
    ("authentication", "risk_level_id"),
]


def captions(enum: dict) -> dict[str, str]:
    return {k: v["caption"] for k, v in sorted(enum.items(), key=lambda kv: int(kv[0]))}


def build(out_dir: Path) -> dict[str, str]:
    compiled = get_ocsf_schema(VERSION)
    gen = OcsfJsonSchemaEmbedded(compiled)
    files: dict[str, str] = {}

    for class_uid, profile_sets in sorted(EMITTED.items()):
        name = gen.lookup_class_name_from_uid(class_uid)
        for profiles in profile_sets:
            schema = gen.get_class_schema(name, profiles)
            fname = f"{class_uid}_{'+'.join(profiles)}.json"
            files[fname] = json.dumps(schema, indent=1, sort_keys=True) + "\n"

    classes = {}
    for cls in compiled["classes"].values():
        if cls["uid"] not in EMITTED:
            continue
        attrs = cls["attributes"]
        classes[str(cls["uid"])] = {
            "name": cls["name"],
            "caption": cls["caption"],
            "category_uid": cls["category_uid"],
            "category_name": cls["category_name"],
            "activity_id": captions(attrs["activity_id"]["enum"]),
            "severity_id": captions(attrs["severity_id"]["enum"]),
            "status_id": captions(attrs["status_id"]["enum"]),
        }
    objects = {
        f"{obj}.{attr}": captions(compiled["objects"][obj]["attributes"][attr]["enum"])
        for obj, attr in OBJECT_ENUMS
    }
    for cls, attr in CLASS_ENUMS:
        objects[f"{cls}.{attr}"] = captions(compiled["classes"][cls]["attributes"][attr]["enum"])
    doc = {"version": VERSION, "classes": classes, "enums": objects}
    files["captions.json"] = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args()

    repo = Path(__file__).resolve().parent.parent
    out_dir = repo / "tests" / "fixtures" / "ocsf" / VERSION
    files = build(out_dir)

    if args.check:
        stale = [f for f, text in files.items() if not (out_dir / f).is_file() or (out_dir / f).read_text() != text]
        extra = sorted(p.name for p in out_dir.glob("*.json") if p.name not in files) if out_dir.is_dir() else []
        for f in stale:
            print(f"stale: {f}", file=sys.stderr)
        for f in extra:
            print(f"not generated any more: {f}", file=sys.stderr)
        return 1 if stale or extra else 0

    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.json"):
        if old.name not in files:
            old.unlink()
    total = 0
    for fname, text in sorted(files.items()):
        (out_dir / fname).write_text(text)
        total += len(text)
        print(f"{len(text):>9}  {fname}")
    print(f"{total:>9}  total in {out_dir.relative_to(repo)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
