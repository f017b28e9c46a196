use super::*;
use crate::graph::incidents::{RootCause, resolve_root_cause};

#[test]
fn workflow_trace_id_matches_the_collector_receiver() {
    // python3: hashlib.sha256(b"15891415591t").hexdigest()[:32]
    assert_eq!(
        crate::ids::encode_hex(&workflow_trace_id(1589141559, 1)),
        "4b088c714b8ad2c2dfc4e5b68e8379f8"
    );
    assert_eq!(
        crate::ids::encode_hex(&workflow_trace_id(30433642, 2)),
        "88e30cd3b8bca59cdf6ff36211417b26"
    );
}

#[test]
fn root_cause_lines() {
    let body = "Checkout fails.\n\nRoot Cause: `9c0832b26219b10b65f2a64ef32be97e2e28f8da`\n";
    assert_eq!(
        root_cause(body).as_deref(),
        Some("9c0832b26219b10b65f2a64ef32be97e2e28f8da")
    );
    assert!(matches!(
        resolve_root_cause("deployment 145988746"),
        RootCause::Deployment(145988746)
    ));
    assert!(matches!(
        resolve_root_cause("#42"),
        RootCause::Deployment(42)
    ));
    assert!(matches!(
        resolve_root_cause("9c0832b"),
        RootCause::Unresolved
    ));
    assert_eq!(root_cause("no cause here"), None);
}

#[test]
fn a_force_push_does_not_chain_from_the_replaced_history() {
    let payload = |forced: bool| {
        serde_json::json!({"ref": "refs/heads/x", "before": "1111111111111111111111111111111111111111",
            "after": "2222222222222222222222222222222222222222", "forced": forced,
            "repository": {"full_name": "acme/widgets"},
            "commits": [{"id": "2222222222222222222222222222222222222222", "message": "m"}]})
        .to_string()
    };
    let parents = |forced| {
        let e = Event::parse("push", payload(forced).as_bytes()).unwrap();
        plan(&e, "incident")
            .unwrap()
            .into_iter()
            .filter(|op| matches!(op, Op::Link(l) if l.relation == "parent"))
            .count()
    };
    assert_eq!(parents(false), 1);
    assert_eq!(parents(true), 0);
}

#[test]
fn versions_order_by_time_then_rank() {
    assert!(version(Some(2), 1, "") > version(Some(1), 3, ""));
    assert!(version(Some(1), 3, "") > version(Some(1), 1, ""));
}
