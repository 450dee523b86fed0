//! The DynamoDB rights the stack grants are the calls the code makes.
//!
//! moto does not enforce IAM, so a store operation added without its action in
//! `infra/template.yaml` passes every test and fails in production with `AccessDenied` (the
//! inventory and the seen pages needed `Query` and `BatchWriteItem` on the cursor table). This
//! test reads the SDK calls of the DynamoDB cursor store (everything the pollers run against
//! the cursor table) from its source and checks that both pollers' roles allow each of them on
//! that table, and that the operators' documented rights in `infra/README.md` cover them too.

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
    let called = actions_called(&cursor_store_source());
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
