//! Links, reports and DORA are a pure function of the stored facts: the shapes of
//! history people have (a rebase merge that is deployed, an amend after a force-push, a
//! session whose commits land in two pull requests, the window rules, a fork's PR and a
//! reused branch name), each with its telemetry and webhook deliveries arriving in four
//! orders — as given, reversed and two fixed shuffles — in a fresh server each time. Every
//! order reads the same as the first, and the first reads the figures the shape should
//! give.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::common::fixture;
use super::links::{
    BASE_TIP, DEV, FEATURE_1, FEATURE_2, app, at, base_push, claude_commit_event, deployed, dora,
    feature_push, kv, merged_pull, push_to, session,
};
use super::reports::{CLAUDE_1, CLAUDE_2, Commit, REPO, ZERO, deliver, orders};

/// One thing tracelink receives.
enum Step {
    /// A signed webhook delivery: the event and its payload.
    Webhook(&'static str, Value),
    /// An OTLP/JSON request to `/v1/{signal}`.
    Otlp(&'static str, Vec<u8>),
}

fn webhook(event: &'static str, body: Value) -> Step {
    Step::Webhook(event, body)
}

fn traces(body: &Value) -> Step {
    Step::Otlp("traces", body.to_string().into_bytes())
}

fn logs(body: &Value) -> Step {
    Step::Otlp("logs", body.to_string().into_bytes())
}

/// A file of `tests/fixtures/otlp/`, sent to the signal its name ends with.
fn otlp_fixture(file: &str) -> Step {
    let signal = match file.rsplit('-').next() {
        Some("traces.json") => "traces",
        Some("logs.json") => "logs",
        Some("metrics.json") => "metrics",
        _ => panic!("{file}: no signal"),
    };
    Step::Otlp(signal, fixture(file))
}

/// What to read once everything has arrived.
struct Reads<'a> {
    /// Commits to read through the commit API.
    commits: &'a [&'a str],
    /// Pull requests whose JSON report to read.
    pulls: &'a [i64],
    /// Whether to read the DORA keys of 2026-11-20 (production).
    dora: bool,
}

/// What one arrival order read.
#[derive(Debug)]
struct Outcome {
    /// Per commit: its `sessions`, `agent_assisted` and `pull_requests` in the commit API.
    commits: BTreeMap<String, Value>,
    /// Per pull request: its JSON report.
    pulls: BTreeMap<i64, Value>,
    /// The DORA keys (`null` when not read).
    dora: Value,
}

impl Outcome {
    fn as_json(&self) -> Value {
        json!({
            "commits": self.commits,
            "pulls": self.pulls.iter().map(|(n, r)| (n.to_string(), r.clone())).collect::<BTreeMap<_, _>>(),
            "dora": self.dora,
        })
    }

    /// `(session, evidence, original)` of every session the commit API links to `sha`.
    fn links(&self, sha: &str) -> Vec<(String, String, Option<String>)> {
        self.commits[sha]["sessions"]
            .as_array()
            .unwrap_or_else(|| panic!("{sha}: {}", self.commits[sha]))
            .iter()
            .map(|s| {
                (
                    s["session_key"].as_str().unwrap().to_string(),
                    s["evidence"].as_str().unwrap().to_string(),
                    s["original"].as_str().map(str::to_string),
                )
            })
            .collect()
    }

    fn commit(&self, sha: &str) -> &Value {
        &self.commits[sha]
    }

    fn report(&self, number: i64) -> &Value {
        &self.pulls[&number]
    }

    /// The SHAs the report of `number` lists as the PR's commits.
    fn pr_commits(&self, number: i64) -> Vec<&str> {
        self.pulls[&number]["commits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["sha"].as_str().unwrap())
            .collect()
    }
}

fn link(session: &str, evidence: &str, original: Option<&str>) -> (String, String, Option<String>) {
    (
        session.to_string(),
        evidence.to_string(),
        original.map(str::to_string),
    )
}

/// The JSON paths where `a` and `b` differ, with both values.
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (u, v) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                differences(u, v, &format!("{path}.{k}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                differences(u, v, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} ≠ {b}")),
        _ => {}
    }
}

async fn read(app: &super::common::TestApp, reads: &Reads<'_>) -> Outcome {
    let mut commits = BTreeMap::new();
    for sha in reads.commits {
        let (status, c) = app
            .get_json(&format!("/api/v1/repos/{REPO}/commits/{sha}"))
            .await;
        assert_eq!(status, 200, "{sha}: {c}");
        commits.insert(
            sha.to_string(),
            json!({
                "sessions": c["sessions"],
                "agent_assisted": c["agent_assisted"],
                "pull_requests": c["pull_requests"],
            }),
        );
    }
    let mut pulls = BTreeMap::new();
    for number in reads.pulls {
        let (status, r) = app
            .get_json(&format!(
                "/api/v1/repos/{REPO}/pulls/{number}/report?format=json"
            ))
            .await;
        assert_eq!(status, 200, "#{number}: {r}");
        pulls.insert(*number, r);
    }
    let dora = if reads.dora {
        dora(app).await
    } else {
        Value::Null
    };
    Outcome {
        commits,
        pulls,
        dora,
    }
}

/// Sends `steps` in four orders (as given, reversed, two fixed shuffles), each to a fresh
/// server; once every delivery is applied and every session's links are stored, reads
/// `reads`. Asserts that every order read the same as the first; returns the first.
async fn in_every_order(steps: &[Step], reads: &Reads<'_>) -> Outcome {
    let n = steps.len();
    let all = orders(n, 4);
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b, "four different orders");
        }
    }
    let deliveries = steps
        .iter()
        .filter(|s| matches!(s, Step::Webhook(..)))
        .count() as u64;
    let mut seen: Vec<(Vec<usize>, Outcome)> = Vec::new();
    for order in all {
        let mut app = app().await;
        for &i in &order {
            match &steps[i] {
                Step::Webhook(event, body) => deliver(&app, event, &format!("o{i}"), body).await,
                Step::Otlp(signal, body) => {
                    let r = app
                        .post(
                            &format!("/v1/{signal}"),
                            "application/json",
                            body.clone(),
                            &[],
                        )
                        .await;
                    assert_eq!(r.status(), 200, "step {i}");
                }
            }
        }
        app.applied(deliveries).await;
        app.linked_up().await;
        let outcome = read(&app, reads).await;
        app.stop().await;
        seen.push((order, outcome));
    }
    let mut seen = seen.into_iter();
    let (first_order, first) = seen.next().unwrap();
    let expected = first.as_json();
    for (order, outcome) in seen {
        let mut diff = Vec::new();
        differences(&expected, &outcome.as_json(), "", &mut diff);
        assert!(
            diff.is_empty(),
            "order {order:?} reads differently from {first_order:?}:\n{}",
            diff.join("\n")
        );
    }
    first
}

/// `links::session` with token usage on each of its spans and a priced model (gpt-4.1:
/// $2 input, $8 output per million tokens): 250k input and 25k output tokens a span,
/// $0.70 a span.
fn priced_session(conversation: &str, times: &[i64], files: &[&str]) -> Value {
    let mut s = session(conversation, times, files, None);
    for span in s["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array_mut()
        .unwrap()
    {
        let attrs = span["attributes"].as_array_mut().unwrap();
        for a in attrs.iter_mut() {
            if a["key"] == "gen_ai.request.model" {
                a["value"]["stringValue"] = json!("gpt-4.1");
            }
        }
        attrs.push(json!({"key": "gen_ai.usage.input_tokens", "value": {"intValue": "250000"}}));
        attrs.push(json!({"key": "gen_ai.usage.output_tokens", "value": {"intValue": "25000"}}));
    }
    s
}

/// A Claude Code session at 10:00 in `repository`: a Bash `tool_result` naming `sha` after
/// a git commit, and one `api_request` that cost `cost` USD.
fn claude_session(key: &str, sha: &str, repository: &str, cost: f64) -> Value {
    let mut body = claude_commit_event(key, sha, repository);
    body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "timeUnixNano": at(10, 0).to_string(),
            "body": {"stringValue": "claude_code.api_request"},
            "attributes": [kv("event.name", "api_request"), kv("session.id", key),
                kv("user.email", DEV), kv("model", "claude-sonnet-4-6"),
                {"key": "cost_usd", "value": {"doubleValue": cost}}]
        }));
    body
}

const OWN_REPO: &str = "https://github.com/acme/widgets.git";

/// The keys of one side of the DORA split with no incidents: `(deployments,
/// deployments_per_day, changes, lead_time_median_hours)`.
fn keys(deployments: u64, per_day: f64, changes: u64, lead_hours: Option<f64>) -> Value {
    json!({
        "deployments": deployments, "deployments_per_day": per_day, "changes": changes,
        "lead_time_median_hours": lead_hours, "failed_deployments": 0,
        "change_failure_rate": if deployments > 0 { json!(0.0) } else { Value::Null },
        "incidents_restored": 0, "time_to_restore_median_hours": null,
    })
}

/// GitHub's rebase merge of the feature branch (10:10 and 10:20, inside the agent's
/// session), its copies on main committed by GitHub at 12:00, the last copy deployed at
/// 13:00. The copies carry the session (`merged`), the PR carries the session's whole
/// cost, and DORA counts the deployment agent-assisted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_rebase_merge_does_not_depend_on_arrival_order() {
    let copy_1 = "c100000000000000000000000000000000000001";
    let copy_2 = "c200000000000000000000000000000000000002";
    let mut steps = vec![
        traces(&priced_session(
            "conv-rebase",
            &[at(10, 0), at(10, 30)],
            &["src/a.rs"],
        )),
        webhook("push", base_push()),
        webhook("push", feature_push()),
        // The copies keep the author time and message; GitHub commits them.
        webhook(
            "push",
            push_to(
                "main",
                BASE_TIP,
                &[
                    (copy_1, at(10, 10), "Part one", true),
                    (copy_2, at(10, 20), "Part two", true),
                ],
            ),
        ),
        webhook("pull_request", merged_pull(6, FEATURE_2, copy_2, at(12, 0))),
    ];
    steps.extend(
        deployed(1, copy_2, at(13, 0))
            .into_iter()
            .map(|(e, b)| webhook(e, b)),
    );
    let seen = in_every_order(
        &steps,
        &Reads {
            commits: &[BASE_TIP, FEATURE_1, FEATURE_2, copy_1, copy_2],
            pulls: &[6],
            dora: true,
        },
    )
    .await;

    assert_eq!(seen.links(BASE_TIP), vec![], "08:00: before the session");
    for sha in [FEATURE_1, FEATURE_2] {
        assert_eq!(
            seen.links(sha),
            vec![link("conv-rebase", "window", None)],
            "{sha}"
        );
        assert_eq!(seen.commit(sha)["pull_requests"], json!([6]));
    }
    assert_eq!(
        seen.links(copy_1),
        vec![link("conv-rebase", "merged", Some(FEATURE_1))]
    );
    // The last copy is also the PR's merge result: it stands for the PR's commits.
    let last = seen.links(copy_2);
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(
        (last[0].0.as_str(), last[0].1.as_str()),
        ("conv-rebase", "merged")
    );
    assert!(
        [Some(FEATURE_1), Some(FEATURE_2)].contains(&last[0].2.as_deref()),
        "{last:?}"
    );
    for sha in [copy_1, copy_2] {
        assert_eq!(seen.commit(sha)["agent_assisted"], true, "{sha}");
    }
    assert_eq!(seen.commit(BASE_TIP)["agent_assisted"], false);

    let r = seen.report(6);
    assert_eq!(seen.pr_commits(6), vec![FEATURE_1, FEATURE_2], "{r}");
    assert_eq!(r["totals"]["sessions"], 1, "{r}");
    assert_eq!(r["totals"]["commits"], 2, "{r}");
    assert_eq!(r["totals"]["agent_commits"], 2, "{r}");
    // Two spans at $0.70: both of the session's commits are the PR's.
    assert_eq!(r["sessions"][0]["cost_usd"], 1.4, "{r}");
    assert_eq!(r["sessions"][0]["cost_in_pr_usd"], 1.4, "{r}");
    assert_eq!(r["totals"]["cost_usd"], 1.4, "{r}");
    assert_eq!(r["totals"]["cost_estimated"], true, "{r}");
    assert_eq!(r["deployments"][0]["id"], 1, "{r}");
    assert_eq!(r["timing"]["merge_to_deploy_seconds"]["production"], 3600);
    assert_eq!(r["timing"]["first_session_to_merge_seconds"], 7200);

    // The deployment at 13:00 shipped the base (08:00, a person's: 5 h) and the two
    // copies, each from its own author time (a rebased copy keeps its original's): 2 h
    // 50 min and 2 h 40 min, median 2.75 h.
    let d = &seen.dora;
    assert_eq!(d["all"], keys(1, 1.0, 3, Some(2.83)), "{d}");
    assert_eq!(d["not_agent_assisted"], keys(0, 0.0, 1, Some(5.0)), "{d}");
    assert_eq!(d["agent_assisted"], keys(1, 1.0, 2, Some(2.75)), "{d}");
}

/// A rebase merge whose first commit an agent session made (it names it) and whose
/// second a person made (11:00, after the session): GitHub gives the last copy as the
/// PR's `merge_commit_sha`, but it is a copy of the person's commit only. It carries no
/// session, is not agent-assisted, and its change starts at its own author time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebase_merges_last_copy_is_a_copy_not_the_whole_pull_request() {
    let copy_1 = "c100000000000000000000000000000000000001";
    let copy_2 = "c200000000000000000000000000000000000002";
    let mut steps = vec![
        logs(&claude_session("claude-one", FEATURE_1, OWN_REPO, 0.5)),
        webhook("push", base_push()),
        webhook(
            "push",
            push_to(
                "feature",
                BASE_TIP,
                &[
                    (FEATURE_1, at(10, 10), "Part one", false),
                    (FEATURE_2, at(11, 0), "Part two", false),
                ],
            ),
        ),
        webhook(
            "push",
            push_to(
                "main",
                BASE_TIP,
                &[
                    (copy_1, at(10, 10), "Part one", true),
                    (copy_2, at(11, 0), "Part two", true),
                ],
            ),
        ),
        webhook("pull_request", merged_pull(6, FEATURE_2, copy_2, at(12, 0))),
    ];
    steps.extend(
        deployed(1, copy_2, at(13, 0))
            .into_iter()
            .map(|(e, b)| webhook(e, b)),
    );
    let seen = in_every_order(
        &steps,
        &Reads {
            commits: &[FEATURE_1, FEATURE_2, copy_1, copy_2],
            pulls: &[6],
            dora: true,
        },
    )
    .await;

    assert_eq!(
        seen.links(FEATURE_1),
        vec![link("claude-one", "event", None)]
    );
    assert_eq!(seen.links(FEATURE_2), vec![], "after the session");
    assert_eq!(
        seen.links(copy_1),
        vec![link("claude-one", "merged", Some(FEATURE_1))]
    );
    assert_eq!(
        seen.links(copy_2),
        vec![],
        "a copy of the person's commit, not of the agent's"
    );
    assert_eq!(seen.commit(copy_2)["agent_assisted"], false);
    let r = seen.report(6);
    assert_eq!(r["totals"]["sessions"], 1, "{r}");
    assert_eq!(r["totals"]["agent_commits"], 1, "{r}");
    assert_eq!(r["totals"]["cost_usd"], 0.5, "{r}");

    // Shipped at 13:00: copy 1 (the agent's, 2 h 50 min), copy 2 (the person's, from its
    // own 11:00: 2 h) and the base (5 h).
    let d = &seen.dora;
    assert_eq!(d["agent_assisted"], keys(1, 1.0, 1, Some(2.83)), "{d}");
    assert_eq!(d["not_agent_assisted"], keys(0, 0.0, 2, Some(3.5)), "{d}");
    assert_eq!(d["all"], keys(1, 1.0, 3, Some(2.83)), "{d}");
}

/// `git commit --amend` and a force-push: the replacement (same author, author time and
/// message) carries the session that named its original (`merged`), and the PR whose
/// head it is carries that session's cost, though the original is not the PR's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amend_after_a_force_push_does_not_depend_on_arrival_order() {
    use super::histories::pull;
    let amended = "f1b0000000000000000000000000000000000001";
    let mut force_push = push_to(
        "feature",
        FEATURE_1,
        &[(amended, at(9, 0), "Part one", false)],
    );
    force_push["forced"] = json!(true);
    let steps = vec![
        webhook("push", base_push()),
        webhook(
            "push",
            push_to(
                "feature",
                BASE_TIP,
                &[(FEATURE_1, at(9, 0), "Part one", false)],
            ),
        ),
        webhook("push", force_push),
        webhook("pull_request", pull(8, REPO, "feature", amended)),
        // At 10:00: too late to explain either commit by time.
        logs(&claude_session("claude-amend", FEATURE_1, OWN_REPO, 0.25)),
    ];
    let seen = in_every_order(
        &steps,
        &Reads {
            commits: &[BASE_TIP, FEATURE_1, amended],
            pulls: &[8],
            dora: false,
        },
    )
    .await;

    assert_eq!(seen.links(BASE_TIP), vec![]);
    assert_eq!(
        seen.links(FEATURE_1),
        vec![link("claude-amend", "event", None)]
    );
    assert_eq!(
        seen.links(amended),
        vec![link("claude-amend", "merged", Some(FEATURE_1))]
    );
    assert_eq!(seen.commit(amended)["agent_assisted"], true);
    assert_eq!(seen.commit(amended)["pull_requests"], json!([8]));
    assert_eq!(
        seen.commit(FEATURE_1)["pull_requests"],
        json!([]),
        "what the force-push replaced is not the PR's"
    );

    let r = seen.report(8);
    assert_eq!(seen.pr_commits(8), vec![amended], "{r}");
    assert_eq!(r["totals"]["sessions"], 1, "{r}");
    assert_eq!(r["totals"]["agent_commits"], 1, "{r}");
    assert_eq!(r["sessions"][0]["session_id"], "claude-amend", "{r}");
    // The amended commit takes over its original's share: all of it.
    assert_eq!(r["sessions"][0]["cost_in_pr_usd"], 0.25, "{r}");
    assert_eq!(r["totals"]["cost_usd"], 0.25, "{r}");
}

/// One Claude Code session names two commits, each in its own pull request: each PR
/// carries half the session's cost, and the halves add up to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_in_two_pull_requests_does_not_depend_on_arrival_order() {
    use super::reports::{pull, push};
    let commit = |sha, at| Commit {
        sha,
        message: "change",
        at,
        email: DEV,
        login: "dev",
        files: &[],
    };
    let steps = vec![
        otlp_fixture("claude-code-metrics.json"),
        otlp_fixture("claude-code-logs.json"),
        webhook(
            "push",
            push(
                "refs/heads/one",
                ZERO,
                &[commit(CLAUDE_1, "2026-11-20T09:13:48Z")],
            ),
        ),
        webhook(
            "push",
            push(
                "refs/heads/two",
                ZERO,
                &[commit(CLAUDE_2, "2026-11-20T09:31:27Z")],
            ),
        ),
        webhook(
            "pull_request",
            pull("opened", 11, CLAUDE_1, "one", "2026-11-20T10:00:00Z", None),
        ),
        webhook(
            "pull_request",
            pull("opened", 12, CLAUDE_2, "two", "2026-11-20T10:00:00Z", None),
        ),
    ];
    let seen = in_every_order(
        &steps,
        &Reads {
            commits: &[CLAUDE_1, CLAUDE_2],
            pulls: &[11, 12],
            dora: false,
        },
    )
    .await;

    const SESSION: &str = "82c3495f-998e-457a-875a-8643b934dd9c";
    for (sha, number) in [(CLAUDE_1, 11), (CLAUDE_2, 12)] {
        assert_eq!(seen.links(sha), vec![link(SESSION, "event", None)], "{sha}");
        assert_eq!(seen.commit(sha)["pull_requests"], json!([number]));
    }
    let mut total = 0.0;
    for (number, sha) in [(11, CLAUDE_1), (12, CLAUDE_2)] {
        let r = seen.report(number);
        assert_eq!(seen.pr_commits(number), vec![sha], "{r}");
        assert_eq!(r["totals"]["sessions"], 1, "#{number}: {r}");
        assert_eq!(r["totals"]["agent_commits"], 1, "#{number}: {r}");
        assert_eq!(r["sessions"][0]["cost_usd"], 0.365276, "the session's own");
        assert_eq!(r["sessions"][0]["cost_in_pr_usd"], 0.182638, "#{number}");
        assert_eq!(r["totals"]["cost_usd"], 0.182638, "#{number}: {r}");
        total += r["totals"]["cost_usd"].as_f64().unwrap();
    }
    assert!((total - 0.365276).abs() < 1e-6, "{total}");
}

/// The window rules: the agent's session (10:00–10:30 on src/a.rs) explains its author's
/// commits a minute before it and inside the grace period, never the merge GitHub made
/// in between; a session starting five minutes after a commit (14:00, 14:05) did not make
/// it. Deployed at 12:00 and 16:00.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_rules_do_not_depend_on_arrival_order() {
    const C1: &str = "a100000000000000000000000000000000000001";
    const C2: &str = "a200000000000000000000000000000000000002";
    const C3: &str = "a300000000000000000000000000000000000003";
    const D1: &str = "d100000000000000000000000000000000000001";
    let mut steps = vec![
        traces(&session(
            "conv-a",
            &[at(10, 0), at(10, 30)],
            &["src/a.rs"],
            None,
        )),
        webhook(
            "push",
            push_to(
                "main",
                ZERO,
                &[
                    (C1, at(9, 59), "change", false),
                    // GitHub's merge button, by the same person, inside the window.
                    (C2, at(10, 20), "change", true),
                    (C3, at(10, 50), "change", false),
                ],
            ),
        ),
        webhook(
            "push",
            push_to("main", C3, &[(D1, at(14, 0), "later", false)]),
        ),
        traces(&session("conv-late", &[at(14, 5), at(14, 40)], &[], None)),
    ];
    for (id, sha, when) in [(1, C3, at(12, 0)), (2, D1, at(16, 0))] {
        steps.extend(
            deployed(id, sha, when)
                .into_iter()
                .map(|(e, b)| webhook(e, b)),
        );
    }
    let seen = in_every_order(
        &steps,
        &Reads {
            commits: &[C1, C2, C3, D1],
            pulls: &[],
            dora: true,
        },
    )
    .await;

    assert_eq!(seen.links(C1), vec![link("conv-a", "window", None)]);
    assert_eq!(seen.links(C2), vec![], "GitHub made it");
    assert_eq!(seen.links(C3), vec![link("conv-a", "window", None)]);
    assert_eq!(seen.links(D1), vec![], "the session started after it");
    for (sha, assisted) in [(C1, true), (C2, false), (C3, true), (D1, false)] {
        assert_eq!(seen.commit(sha)["agent_assisted"], assisted, "{sha}");
    }

    // Deployment 1 (12:00) shipped C1 (2 h 1 min), C2 (1 h 40 min, GitHub's) and C3
    // (1 h 10 min); deployment 2 (16:00) shipped D1 alone (2 h), a person's.
    let d = &seen.dora;
    assert_eq!(d["all"], keys(2, 2.0, 4, Some(1.83)), "{d}");
    assert_eq!(d["agent_assisted"], keys(1, 1.0, 2, Some(1.59)), "{d}");
    assert_eq!(d["not_agent_assisted"], keys(1, 1.0, 2, Some(1.83)), "{d}");
}

/// A fork's PR whose head branch shares main's name, a branch name reused after a merge,
/// and a force-push that replaced a branch's commits (tests/it/histories.rs), with a
/// Claude Code session naming a commit of each: a PR carries only the sessions of its own
/// commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_requests_commits_are_its_own_in_every_order() {
    use super::histories::{B, pull, push};
    let m1 = "1100000000000000000000000000000000000001";
    let m2 = "1200000000000000000000000000000000000002";
    let x1 = "a100000000000000000000000000000000000001";
    let y1 = "a200000000000000000000000000000000000002";
    let f1 = "f100000000000000000000000000000000000001";
    let f2 = "f200000000000000000000000000000000000002";
    let f3 = "f300000000000000000000000000000000000003";
    let fork_head = "e100000000000000000000000000000000000001";
    let steps = vec![
        webhook(
            "push",
            push("main", ZERO, false, &[(B, "2026-11-20T08:00:00Z")]),
        ),
        webhook(
            "push",
            push(
                "main",
                B,
                false,
                &[(m1, "2026-11-20T08:10:00Z"), (m2, "2026-11-20T08:20:00Z")],
            ),
        ),
        // `fix`, merged and deleted, then recreated from the base for another PR.
        webhook(
            "push",
            push("fix", B, false, &[(x1, "2026-11-20T09:00:00Z")]),
        ),
        webhook("push", push("fix", x1, false, &[])),
        webhook(
            "push",
            push("fix", B, false, &[(y1, "2026-11-20T10:00:00Z")]),
        ),
        // `feat`: two commits, then a force-push that replaces both with one.
        webhook(
            "push",
            push(
                "feat",
                B,
                false,
                &[(f1, "2026-11-20T09:30:00Z"), (f2, "2026-11-20T09:40:00Z")],
            ),
        ),
        webhook(
            "push",
            push("feat", f2, true, &[(f3, "2026-11-20T11:00:00Z")]),
        ),
        webhook("pull_request", pull(30, REPO, "fix", y1)),
        webhook("pull_request", pull(31, REPO, "feat", f3)),
        // A fork's PR from its `main`: its pushes never reach this repository.
        webhook(
            "pull_request",
            pull(32, "contributor/widgets", "main", fork_head),
        ),
        // Sessions at 10:00 naming y1 (#30's), x1 (the reused branch's old commit), f1
        // (what the force-push replaced), and the fork's head from the fork.
        logs(&claude_session("claude-fix", y1, OWN_REPO, 0.5)),
        logs(&claude_session("claude-old", x1, OWN_REPO, 0.125)),
        logs(&claude_session("claude-feat", f1, OWN_REPO, 0.25)),
        logs(&claude_session(
            "claude-fork",
            fork_head,
            "https://github.com/contributor/widgets.git",
            0.0625,
        )),
    ];
    let seen = in_every_order(
        &steps,
        &Reads {
            commits: &[m1, x1, y1, f1, f3],
            pulls: &[30, 31, 32],
            dora: false,
        },
    )
    .await;

    for (sha, sessions, prs) in [
        (m1, vec![], json!([])),
        (x1, vec![link("claude-old", "event", None)], json!([])),
        (y1, vec![link("claude-fix", "event", None)], json!([30])),
        (f1, vec![link("claude-feat", "event", None)], json!([])),
        (f3, vec![], json!([31])),
    ] {
        assert_eq!(seen.links(sha), sessions, "{sha}");
        assert_eq!(seen.commit(sha)["pull_requests"], prs, "{sha}");
    }

    let fix = seen.report(30);
    assert_eq!(
        seen.pr_commits(30),
        vec![y1],
        "the reused branch's old commit is not #30's"
    );
    assert_eq!(fix["commit_list"], "ancestry");
    assert_eq!(fix["totals"]["sessions"], 1, "{fix}");
    assert_eq!(fix["sessions"][0]["session_id"], "claude-fix", "{fix}");
    assert_eq!(fix["totals"]["agent_commits"], 1, "{fix}");
    assert_eq!(fix["totals"]["cost_usd"], 0.5, "{fix}");

    let feat = seen.report(31);
    assert_eq!(seen.pr_commits(31), vec![f3], "{feat}");
    assert_eq!(feat["totals"]["sessions"], 0, "{feat}");
    assert_eq!(feat["totals"]["agent_commits"], 0, "{feat}");
    assert_eq!(feat["totals"]["cost_usd"], Value::Null, "{feat}");

    let fork = seen.report(32);
    assert_eq!(
        seen.pr_commits(32),
        vec![fork_head],
        "never the base repository's main"
    );
    assert_eq!(fork["commit_list"], "head_only");
    assert_eq!(fork["totals"]["sessions"], 0, "{fork}");
    assert_eq!(fork["totals"]["cost_usd"], Value::Null, "{fork}");
}
