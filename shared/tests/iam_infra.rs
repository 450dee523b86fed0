//! The DynamoDB rights the stack grants are the calls the code makes.
//!
//! moto does not enforce IAM, so a store operation added without its action in
//! `infra/template.yaml` passes every test and fails in production with `AccessDenied` (the
//! inventory and the seen pages needed `Query` and `BatchWriteItem` on the cursor table). This
//! test reads the SDK calls of the DynamoDB cursor store (everything the pollers run against
//! the cursor table) from its source and checks that both pollers' roles allow each of them on
//! that table, and that the operators' documented rights in `infra/README.md` cover them too.
//!
//! It also checks the separation of the cloud groups in DynamoDB: each poller's role names
//! only its own group's cursor table (and its function is configured with that table), and
//! may update a tenant record's health attributes only, exactly those the code writes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// The IAM action of each DynamoDB SDK call a store may make.
const CALLS: [(&str, &[&str]); 9] = [
    ("get_item", &["dynamodb:GetItem"]),
    ("put_item", &["dynamodb:PutItem"]),
    ("update_item", &["dynamodb:UpdateItem"]),
    ("delete_item", &["dynamodb:DeleteItem"]),
    ("query", &["dynamodb:Query"]),
    ("scan", &["dynamodb:Scan"]),
    ("batch_write_item", &["dynamodb:BatchWriteItem"]),
    ("batch_get_item", &["dynamodb:BatchGetItem"]),
    (
        "transact_write_items",
        &[
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        ],
    ),
];

/// The IAM actions of the SDK calls (`.client.<call>()`, possibly split over lines) in `src`.
fn actions_called(src: &str) -> BTreeSet<String> {
    let compact: String = src.split_whitespace().collect();
    let mut out = BTreeSet::new();
    for (call, actions) in CALLS {
        if compact.contains(&format!(".{call}()")) {
            out.extend(actions.iter().map(|a| a.to_string()));
        }
    }
    out
}

/// The cursor store's source: `impl DynamoCursorStore` onwards in `dynamo.rs` (the registry
/// comes before it), and its modules for the inventory and the seen pages.
fn cursor_store_source() -> String {
    cursor_store_source_without(&[])
}

/// [`cursor_store_source`] without the modules named in `skip`. The registry's report
/// attributes (`report_state.rs`) are never part of it: they are the registry's.
fn cursor_store_source_without(skip: &[&str]) -> String {
    let main = read("src/aws/dynamo.rs");
    let start = main
        .find("impl DynamoCursorStore {")
        .expect("the cursor store's impl in dynamo.rs");
    let end = main.find("#[cfg(test)]").unwrap_or(main.len());
    assert!(start < end, "the cursor store comes before the tests");
    let mut src = main[start..end].to_string();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aws/dynamo");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name != "report_state.rs" && !skip.contains(&name)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 2, "inventory.rs and pages.rs");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let end = text.find("#[cfg(test)]").unwrap_or(text.len());
        src.push_str(&text[..end]);
    }
    src
}

/// The actions of each statement of the role `role` in the template: (sid, actions, resource).
fn statements(template: &str, role: &str) -> Vec<(String, BTreeSet<String>, String)> {
    let start = template
        .find(&format!("\n  {role}:\n"))
        .unwrap_or_else(|| panic!("role {role} in the template"));
    let body = &template[start + role.len() + 4..];
    let end = body
        .lines()
        .position(|l| {
            l.len() > 2 && l.starts_with("  ") && !l.starts_with("   ") && l.ends_with(':')
        })
        .unwrap_or(usize::MAX);
    let lines: Vec<&str> = body.lines().take(end).collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(sid) = l.trim().strip_prefix("- Sid: ") else {
            continue;
        };
        let rest = lines[i + 1..]
            .iter()
            .take_while(|l| !l.trim().starts_with("- Sid: "));
        let mut actions = BTreeSet::new();
        let mut resource = String::new();
        for l in rest {
            let t = l.trim();
            if let Some(a) = t.strip_prefix("Action: ") {
                let a = a.trim_start_matches('[').trim_end_matches(']');
                actions.extend(a.split(',').map(|x| x.trim().to_string()));
            } else if let Some(r) = t.strip_prefix("Resource: ") {
                resource = r.to_string();
            }
        }
        out.push((sid.to_string(), actions, resource));
    }
    out
}

#[test]
fn the_actions_are_read_from_the_code() {
    let called = actions_called(&cursor_store_source());
    // The cursor store reads and commits cursors, and queries and batch-writes the items kept
    // beside them: if the parser found none of these, it is broken, not the code.
    for a in [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
    ] {
        assert!(called.contains(a), "{a} not found in {called:?}");
    }
    assert_eq!(
        actions_called("self.client\n  .query()\n .table_name(t)"),
        BTreeSet::from(["dynamodb:Query".to_string()])
    );
}

#[test]
fn both_pollers_may_make_every_call_of_the_cursor_store_on_the_cursor_table() {
    let called = actions_called(&cursor_store_source());
    let template = read("../infra/template.yaml");
    for role in ["PollerRole", "PollerGcchRole"] {
        let granted: BTreeSet<String> = statements(&template, role)
            .into_iter()
            .filter(|(_, _, resource)| resource.contains("CursorTable"))
            .flat_map(|(_, actions, _)| actions)
            .collect();
        let missing: Vec<&String> = called.difference(&granted).collect();
        assert!(
            missing.is_empty(),
            "{role} lacks {missing:?} on the cursor table"
        );
    }
}

#[test]
fn the_operators_documented_rights_cover_the_cursor_store() {
    // The sign-in digests are written by the pollers only (`UpdateItem ADD`); operators
    // remove them with the tenant's other items when offboarding with purge.
    let called = actions_called(&cursor_store_source_without(&["digest.rs"]));
    let readme = read("../infra/README.md");
    let para = readme
        .split("\n\n")
        .find(|p| p.contains("The operator's credentials"))
        .expect("the operators' rights in infra/README.md");
    let on_cursors = para
        .split("on the cursor table")
        .next()
        .and_then(|p| p.rsplit("and `GetItem`").next())
        .expect("the cursor table's actions");
    for a in &called {
        let name = a.trim_start_matches("dynamodb:");
        assert!(
            on_cursors.contains(&format!("`{name}`")) || name == "GetItem",
            "the operators' rights on the cursor table lack {name}"
        );
    }
}

/// The raw text of statement `sid` of role `role`.
fn statement_text(template: &str, role: &str, sid: &str) -> String {
    let start = template
        .find(&format!("\n  {role}:\n"))
        .unwrap_or_else(|| panic!("role {role} in the template"));
    let body = &template[start..];
    let at = body
        .find(&format!("- Sid: {sid}\n"))
        .unwrap_or_else(|| panic!("{role} has no statement {sid}"));
    let rest = &body[at + 1..];
    let end = rest.find("- Sid: ").unwrap_or(rest.len());
    rest[..end].to_string()
}

/// The value of environment variable `var` of the function `function` in the template.
fn function_env(template: &str, function: &str, var: &str) -> String {
    let start = template
        .find(&format!("\n  {function}:\n"))
        .unwrap_or_else(|| panic!("function {function} in the template"));
    let body = &template[start + 1..];
    body.lines()
        .skip(1)
        .take_while(|l| !(l.starts_with("  ") && !l.starts_with("   ") && l.ends_with(':')))
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{var}: "))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("{function} has no {var}"))
}

#[test]
fn each_groups_functions_reach_only_their_own_cursor_table() {
    let template = read("../infra/template.yaml");
    for (role, function, table, other) in [
        (
            "PollerRole",
            "PollerFunction",
            "CursorTable",
            "CursorTableUsgov",
        ),
        (
            "PollerGcchRole",
            "PollerGcchFunction",
            "CursorTableUsgov",
            "CursorTable",
        ),
        (
            "ActionsRole",
            "ActionsFunction",
            "CursorTable",
            "CursorTableUsgov",
        ),
        (
            "ActionsGcchRole",
            "ActionsGcchFunction",
            "CursorTableUsgov",
            "CursorTable",
        ),
        (
            "ReportRole",
            "ReportFunction",
            "CursorTable",
            "CursorTableUsgov",
        ),
        (
            "ReportGcchRole",
            "ReportGcchFunction",
            "CursorTableUsgov",
            "CursorTable",
        ),
    ] {
        let dynamo: Vec<_> = statements(&template, role)
            .into_iter()
            .filter(|(_, actions, _)| actions.iter().any(|a| a.starts_with("dynamodb:")))
            .collect();
        assert!(!dynamo.is_empty(), "{role} has DynamoDB rights");
        for (sid, _, resource) in &dynamo {
            assert!(
                resource == &format!("!GetAtt {table}.Arn")
                    || resource == "!GetAtt RegistryTable.Arn",
                "{role} {sid}: {resource} is not its own group's table nor the registry"
            );
            assert!(!resource.contains(&format!("{other}.")) && !resource.contains('*'));
        }
        assert!(
            dynamo
                .iter()
                .any(|(_, _, r)| r == &format!("!GetAtt {table}.Arn")),
            "{role} may use {table}"
        );
        assert_eq!(
            function_env(&template, function, "ITDR_CURSOR_TABLE"),
            format!("!Ref {table}"),
            "{function} is configured with its group's table"
        );
    }
}

/// The attributes `DynamoRegistry::update_health` names: the key, the attributes it sets and
/// the ones its condition reads.
fn health_update_attributes() -> BTreeSet<String> {
    let src = read("src/aws/dynamo.rs");
    let start = src.find("async fn update_health(").expect("update_health");
    let body = &src[start..];
    let body = &body[..body.find("\n    }\n").unwrap_or(body.len())];
    let mut out = BTreeSet::new();
    for (marker, end) in [
        (".update_expression(\"SET ", '"'),
        ("attribute_exists(", ')'),
    ] {
        for part in body.split(marker).skip(1) {
            let text = &part[..part.find(end).unwrap_or(part.len())];
            for assignment in text.split(',') {
                let name = assignment.split('=').next().unwrap_or("").trim();
                if !name.is_empty() {
                    out.insert(name.to_string());
                }
            }
        }
    }
    for cond in ["attribute_not_exists(", "\"rev = :rev\""] {
        if body.contains(cond) {
            out.insert("rev".to_string());
        }
    }
    out.insert(
        body.split(".key(\"")
            .nth(1)
            .and_then(|k| k.split('"').next())
            .expect("the key attribute")
            .to_string(),
    );
    out
}

#[test]
fn pollers_may_update_only_the_health_attributes_of_a_tenant_record() {
    let written = health_update_attributes();
    assert!(
        written.contains("health") && written.contains("tenant_id") && written.contains("rev"),
        "the parser found {written:?}"
    );
    let template = read("../infra/template.yaml");
    for role in ["PollerRole", "PollerGcchRole"] {
        let on_registry: Vec<_> = statements(&template, role)
            .into_iter()
            .filter(|(_, _, r)| r == "!GetAtt RegistryTable.Arn")
            .collect();
        let updates: Vec<_> = on_registry
            .iter()
            .filter(|(_, a, _)| a.iter().any(|x| x != "dynamodb:GetItem"))
            .collect();
        assert_eq!(
            updates.len(),
            1,
            "{role}: one statement writes the registry"
        );
        let (sid, actions, _) = updates[0];
        assert_eq!(
            actions,
            &BTreeSet::from(["dynamodb:UpdateItem".to_string()]),
            "{role}: the registry is only updated, never put or deleted"
        );
        let text = statement_text(&template, role, sid);
        assert!(
            text.contains("ForAllValues:StringEquals:"),
            "{role}: {text}"
        );
        let listed: BTreeSet<String> = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("dynamodb:Attributes: "))
            .expect("dynamodb:Attributes condition")
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|a| a.trim().to_string())
            .collect();
        assert_eq!(
            listed, written,
            "{role}: the attributes update_health writes"
        );
    }
}

// ---- The report functions (the Identity Security Assessment on AWS).

/// The source of a file without its tests.
fn source_without_tests(rel: &str) -> String {
    let text = read(rel);
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end].to_string()
}

/// The DynamoDB actions a report role holds on `table`.
fn granted_on(template: &str, role: &str, table: &str) -> BTreeSet<String> {
    statements(template, role)
        .into_iter()
        .filter(|(_, _, resource)| resource.contains(table))
        .flat_map(|(_, actions, _)| actions)
        .filter(|a| a.starts_with("dynamodb:"))
        .collect()
}

#[test]
fn the_report_roles_hold_exactly_the_dynamodb_calls_the_report_makes() {
    // The report function reads the cursor table through two queries (the inventory
    // summaries, `query_prefix`; the sign-in digests, `days`), and writes nothing there.
    let digest = source_without_tests("src/aws/dynamo/digest.rs");
    let days = &digest[digest.find("async fn days(").expect("days() in digest.rs")..];
    assert!(
        days.contains("query_sort_keys"),
        "digests are read by a Query"
    );
    let on_cursors = BTreeSet::from(["dynamodb:Query".to_string()]);
    // On the registry: the records (`list`: Scan; `get`: GetItem), and the report state and
    // contact (report_state.rs: GetItem, and UpdateItem for `record_report`; `set_contact` is
    // the operator's, not the function's, and is the same action).
    let state = source_without_tests("src/aws/dynamo/report_state.rs");
    let mut on_registry = actions_called(&state);
    on_registry.insert("dynamodb:Scan".into());
    assert_eq!(
        on_registry,
        BTreeSet::from([
            "dynamodb:GetItem".to_string(),
            "dynamodb:Scan".to_string(),
            "dynamodb:UpdateItem".to_string(),
        ])
    );
    let template = read("../infra/template.yaml");
    for role in ["ReportRole", "ReportGcchRole"] {
        assert_eq!(
            granted_on(&template, role, "CursorTable"),
            on_cursors,
            "{role} on the cursor table"
        );
        assert_eq!(
            granted_on(&template, role, "RegistryTable"),
            on_registry,
            "{role} on the registry"
        );
        let sqs: BTreeSet<String> = statements(&template, role)
            .into_iter()
            .flat_map(|(_, actions, resource)| {
                actions
                    .into_iter()
                    .filter(|a| a.starts_with("sqs:"))
                    .map(move |a| format!("{a} {resource}"))
            })
            .collect();
        assert_eq!(
            sqs,
            BTreeSet::from(["sqs:SendMessage !GetAtt EventsQueue.Arn".to_string()]),
            "{role}: the findings go to the events queue only"
        );
    }
}

/// What the actions functions run against the cursor table: the action log's `record`
/// (`dynamo/actions.rs` before `list`, which only operators' tools call) and the request ids
/// (`dynamo/requests.rs` before its registry look-up).
fn actions_function_cursor_source() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aws/dynamo");
    let log = std::fs::read_to_string(dir.join("actions.rs")).unwrap();
    let record = &log[..log.find("async fn list").expect("ActionLog::list")];
    let requests = std::fs::read_to_string(dir.join("requests.rs")).unwrap();
    let claims = &requests[..requests
        .find("impl DynamoRegistry")
        .expect("the registry look-up in requests.rs")];
    format!("{record}{claims}")
}

#[test]
fn both_actions_functions_may_make_exactly_the_calls_of_the_action_log_and_request_ids() {
    let called = actions_function_cursor_source();
    let called = actions_called(&called);
    // Not vacuous: the record and the claims are PutItems, the claim's read a GetItem.
    assert_eq!(
        called,
        BTreeSet::from([
            "dynamodb:GetItem".to_string(),
            "dynamodb:PutItem".to_string()
        ])
    );
    let template = read("../infra/template.yaml");
    for role in ["ActionsRole", "ActionsGcchRole"] {
        let st = statements(&template, role);
        let on = |table: &str| -> BTreeSet<String> {
            st.iter()
                .filter(|(_, _, resource)| resource.contains(table))
                .flat_map(|(_, actions, _)| actions.iter().cloned())
                .collect()
        };
        assert_eq!(on("CursorTable"), called, "{role} on the cursor table");
        // The registry is only read: a tenant by id, or by its domain's guard item.
        assert_eq!(
            on("RegistryTable"),
            BTreeSet::from(["dynamodb:GetItem".to_string()]),
            "{role} on the registry"
        );
        // Events only: no dead letters, no jobs, no other queue.
        let sends: Vec<&String> = st
            .iter()
            .filter(|(_, actions, _)| actions.contains("sqs:SendMessage"))
            .map(|(_, _, resource)| resource)
            .collect();
        assert_eq!(sends, ["!GetAtt EventsQueue.Arn"], "{role} sends to");
    }
}
