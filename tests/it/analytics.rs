//! `GET /api/v1/analytics/{metric}` on the four vendors' sessions, with exact figures
//! worked out by hand from the fixtures (README totals) and the built-in price table.
//!
//! People and teams: Claude Code, Gemini CLI and Codex ran as dev@acme.example, whom
//! the identities file calls `dev`, of team `payments`; Droid's user is known only by
//! its agent user ID, and its repository acme/widgets is owned by team `platform`.
//! Every session started on 2026-11-20 (UTC).

use serde_json::{Value, json};

use super::common::TestApp;
use super::fixtures::FILES;

async fn app() -> (TestApp, tempfile::TempDir) {
    app_with(|_| {}).await
}

pub async fn app_with(
    configure: impl FnOnce(&mut tracelink::config::ServeArgs),
) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let identities = dir.path().join("identities.toml");
    std::fs::write(
        &identities,
        "[[person]]\nlogin = \"dev\"\nemails = [\"dev@acme.example\"]\nteams = [\"payments\"]\n\n\
         [[team]]\nname = \"payments\"\nmonthly_budget_usd = 0.5\n\n\
         [[team]]\nname = \"platform\"\nrepos = [\"acme/widgets\"]\nmonthly_budget_usd = 1.0\n",
    )
    .unwrap();
    let app = TestApp::spawn_with(|a| {
        a.identities = Some(identities.clone());
        a.webhook_secrets = vec![super::reports::SECRET.parse().unwrap()];
        configure(a);
    })
    .await;
    for f in FILES {
        super::reports::send_otlp(&app, f).await;
    }
    // Claude Code's commits are pushed: its session is linked to them (by trailer).
    let commits = super::reports::claude_code_commits();
    let pushed = super::reports::push("refs/heads/retry", super::reports::ZERO, &commits);
    super::reports::deliver(&app, "push", "p1", &pushed).await;
    app.applied(1).await;
    app.linked_up().await;
    app.analytics_counted().await;
    (app, dir)
}

/// `(key, total, quality)` of each group, largest first.
fn groups(a: &Value) -> Vec<(String, Value, String)> {
    a["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap().to_string(),
                g["total"].clone(),
                g["quality"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn g(key: &str, total: Value, quality: &str) -> (String, Value, String) {
    (key.into(), total, quality.into())
}

const WEEK: &str = "from=2026-11-16&to=2026-11-23&bucket=week";

#[tokio::test]
async fn sessions_people_tokens_and_cost_by_team_agent_and_model() {
    let (mut app, _dir) = app().await;
    let get = |path: String| {
        let app = &app;
        async move {
            let (status, body) = app.get_json(&path).await;
            assert_eq!(status, 200, "{path}: {body}");
            body
        }
    };

    let a = get(format!("/api/v1/analytics/sessions?group_by=team&{WEEK}")).await;
    assert_eq!(a["total"], 4);
    assert_eq!(a["quality"], "exact");
    assert_eq!(
        groups(&a),
        [
            g("payments", json!(3), "exact"),
            g("platform", json!(1), "exact")
        ]
    );
    assert_eq!(
        a["groups"][0]["series"],
        json!([{"start": "2026-11-16", "value": 3}])
    );

    let a = get(
        "/api/v1/analytics/sessions?group_by=agent&from=2026-11-16&to=2026-11-23&bucket=day".into(),
    )
    .await;
    let keys: Vec<String> = groups(&a).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(keys, ["claude-code", "codex", "droid", "gemini-cli"]);
    let days: Vec<&str> = a["groups"][0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["start"].as_str().unwrap())
        .collect();
    assert_eq!(days.len(), 7);
    assert_eq!(
        a["groups"][0]["series"][4],
        json!({"start": "2026-11-20", "value": 1})
    );

    let a = get(format!(
        "/api/v1/analytics/active-people?group_by=team&{WEEK}"
    ))
    .await;
    assert_eq!(a["total"], 2, "dev, and Droid's user");
    assert_eq!(
        groups(&a),
        [
            g("payments", json!(1), "exact"),
            g("platform", json!(1), "exact")
        ]
    );

    // Tokens are input + output: input counts cache reads and writes, output reasoning.
    // Claude Sonnet: 76 + 396,281 + 37,860 in, 6,810 out; Haiku 1,830 + 42. Gemini 3 Pro:
    // 141,414 in, 3,114 + 2,385 out; Flash Lite 1,204 + 12. Codex: 132,770 + 4,462.
    let a = get(format!("/api/v1/analytics/tokens?group_by=model&{WEEK}")).await;
    assert_eq!(a["total"], 728_260);
    assert_eq!(
        groups(&a),
        [
            g("claude-sonnet-4-6", json!(441_027), "exact"),
            g("gemini-3-pro-preview", json!(146_913), "exact"),
            g("gpt-5.1-codex-max", json!(137_232), "exact"),
            g("claude-haiku-4-5-20251001", json!(1_872), "exact"),
            g("gemini-2.5-flash-lite", json!(1_216), "exact"),
            g("unknown", json!(0), "exact"),
        ]
    );
    assert_eq!(a["groups"][0]["kinds"]["cache_read"], 396_281);
    // Cache reads over input: Sonnet 396,281 / 434,217; Gemini 3 Pro 112,640 / 141,414;
    // Codex 112,896 / 132,770; all 621,817 / 711,435. Droid's session has no tokens: no
    // ratio (null).
    let a = get(format!(
        "/api/v1/analytics/cache-hit-ratio?group_by=model&{WEEK}"
    ))
    .await;
    assert_eq!(
        (a["unit"].clone(), a["total"].clone()),
        (json!("share"), json!(0.874))
    );
    assert_eq!(
        groups(&a),
        [
            g("claude-sonnet-4-6", json!(0.9126), "exact"),
            g("gpt-5.1-codex-max", json!(0.8503), "exact"),
            g("gemini-3-pro-preview", json!(0.7965), "exact"),
            g("claude-haiku-4-5-20251001", json!(0), "exact"),
            g("gemini-2.5-flash-lite", json!(0), "exact"),
            g("unknown", Value::Null, "exact"),
        ]
    );
    let a = get(format!(
        "/api/v1/analytics/cache-hit-ratio?group_by=team&{WEEK}"
    ))
    .await;
    assert_eq!(
        a["total"], 0.874,
        "each session once, though teams may share it"
    );

    // Cost: Claude Code reports $0.365276. Gemini is estimated: 3 Pro (28,774 uncached
    // in × $2 + 112,640 cached × $0.2 + 5,499 out × $12) / 1M = $0.146064, Flash Lite
    // (1,204 × $0.1 + 12 × $0.4) / 1M = $0.0001252. Codex, at gpt-5.1's prices: (19,874 ×
    // $1.25 + 112,896 × $0.125 + 4,462 × $10) / 1M = $0.0835745. Droid reports none.
    let a = get(format!("/api/v1/analytics/cost?group_by=agent&{WEEK}")).await;
    assert_eq!(a["unit"], "usd");
    assert_eq!(a["total"], 0.5950397);
    assert_eq!(a["quality"], "partial");
    assert_eq!(
        groups(&a),
        [
            g("claude-code", json!(0.365276), "exact"),
            g("gemini-cli", json!(0.1461892), "estimated"),
            g("codex", json!(0.0835745), "estimated"),
            g("droid", json!(0), "partial"),
        ]
    );
    assert_eq!(
        a["reasons"],
        json!([
            "costs not reported by the agent are estimated from the price table",
            "sessions without a cost (none reported, and no price for their models) are left out"
        ])
    );
    let a = get(format!("/api/v1/analytics/cost?group_by=team&{WEEK}")).await;
    assert_eq!(
        groups(&a),
        [
            g("payments", json!(0.5950397), "estimated"),
            g("platform", json!(0), "partial")
        ]
    );
    let a = get(format!("/api/v1/analytics/cost?group_by=org&{WEEK}")).await;
    assert_eq!(
        groups(&a),
        [
            g("unknown", json!(0.5950397), "estimated"),
            g("acme", json!(0), "partial")
        ],
        "only Droid's telemetry names a repository"
    );

    // What the agents report per session (README totals): requests 16 + 11 + 8 (Droid
    // reports none), tool calls 15 + 8 + 7 + 13, lines added 117 + 65 + 12 (Droid
    // reports lines modified only), prompts 4 + 3 + 2 + 3.
    let a = get(format!("/api/v1/analytics/requests?group_by=agent&{WEEK}")).await;
    assert_eq!(
        (a["total"].clone(), a["quality"].clone()),
        (json!(35), json!("partial"))
    );
    assert_eq!(
        a["reasons"],
        json!(["sessions of agents that do not report requests are left out: droid"])
    );
    assert_eq!(
        groups(&a),
        [
            g("claude-code", json!(16), "exact"),
            g("gemini-cli", json!(11), "exact"),
            g("codex", json!(8), "exact"),
            g("droid", json!(0), "partial"),
        ]
    );
    let a = get(format!(
        "/api/v1/analytics/tool-invocations?group_by=team&{WEEK}"
    ))
    .await;
    assert_eq!(
        groups(&a),
        [
            g("payments", json!(30), "exact"),
            g("platform", json!(13), "exact")
        ]
    );
    assert_eq!(a["unit"], "tool calls");
    let a = get(format!("/api/v1/analytics/lines-added?{WEEK}")).await;
    assert_eq!(
        (a["total"].clone(), a["quality"].clone()),
        (json!(194), json!("partial"))
    );
    let a = get(format!("/api/v1/analytics/prompts?{WEEK}")).await;
    assert_eq!(
        (a["total"].clone(), a["quality"].clone()),
        (json!(12), json!("exact"))
    );

    // Tools' execution time: Droid's histogram (11,080 ms), and the `duration_ms` of
    // Gemini CLI's 8 tool calls (39,524 ms), Claude Code's 15 tool results (30,825 ms)
    // and Codex's 7 (7,222 ms). Droid also reports one MCP call.
    let a = get(format!(
        "/api/v1/analytics/tool-execution-time?group_by=agent&{WEEK}"
    ))
    .await;
    assert_eq!(
        (a["total"].clone(), a["unit"].clone(), a["quality"].clone()),
        (json!(88.651), json!("seconds"), json!("exact"))
    );
    assert_eq!(
        groups(&a),
        [
            g("gemini-cli", json!(39.524), "exact"),
            g("claude-code", json!(30.825), "exact"),
            g("droid", json!(11.08), "exact"),
            g("codex", json!(7.222), "exact"),
        ]
    );
    let a = get(format!(
        "/api/v1/analytics/mcp-tool-invocations?group_by=agent&{WEEK}"
    ))
    .await;
    assert_eq!(groups(&a)[0], g("droid", json!(1), "exact"));
    assert_eq!(a["reasons"].as_array().unwrap().len(), 3, "{a}");
    // Time waiting on model API requests (their duration_ms): Claude Code's 16 requests
    // 105.19 s, Gemini CLI's 11 responses and errors 67.54 s, Codex's 8 3.319 s; Droid
    // does not say. No request was a retry (Codex's and Claude Code's spans say attempt 1).
    let a = get(format!(
        "/api/v1/analytics/request-time?group_by=agent&{WEEK}"
    ))
    .await;
    assert_eq!(
        groups(&a)[..3],
        [
            g("claude-code", json!(105.19), "exact"),
            g("gemini-cli", json!(67.54), "exact"),
            g("codex", json!(3.319), "exact"),
        ]
    );
    assert_eq!(a["total"], 176.049);
    let a = get(format!("/api/v1/analytics/retries?group_by=agent&{WEEK}")).await;
    assert_eq!(a["total"], 0);
    assert_eq!(
        a["quality"], "partial",
        "Gemini CLI and Droid do not say: {a}"
    );

    // Before and after 18 November: no whole week before it in this range (partial).
    let a = get(format!(
        "/api/v1/analytics/sessions?{WEEK}&compare=2026-11-18"
    ))
    .await;
    assert_eq!(
        a["compare"],
        json!({"at": "2026-11-18T00:00:00Z", "weeks_before": 0, "weeks_after": 0,
            "mean_before": 0, "mean_after": 0, "sd_before": null, "effect": null,
            "quality": "partial", "reasons": [
                "fewer than 4 whole weeks on a side: 0 before, 0 after",
                "the weeks before do not vary: no standard deviation to measure the change in"],
            "groups": [{"key": "unknown", "mean_before": 0, "mean_after": 0, "sd_before": null, "effect": null},
                       {"key": "acme", "mean_before": 0, "mean_after": 0, "sd_before": null, "effect": null}]})
    );
    assert_eq!(a["series"], json!([{"start": "2026-11-16", "value": 4}]));

    // Waste: the sessions linked to no commit (Claude Code's is linked to its commits by
    // trailer), and their cost: Gemini's $0.1461892 + Codex's $0.0835745 (estimates);
    // Droid's is unknown.
    let a = get(format!(
        "/api/v1/analytics/sessions-without-commit?group_by=agent&{WEEK}"
    ))
    .await;
    assert_eq!(
        groups(&a),
        [
            g("codex", json!(1), "exact"),
            g("droid", json!(1), "exact"),
            g("gemini-cli", json!(1), "exact"),
        ]
    );
    let a = get(format!(
        "/api/v1/analytics/cost-without-commit?group_by=agent&{WEEK}"
    ))
    .await;
    assert_eq!(
        (a["total"].clone(), a["quality"].clone()),
        (json!(0.2297637), json!("partial"))
    );

    // Outside the range: nothing.
    let a = get("/api/v1/analytics/sessions?from=2026-11-21&to=2026-11-22".into()).await;
    assert_eq!(
        (a["total"].clone(), a["groups"].clone()),
        (json!(0), json!([]))
    );
    app.stop().await;
}

/// On 2026-11-20 payments spent $0.5950397 (estimated: Gemini's and Codex's costs come
/// from the price table) of its $0.50 budget; platform $0 of $1. Nobody spent anything
/// in the 28 days before, so no baseline varies and no spike can be judged.
#[tokio::test]
async fn alerts_on_budgets_and_say_where_no_baseline_exists_yet() {
    let (mut app, _dir) = app().await;
    let (status, a) = app.get_json("/api/v1/alerts?day=2026-11-20").await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        a,
        json!({
            "day": "2026-11-20",
            "alerts": [{
                "kind": "budget", "level": "critical", "scope": "team", "key": "payments",
                "value": 0.59504, "threshold": 0.5, "budget_usd": 0.5, "quality": "estimated",
                "message": "team payments: $0.59504 spent this month, 119% of its $0.5 budget"
            }],
            "no_baseline": ["team payments: spend", "team payments: tokens",
                            "team platform: spend", "team platform: tokens"]
        })
    );
    // The day before: nothing spent this month yet.
    let (_, a) = app.get_json("/api/v1/alerts?day=2026-11-19").await;
    assert_eq!(
        (a["alerts"].clone(), a["no_baseline"].clone()),
        (json!([]), json!([]))
    );
    let (status, a) = app.get_json("/api/v1/alerts?day=tomorrow").await;
    assert_eq!(
        (status, a["error"].as_str()),
        (400, Some("day=\"tomorrow\" is not a date (YYYY-MM-DD)"))
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_say_what_is_wrong() {
    let (mut app, _dir) = app().await;
    for (path, status, says) in [
        (
            "/api/v1/analytics/spend",
            404,
            "no analytics metric \"spend\"; there are: sessions, active-people, tokens, cost, requests, errors, prompts, tool-invocations, tool-failures, tool-rejections, lines-added, lines-removed, files-modified, active-time, tool-execution-time, mcp-tool-invocations, request-time, retries, sessions-without-commit, cost-without-commit, cost-not-landed, waste-share, cache-hit-ratio, merged-prs, pr-cycle-time, ci-first-run-pass-rate, change-failure-rate, cost-per-merged-pr, cost-per-merged-line, tokens-per-merged-line, revert-rate, incidents, patch-coverage, agent-patch-coverage, other-patch-coverage, headless-sessions, interactive-sessions, session-duration-p50, session-duration-p90, active-time-p50, active-time-p90, new-people, team-active-share",
        ),
        (
            "/api/v1/analytics/sessions?group_by=galaxy",
            400,
            "group_by=\"galaxy\": one of org, team, repo, agent, model, person, workflow",
        ),
        (
            "/api/v1/analytics/lines-added?group_by=model",
            400,
            "lines-added is counted per session, not per model: group by org, team, repo, agent or person",
        ),
        (
            "/api/v1/analytics/sessions?bucket=year",
            400,
            "bucket=\"year\": one of day, week, month",
        ),
        (
            "/api/v1/analytics/sessions?from=yesterday",
            400,
            "from=\"yesterday\" is neither a date (YYYY-MM-DD) nor an RFC 3339 time",
        ),
        (
            "/api/v1/analytics/sessions?from=2026-11-22&to=2026-11-21",
            400,
            "from must be before to",
        ),
        (
            "/api/v1/analytics/sessions?from=2020-01-01&to=2026-01-01",
            400,
            "the range is longer than 1098 days; ask for less",
        ),
        (
            "/api/v1/analytics/sessions?group_by=person",
            403,
            "per-person views are off: group_by=person needs tracelink started with --people on",
        ),
        (
            "/api/v1/analytics/sessions?from=2026-11-01&to=2026-11-30&compare=2026-12-01",
            400,
            "compare=\"2026-12-01\" is not inside the range from..to",
        ),
    ] {
        let (got, body) = app.get_json(path).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(says)),
            "{path}"
        );
    }
    app.stop().await;
}

/// A Claude Code session started a second ago that reports $1.25 of cost.
fn spend_now(session: &str) -> Vec<u8> {
    let now = tracelink::time::now_ns();
    let attr = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    json!({"resourceMetrics": [{
        "resource": {"attributes": [attr("service.name", "claude-code")]},
        "scopeMetrics": [{"scope": {"name": "com.anthropic.claude_code"}, "metrics": [{
            "name": "claude_code.cost.usage", "unit": "USD",
            "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": [{
                "attributes": [attr("session.id", session), attr("user.email", "dev@acme.example"),
                               attr("model", "claude-sonnet-4-6")],
                "startTimeUnixNano": (now - 1_000_000_000).to_string(),
                "timeUnixNano": now.to_string(),
                "asDouble": 1.25
            }]}
        }]}]
    }]})
    .to_string()
    .into_bytes()
}

/// `--alert-webhook`: today's budget crossing is posted once as Slack-compatible JSON,
/// retried when the receiver fails, and not posted again by a restarted server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_posted_to_the_webhook_once() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let receiver = MockServer::start().await;
    // The first post fails; the retry goes through.
    Mock::given(method("POST"))
        .and(path("/hooks/alerts"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/alerts"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&receiver)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let identities = dir.path().join("identities.toml");
    std::fs::write(
        &identities,
        "[[person]]\nlogin = \"dev\"\nemails = [\"dev@acme.example\"]\nteams = [\"payments\"]\n\n\
         [[team]]\nname = \"payments\"\nmonthly_budget_usd = 1.0\n",
    )
    .unwrap();
    let url = format!("{}/hooks/alerts", receiver.uri());
    let configure = |a: &mut tracelink::config::ServeArgs| {
        a.identities = Some(identities.clone());
        a.alert_webhook = Some(url.clone());
    };
    let mut app = TestApp::spawn_with(configure).await;
    let r = app
        .post(
            "/v1/metrics",
            "application/json",
            spend_now("alert-session"),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);

    // The task judged once at start (nothing spent yet); wake it again by restarting.
    let location = app.location();
    app.stop().await;
    let posted = || async {
        let requests = receiver.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .collect::<Vec<_>>()
    };
    for round in 0..2 {
        let mut args = tracelink::config::ServeArgs::ephemeral(location.clone());
        configure(&mut args);
        let server = tracelink::server::Server::start(&args).await.unwrap();
        let mut rounds = server.alerts_posted.clone().expect("the alert task runs");
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            rounds.wait_for(|r| *r >= 1),
        )
        .await
        .expect("a round of alerts")
        .unwrap();
        let bodies = posted().await;
        assert_eq!(
            bodies,
            [
                json!({"text": "[tracelink] critical: team payments: $1.25 spent this month, 125% of its $1 budget"}),
                json!({"text": "[tracelink] critical: team payments: $1.25 spent this month, 125% of its $1 budget"}),
            ],
            "round {round}: one failed post, one retry; nothing posted again after a restart"
        );
        server.shutdown().await.unwrap();
    }
}

/// What analytics counts of a session is computed again from the session each time its
/// telemetry changes, never added to: telemetry sent again changes nothing, a session's
/// later telemetry replaces its figures, and a changed identities file counts every
/// session again at the next start.
#[tokio::test]
async fn figures_are_recomputed_from_sessions_never_added_to() {
    let dir = tempfile::tempdir().unwrap();
    let identities = dir.path().join("identities.toml");
    let file = |team: &str| {
        format!(
            "[[person]]\nlogin = \"dev\"\nemails = [\"dev@acme.example\"]\nteams = [\"{team}\"]\n\n\
             [[team]]\nname = \"platform\"\nrepos = [\"acme/widgets\"]\n"
        )
    };
    std::fs::write(&identities, file("payments")).unwrap();
    let mut app = TestApp::spawn_with(|a| a.identities = Some(identities.clone())).await;
    // Claude Code's metrics alone: its reported cost.
    super::reports::send_otlp(&app, "claude-code-metrics.json").await;
    assert_eq!(
        cost_by(&app, "agent").await,
        (
            json!(0.365276),
            vec![g("claude-code", json!(0.365276), "exact")]
        )
    );
    // Then everything (Claude Code's metrics a second time), twice: the same figures as
    // everything sent once.
    let all = (
        json!(0.5950397),
        vec![
            g("claude-code", json!(0.365276), "exact"),
            g("gemini-cli", json!(0.1461892), "estimated"),
            g("codex", json!(0.0835745), "estimated"),
            g("droid", json!(0), "partial"),
        ],
    );
    for _ in 0..2 {
        for f in FILES {
            super::reports::send_otlp(&app, f).await;
        }
        assert_eq!(cost_by(&app, "agent").await, all);
    }
    let (status, tokens) = app
        .get_json(&format!("/api/v1/analytics/tokens?{WEEK}"))
        .await;
    assert_eq!((status, tokens["total"].clone()), (200, json!(728_260)));
    assert_eq!(
        cost_by(&app, "team").await.1,
        [
            g("payments", json!(0.5950397), "estimated"),
            g("platform", json!(0), "partial")
        ]
    );

    // dev moves to team checkout: the next start counts every session again.
    std::fs::write(&identities, file("checkout")).unwrap();
    app.restart_with(|a| a.identities = Some(identities.clone()))
        .await;
    assert_eq!(
        cost_by(&app, "team").await,
        (
            json!(0.5950397),
            vec![
                g("checkout", json!(0.5950397), "estimated"),
                g("platform", json!(0), "partial")
            ]
        )
    );
    app.stop().await;
}

/// The cost's total and groups (`group_by=group`) in the week of the fixtures.
async fn cost_by(app: &TestApp, group: &str) -> (Value, Vec<(String, Value, String)>) {
    let (status, a) = app
        .get_json(&format!("/api/v1/analytics/cost?group_by={group}&{WEEK}"))
        .await;
    assert_eq!(status, 200, "{a}");
    (a["total"].clone(), groups(&a))
}

/// Pull request impact, agent-assisted vs not: #7 holds Claude Code's two commits (the
/// first authored 2026-11-20T09:13:48Z) and a reviewer's, merged 2026-11-21T17:00Z after
/// its first CI run failed; #8 holds one human commit (16:00), merged at 18:00 after its
/// first CI run passed. Both are dev's, of team payments.
#[tokio::test]
async fn merged_pull_requests_split_by_agent_involvement() {
    use super::reports::{Commit, HUMAN, MERGE, ZERO, deliver, pull, push, workflow_run};
    // Reports are built as soon as their pull request changes.
    let (mut app, _dir) = app_with(|a| a.comment_debounce = 0).await;
    const TYPO: &str = "5555555555555555555555555555555555555555";
    const MERGE_8: &str = "6666666666666666666666666666666666666666";
    let human = [Commit {
        sha: TYPO,
        message: "Fix typo",
        at: "2026-11-21T16:00:00Z",
        email: "reviewer@acme.example",
        login: "reviewer",
        files: &["README.md"],
    }];
    deliver(&app, "push", "p2", &push("refs/heads/typo", ZERO, &human)).await;
    for (id, payload) in [
        (
            "o7",
            pull("opened", 7, HUMAN, "retry", "2026-11-21T16:01:00Z", None),
        ),
        (
            "o8",
            pull("opened", 8, TYPO, "typo", "2026-11-21T16:02:00Z", None),
        ),
        (
            "w7",
            workflow_run(555, 1, HUMAN, "failure", "2026-11-21T16:05:00Z"),
        ),
        (
            "w7b",
            workflow_run(555, 2, HUMAN, "success", "2026-11-21T16:09:00Z"),
        ),
        (
            "w8",
            workflow_run(556, 1, TYPO, "success", "2026-11-21T16:10:00Z"),
        ),
        (
            "m7",
            pull(
                "closed",
                7,
                HUMAN,
                "retry",
                "2026-11-21T17:00:00Z",
                Some(MERGE),
            ),
        ),
        (
            "m8",
            pull(
                "closed",
                8,
                TYPO,
                "typo",
                "2026-11-21T18:00:00Z",
                Some(MERGE_8),
            ),
        ),
    ] {
        let event = if id.starts_with('w') {
            "workflow_run"
        } else {
            "pull_request"
        };
        deliver(&app, event, id, &payload).await;
    }
    app.applied(9).await;
    app.linked_up().await;
    const RANGE: &str = "from=2026-11-16&to=2026-11-23&bucket=week";
    // Until both reports are built the answer says what is missing; then it is exact.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let merged = loop {
        let (status, a) = app
            .get_json(&format!(
                "/api/v1/analytics/merged-prs?group_by=team&{RANGE}"
            ))
            .await;
        assert_eq!(status, 200, "{a}");
        if a["quality"] == "exact" {
            break a;
        }
        assert!(
            a["reasons"][0]
                .as_str()
                .is_some_and(|r| r.contains("merged pull requests are not counted yet")),
            "{a}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "reports not built: {a}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(merged["total"], 2);
    assert_eq!(
        merged["split"],
        json!({"agent_assisted": 1, "not_agent_assisted": 1,
               "agent_assisted_prs": 1, "not_agent_assisted_prs": 1})
    );
    assert_eq!(groups(&merged), [g("payments", json!(2), "exact")]);
    let get = |metric: &'static str, group: &'static str| {
        let app = &app;
        async move {
            let (status, a) = app
                .get_json(&format!(
                    "/api/v1/analytics/{metric}?group_by={group}&{RANGE}"
                ))
                .await;
            assert_eq!(status, 200, "{a}");
            a
        }
    };
    // #7: 2026-11-20T09:13:48Z → 2026-11-21T17:00Z is 31 h 46 min 12 s = 31.77 h;
    // #8: 2 h. The median of the two: 16.885 h.
    let a = get("pr-cycle-time", "org").await;
    assert_eq!(
        (a["unit"].clone(), a["total"].clone()),
        (json!("hours"), json!(16.885))
    );
    assert_eq!(a["split"]["agent_assisted"], 31.77);
    assert_eq!(a["split"]["not_agent_assisted"], 2);
    // First CI attempts: #7's failed, #8's passed.
    let a = get("ci-first-run-pass-rate", "agent").await;
    assert_eq!(a["total"], 0.5);
    assert_eq!(
        groups(&a),
        [
            g("none", json!(1), "exact"),
            g("claude-code", json!(0), "exact")
        ]
    );
    // #7 carries its session's whole reported cost; #8 has none to carry.
    let a = get("cost-per-merged-pr", "repo").await;
    assert_eq!(a["total"], 0.365276);
    assert_eq!(a["split"]["not_agent_assisted"], Value::Null);
    // No deployments yet, and no patches (no GitHub App) to count agent-written lines:
    // nothing to measure, said as null.
    assert_eq!(
        get("change-failure-rate", "org").await["total"],
        Value::Null
    );
    assert_eq!(
        get("cost-per-merged-line", "org").await["total"],
        Value::Null
    );
    // Merged outside the range: not counted.
    let (_, a) = app
        .get_json("/api/v1/analytics/merged-prs?from=2026-11-22&to=2026-11-23")
        .await;
    assert_eq!(a["total"], 0);
    let (status, a) = app
        .get_json(&format!(
            "/api/v1/analytics/merged-prs?group_by=model&{RANGE}"
        ))
        .await;
    assert_eq!(status, 400, "{a}");

    // Nothing reverted yet; then #7's merge commit is reverted on main four days after
    // its merge (a direct push, as `git revert` writes it).
    assert_eq!(get("revert-rate", "org").await["total"], 0);
    let message =
        format!("Revert \"Retry HTTP requests with backoff\"\n\nThis reverts commit {MERGE}.\n");
    let revert = [Commit {
        sha: "7777777777777777777777777777777777777777",
        message: &message,
        at: "2026-11-25T10:00:00Z",
        email: "dev@acme.example",
        login: "dev",
        files: &["src/http.rs"],
    }];
    deliver(&app, "push", "p3", &push("refs/heads/main", MERGE, &revert)).await;
    app.applied(10).await;
    let a = get("revert-rate", "team").await;
    assert_eq!(
        (a["unit"].clone(), a["total"].clone()),
        (json!("share"), json!(0.5))
    );
    assert_eq!(a["split"]["agent_assisted"], 1);
    assert_eq!(a["split"]["not_agent_assisted"], 0);
    assert_eq!(groups(&a)[0].1, json!(0.5));
    // #8 (merged 2026-11-21T18:00Z) may still be reverted until 14 days have passed.
    let window_open = chrono::Utc::now()
        < "2026-12-05T18:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap();
    assert_eq!(
        a["quality"],
        if window_open { "partial" } else { "exact" },
        "{a}"
    );
    // #8 alone: nothing reverted it.
    let (_, a) = app
        .get_json("/api/v1/analytics/revert-rate?from=2026-11-21T17:30:00Z&to=2026-11-22")
        .await;
    assert_eq!(a["total"], 0, "{a}");
    app.stop().await;
}

/// A pull request's facts without a cost, then one with: PostgreSQL took the first NULL
/// as `float4` and refused the next cost on the same connection ("incorrect binary data
/// format in bind parameter"), found by the analytics benchmark.
#[tokio::test]
async fn pull_facts_without_then_with_a_cost_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = super::common::TestDb::new(dir.path()).await;
    let store = tracelink::store::open(&db.location).await.unwrap();
    let mut conn = store.writer;
    let fact = |number: i64, cost: Option<f64>| tracelink::store::analytics::PullFact {
        repo: "acme/widgets".into(),
        number,
        author: None,
        state: "closed".into(),
        merged_ns: Some(1_000 + number),
        first_commit_ns: None,
        assisted: 1,
        agents: String::new(),
        cost,
        cost_estimated: 0,
        tokens: None,
        lines_added: None,
        agent_lines_added: None,
        ci_first_run_pass: cost,
        incidents: 0,
        deployments: 0,
        patch_covered: cost.map(|_| 8),
        patch_coverable: cost.map(|_| 10),
        agent_patch_covered: None,
        agent_patch_coverable: cost.map(|_| 0),
    };
    for (n, cost) in [(1, None), (2, Some(0.25)), (3, None), (4, Some(1.5))] {
        conn.put_pull_fact(&fact(n, cost), 0).await.unwrap();
    }
    let stored = store.db.pull_facts_merged_between(0, 2_000).await.unwrap();
    let costs: Vec<Option<f64>> = stored.iter().map(|f| f.cost).collect();
    assert_eq!(costs, [None, Some(0.25), None, Some(1.5)]);
    let coverage: Vec<_> = stored
        .iter()
        .map(|f| {
            (
                f.patch_covered,
                f.patch_coverable,
                f.agent_patch_covered,
                f.agent_patch_coverable,
            )
        })
        .collect();
    assert_eq!(coverage[0], (None, None, None, None));
    assert_eq!(coverage[1], (Some(8), Some(10), None, Some(0)));
}

/// Adoption beyond sums, on the fixtures' sessions. Their durations (first record to
/// last): Claude Code 1,800 s (09:02:05.412–09:32:05.412), Gemini CLI 996.618 s,
/// Codex 812.587 s (10:08:02.310–10:21:34.897), Droid 1,014.173 s. Gemini CLI says
/// `interactive`, Codex's originator is its TUI; Claude Code and Droid do not say.
#[tokio::test]
async fn adoption_modes_durations_new_people_and_team_share() {
    let dir = tempfile::tempdir().unwrap();
    let identities = dir.path().join("two-members.toml");
    // `ops` is a member of payments who ran no session.
    std::fs::write(
        &identities,
        "[[person]]\nlogin = \"dev\"\nemails = [\"dev@acme.example\"]\nteams = [\"payments\"]\n\n\
         [[person]]\nlogin = \"ops\"\nemails = [\"ops@acme.example\"]\nteams = [\"payments\"]\n\n\
         [[team]]\nname = \"platform\"\nrepos = [\"acme/widgets\"]\n",
    )
    .unwrap();
    let (app, _dir) = app_with(|a| a.identities = Some(identities.clone())).await;
    let get = |path: String| {
        let app = &app;
        async move {
            let (status, body) = app.get_json(&path).await;
            assert_eq!(status, 200, "{path}: {body}");
            body
        }
    };

    let a = get(format!(
        "/api/v1/analytics/interactive-sessions?group_by=agent&{WEEK}"
    ))
    .await;
    assert_eq!(a["total"], 2);
    assert_eq!(a["quality"], "partial");
    assert_eq!(
        a["reasons"],
        json!([
            "sessions of agents that do not report whether they ran headless are left out: claude-code",
            "sessions of agents that do not report whether they ran headless are left out: droid"
        ])
    );
    assert_eq!(
        groups(&a)[..2],
        [
            g("codex", json!(1), "exact"),
            g("gemini-cli", json!(1), "exact")
        ]
    );
    let a = get(format!("/api/v1/analytics/headless-sessions?{WEEK}")).await;
    assert_eq!(a["total"], 0);
    let (_, s) = app.get_json("/api/v1/sessions?agent=gemini-cli").await;
    assert_eq!(s["sessions"][0]["mode"], "interactive", "{s}");

    // The median of 812.587, 996.618, 1,014.173 and 1,800 is the mean of the middle two.
    let a = get(format!(
        "/api/v1/analytics/session-duration-p50?group_by=team&{WEEK}"
    ))
    .await;
    assert_eq!(a["total"], 1005.396);
    assert_eq!(a["quality"], "exact");
    assert_eq!(
        groups(&a),
        [
            g("platform", json!(1014.173), "exact"),
            g("payments", json!(996.618), "exact"),
        ]
    );
    // p90: rank 0.9 × 3 = 2.7, seven tenths from 1,014.173 to 1,800.
    let a = get(format!("/api/v1/analytics/session-duration-p90?{WEEK}")).await;
    assert_eq!(a["total"], 1564.252);
    assert_eq!(
        a["series"],
        json!([{"start": "2026-11-16", "value": 1564.252}])
    );
    // Only Claude Code reports active time.
    let a = get(format!("/api/v1/analytics/active-time-p50?{WEEK}")).await;
    assert_eq!(a["total"], 262.105);
    assert_eq!(a["quality"], "partial");
    assert_eq!(a["reasons"].as_array().unwrap().len(), 3, "{a}");

    // dev and Droid's user were first seen on 2026-11-20; nobody is new the week after.
    let a = get(format!("/api/v1/analytics/new-people?group_by=team&{WEEK}")).await;
    assert_eq!(a["total"], 2);
    assert_eq!(
        groups(&a),
        [
            g("payments", json!(1), "exact"),
            g("platform", json!(1), "exact")
        ]
    );
    let a = get("/api/v1/analytics/new-people?from=2026-11-21&to=2026-11-30".into()).await;
    assert_eq!(a["total"], 0);

    // Of payments' two members, dev was active; platform lists no members.
    let a = get(format!(
        "/api/v1/analytics/team-active-share?group_by=team&{WEEK}"
    ))
    .await;
    assert_eq!(groups(&a), [g("payments", json!(0.5), "exact")]);
    assert_eq!(a["series"], json!([{"start": "2026-11-16", "value": 0.5}]));
    let (status, body) = app
        .get_json(&format!(
            "/api/v1/analytics/team-active-share?group_by=agent&{WEEK}"
        ))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("group_by=team"),
        "{body}"
    );
    let (status, _) = app
        .get_json(&format!(
            "/api/v1/analytics/session-duration-p50?group_by=model&{WEEK}"
        ))
        .await;
    assert_eq!(status, 400);
}

/// With `--timezone`, days begin at local midnight: in Pacific/Kiritimati (UTC+14) the
/// fixtures' Claude Code (09:02Z) and Gemini CLI (09:40Z) sessions started on 20
/// November, Codex's (10:08Z) and Droid's (10:31Z) on the 21st. Dates in the query are
/// that zone's too.
#[tokio::test]
async fn days_begin_at_local_midnight_with_a_timezone() {
    let (app, _dir) = app_with(|a| {
        a.timezone = tracelink::time::Zone::parse("Pacific/Kiritimati").unwrap();
    })
    .await;
    let (status, a) = app
        .get_json("/api/v1/analytics/sessions?group_by=agent&from=2026-11-20&to=2026-11-22")
        .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["from"], "2026-11-19T10:00:00Z");
    assert_eq!(
        a["series"],
        json!([{"start": "2026-11-20", "value": 2}, {"start": "2026-11-21", "value": 2}])
    );
    let codex = a["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "codex")
        .unwrap();
    assert_eq!(
        codex["series"][1],
        json!({"start": "2026-11-21", "value": 1})
    );
    // The 21st alone (local): the two later sessions.
    let (_, a) = app
        .get_json("/api/v1/analytics/sessions?from=2026-11-21&to=2026-11-22")
        .await;
    assert_eq!(a["total"], 2);
}

/// Which tools and MCP servers sessions use: Claude Code's Bash, Edit, Glob, Grep, Read
/// and Write; Codex's apply_patch, shell_command and update_plan; Droid's Create, Edit,
/// Execute, Glob, Grep, Read and Linear's get_issue through the `linear` MCP server;
/// Gemini CLI's grep_search, read_file, replace, run_shell_command and write_file.
#[tokio::test]
async fn sessions_and_cost_by_tool_mcp_server_skill_subagent_and_command() {
    let (app, _dir) = app().await;
    let (status, a) = app
        .get_json(&format!(
            "/api/v1/analytics/sessions?group_by=workflow&{WEEK}"
        ))
        .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["total"], 4, "each session once: {a}");
    let top: Vec<(String, Value, String)> = groups(&a).into_iter().take(5).collect();
    assert_eq!(
        top,
        [
            g("tool:Edit", json!(2), "exact"),
            g("tool:Glob", json!(2), "exact"),
            g("tool:Grep", json!(2), "exact"),
            g("tool:Read", json!(2), "exact"),
            g("mcp:linear", json!(1), "exact"),
        ]
    );
    assert_eq!(
        groups(&a).len(),
        18,
        "6 + 3 + 5 + Droid's Create, Execute, get_issue, linear: {a}"
    );
    // Claude Code's session's cost is Bash's (with its other tools').
    let (_, a) = app
        .get_json(&format!("/api/v1/analytics/cost?group_by=workflow&{WEEK}"))
        .await;
    let bash = groups(&a)
        .into_iter()
        .find(|(k, _, _)| k == "tool:Bash")
        .unwrap();
    let (_, by_agent) = app
        .get_json(&format!("/api/v1/analytics/cost?group_by=agent&{WEEK}"))
        .await;
    let claude = groups(&by_agent)
        .into_iter()
        .find(|(k, _, _)| k == "claude-code")
        .unwrap();
    assert_eq!(bash.1, claude.1);
    assert_eq!(a["total"], by_agent["total"], "every session once");
    let (status, _) = app
        .get_json(&format!(
            "/api/v1/analytics/merged-prs?group_by=workflow&{WEEK}"
        ))
        .await;
    assert_eq!(status, 400);

    // A Claude Code session run with `OTEL_LOG_TOOL_DETAILS=1` names the slash command
    // it began with, the skill it loaded and the sub-agent it spawned.
    let r = app
        .post(
            "/v1/logs",
            "application/json",
            claude_code_workflow_logs().to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    app.linked_up().await;
    app.analytics_counted().await;
    let (_, a) = app
        .get_json(&format!(
            "/api/v1/analytics/sessions?group_by=workflow&{WEEK}"
        ))
        .await;
    assert_eq!(a["total"], 5, "{a}");
    let named: Vec<_> = groups(&a)
        .into_iter()
        .filter(|(k, _, _)| !k.starts_with("tool:") && !k.starts_with("mcp:"))
        .collect();
    assert_eq!(
        named,
        [
            g("command:review", json!(1), "exact"),
            g("skill:pdf", json!(1), "exact"),
            g("subagent:code-reviewer", json!(1), "exact"),
        ]
    );
}

/// Claude Code's `user_prompt` with a slash command and the `tool_result`s of a Skill
/// and a Task tool call, as it exports them with `OTEL_LOG_TOOL_DETAILS=1`
/// (2026-11-20 12:00Z).
fn claude_code_workflow_logs() -> Value {
    let attrs = |extra: &[(&str, &str)]| {
        let mut a = vec![
            json!({"key": "session.id", "value": {"stringValue": "wf-session"}}),
            json!({"key": "user.email", "value": {"stringValue": "dev@acme.example"}}),
        ];
        a.extend(
            extra
                .iter()
                .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}})),
        );
        a
    };
    let record = |secs: u64, extra: &[(&str, &str)]| {
        json!({
            "timeUnixNano": format!("{}", (1_795_176_000 + secs) * 1_000_000_000),
            "body": {"stringValue": "claude_code.event"},
            "attributes": attrs(extra),
        })
    };
    json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "claude-code"}}
        ]},
        "scopeLogs": [{
            "scope": {"name": "com.anthropic.claude_code.events"},
            "logRecords": [
                record(0, &[("event.name", "user_prompt"), ("command_name", "review")]),
                record(5, &[
                    ("event.name", "tool_result"),
                    ("tool_name", "Skill"),
                    ("tool_parameters", r#"{"skill_name":"pdf"}"#),
                ]),
                record(9, &[
                    ("event.name", "tool_result"),
                    ("tool_name", "Task"),
                    ("tool_parameters", r#"{"subagent_type":"code-reviewer"}"#),
                ]),
            ]
        }]
    }]})
}

/// `--sync-teams`: GitHub lists dev in the `checkout` team of acme (besides the
/// identities file's payments): dev's three sessions count for both. The reading is kept
/// for a day: a restart does not read the teams again.
#[tokio::test]
async fn github_teams_are_added_to_the_identities_files() {
    let fake = tracelink_dev::fake_github::FakeGithub::start().await;
    fake.add_team("acme", "checkout", &["dev", "someone-else"]);
    fake.add_team("acme", "empty", &[]);
    let cfg = fake.app_config();
    let (mut app, dir) = app_with(|a| {
        a.github = (&cfg).into();
        a.sync_teams = true;
    })
    .await;
    let (status, a) = app
        .get_json(&format!("/api/v1/analytics/sessions?group_by=team&{WEEK}"))
        .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        groups(&a),
        [
            g("checkout", json!(3), "exact"),
            g("payments", json!(3), "exact"),
            g("platform", json!(1), "exact"),
        ]
    );
    assert_eq!(a["total"], 4, "each session once");
    assert_eq!(fake.requests_to("GET", "/orgs/acme/teams").await, 1);
    assert_eq!(
        fake.requests_to("GET", "/orgs/acme/teams/checkout/members")
            .await,
        1
    );
    app.restart_with(|a| {
        a.identities = Some(dir.path().join("identities.toml"));
        a.github = (&cfg).into();
        a.sync_teams = true;
    })
    .await;
    assert_eq!(
        fake.requests_to("GET", "/orgs/acme/teams").await,
        1,
        "read at most once a day"
    );
    let (_, a) = app
        .get_json(&format!("/api/v1/analytics/sessions?group_by=team&{WEEK}"))
        .await;
    assert_eq!(groups(&a)[0], g("checkout", json!(3), "exact"));
    app.stop().await;
}

/// Waste of work that was committed but never shipped: Claude Code's session (started
/// 2026-11-20 09:02, $0.365276 reported) committed twice, to the `retry` branch.
/// - Until an event names the repository's default branch, its landing is not judged.
/// - Then it is waste: all of its cost, all of the cost of sessions with commits.
/// - Its pull request is squash-merged; the squash commit (which inherits the
///   session's links) pushed to `main` 15 days after the session began is too late.
/// - Pushed within 14 days (the earliest push is kept), nothing is waste.
#[tokio::test]
async fn cost_of_commits_that_never_reached_the_default_branch() {
    use super::reports::{BASE, Commit, HUMAN, MERGE, deliver, pull, push};
    let (app, _dir) = app().await;
    let get = |metric: &'static str| {
        let app = &app;
        async move {
            app.linked_up().await;
            let (status, a) = app
                .get_json(&format!("/api/v1/analytics/{metric}?group_by=agent&{WEEK}"))
                .await;
            assert_eq!(status, 200, "{a}");
            a
        }
    };
    // The window of sessions started in the range is open until 14 days after it.
    let open = tracelink::time::now_ns() < 1_796_601_600 * 1_000_000_000;
    let judged = if open { "partial" } else { "exact" };

    assert_eq!(get("cost-not-landed").await["total"], 0);
    let share = get("waste-share").await;
    assert_eq!(share["total"], Value::Null, "nothing judged: {share}");

    let mut opened = pull("opened", 7, HUMAN, "retry", "2026-11-21T16:01:00Z", None);
    opened["repository"]["default_branch"] = json!("main");
    deliver(&app, "pull_request", "o7", &opened).await;
    app.applied(2).await;
    let a = get("cost-not-landed").await;
    assert_eq!(a["total"], 0.365276, "{a}");
    assert_eq!(a["quality"], judged, "{a}");
    if open {
        assert!(
            a["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().contains("less than 14 days ago")),
            "{a}"
        );
    }
    assert_eq!(groups(&a), [g("claude-code", json!(0.365276), judged)]);
    let share = get("waste-share").await;
    assert_eq!(share["unit"], "share");
    assert_eq!(share["total"], 1, "{share}");

    let squash = [Commit {
        sha: MERGE,
        message: "Retry HTTP requests with backoff (#7)",
        at: "2026-11-21T17:00:00Z",
        email: "dev@acme.example",
        login: "dev",
        files: &[],
    }];
    let merged = pull(
        "closed",
        7,
        HUMAN,
        "retry",
        "2026-11-21T17:00:00Z",
        Some(MERGE),
    );
    deliver(&app, "pull_request", "m7", &merged).await;
    let mut late = push("refs/heads/main", BASE, &squash);
    late["repository"]["default_branch"] = json!("main");
    late["repository"]["pushed_at"] = json!(1_796_472_000); // 2026-12-05 12:00Z
    deliver(&app, "push", "p-late", &late).await;
    app.applied(4).await;
    assert_eq!(get("waste-share").await["total"], 1);

    let mut early = late.clone();
    early["repository"]["pushed_at"] = json!(1_795_280_405); // 2026-11-21 17:00:05Z
    deliver(&app, "push", "p-main", &early).await;
    app.applied(5).await;
    let a = get("cost-not-landed").await;
    assert_eq!(a["total"], 0, "{a}");
    assert_eq!(get("waste-share").await["total"], 0);
    // The cost of sessions with no commit at all is a figure of its own.
    let none = get("cost-without-commit").await;
    assert!(
        groups(&none).iter().all(|(k, _, _)| k != "claude-code"),
        "{none}"
    );
}

/// `team=`, `repo=`, `agent=` narrow any figure to those sessions (and pull requests):
/// a narrowed answer's total is the matching group of the unnarrowed one.
#[tokio::test]
async fn answers_narrow_to_a_team_a_repository_or_an_agent() {
    let (app, _dir) = app().await;
    let total = |path: String| {
        let app = &app;
        async move {
            let (status, a) = app.get_json(&path).await;
            assert_eq!(status, 200, "{path}: {a}");
            a
        }
    };
    let group = |a: &Value, key: &str| -> Value {
        a["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"] == key)
            .map_or(json!(0), |g| g["total"].clone())
    };
    let by_agent = total(format!("/api/v1/analytics/sessions?group_by=agent&{WEEK}")).await;
    let by_team = total(format!("/api/v1/analytics/sessions?group_by=team&{WEEK}")).await;
    for agent in ["claude-code", "codex", "droid", "gemini-cli"] {
        let a = total(format!(
            "/api/v1/analytics/sessions?group_by=team&agent={agent}&{WEEK}"
        ))
        .await;
        assert_eq!(a["total"], group(&by_agent, agent), "{agent}: {a}");
    }
    for team in ["payments", "platform", "unassigned"] {
        let a = total(format!(
            "/api/v1/analytics/sessions?group_by=agent&team={team}&{WEEK}"
        ))
        .await;
        assert_eq!(a["total"], group(&by_team, team), "{team}: {a}");
    }
    // Tokens by model, narrowed to an agent, are that agent's tokens.
    let tokens = total(format!("/api/v1/analytics/tokens?group_by=agent&{WEEK}")).await;
    let claude_models = total(format!(
        "/api/v1/analytics/tokens?group_by=model&agent=claude-code&{WEEK}"
    ))
    .await;
    assert_eq!(claude_models["total"], group(&tokens, "claude-code"));
    assert_eq!(
        claude_models["groups"].as_array().unwrap().len(),
        2,
        "{claude_models}"
    );
    // A repository nobody worked in has nothing.
    let none = total(format!(
        "/api/v1/analytics/cost?group_by=agent&repo=acme/elsewhere&{WEEK}"
    ))
    .await;
    assert_eq!(none["total"], 0);
    assert_eq!(none["groups"], json!([]));
    // New people narrowed to an agent (a team, a repository) are those whose first
    // session with it is in the range: the unnarrowed answer's group of that agent.
    for (group_by, keys) in [
        (
            "agent",
            &["claude-code", "codex", "droid", "gemini-cli"][..],
        ),
        ("team", &["payments", "platform", "unassigned"][..]),
        ("repo", &["acme/widgets"][..]),
    ] {
        let grouped = total(format!(
            "/api/v1/analytics/new-people?group_by={group_by}&{WEEK}"
        ))
        .await;
        let mut some = false;
        for key in keys {
            let narrowed = total(format!(
                "/api/v1/analytics/new-people?{group_by}={}&{WEEK}",
                key.replace('/', "%2F")
            ))
            .await;
            assert_eq!(narrowed["total"], group(&grouped, key), "{key}: {narrowed}");
            some |= narrowed["total"].as_f64().unwrap() > 0.0;
        }
        assert!(some, "someone is new by {group_by}: {grouped}");
    }
    // A team's active share narrowed to an agent: its members active with that agent.
    // payments has one member, dev.
    for agent in ["claude-code", "codex", "droid", "gemini-cli"] {
        let share = total(format!(
            "/api/v1/analytics/team-active-share?group_by=team&agent={agent}&{WEEK}"
        ))
        .await;
        let active = total(format!(
            "/api/v1/analytics/active-people?group_by=team&agent={agent}&{WEEK}"
        ))
        .await;
        assert_eq!(
            group(&share, "payments").as_f64(),
            group(&active, "payments").as_f64(),
            "{agent}: {share} {active}"
        );
    }
    // What cannot be narrowed says so.
    for (path, says) in [
        (
            format!("/api/v1/analytics/sessions?group_by=team&team=payments&{WEEK}"),
            "team= with group_by=team",
        ),
        (
            format!("/api/v1/analytics/team-active-share?group_by=team&team=payments&{WEEK}"),
            "team= with group_by=team",
        ),
    ] {
        let (status, body) = app.get_json(&path).await;
        assert_eq!(status, 400, "{path}");
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }
}

/// The dashboard's tables tally several values of the same rows in one scan: each
/// value's tallies are exactly those of its own query, for every grouping, value kind
/// and narrowing.
#[tokio::test]
async fn values_tallied_together_are_each_tallied_alone() {
    use tracelink::store::analytics::{
        COUNTED_COLUMNS, Commits, FactBuckets, FactKey, FactQuery, FactValue, Only,
    };
    let (app, _dir) = app().await;
    let db = app.db();
    let day = |d: &str| tracelink::time::parse_rfc3339(&format!("{d}T00:00:00Z")).unwrap();
    let mut values = vec![
        (FactValue::Sessions, false),
        (FactValue::Cost, false),
        (FactValue::Tokens, true),
        (FactValue::Mode { headless: true }, false),
        (FactValue::Duration, false),
    ];
    values.extend((0..COUNTED_COLUMNS.len()).map(|i| (FactValue::Counted(i), false)));
    let mut checked = 0;
    for key in [
        FactKey::Org,
        FactKey::Team,
        FactKey::Agent,
        FactKey::Person,
        FactKey::Model,
        FactKey::Workflow,
    ] {
        for (only, with_workflow) in [
            (Only::default(), false),
            (Only::default(), key == FactKey::Org),
            (
                Only {
                    agent: Some("claude-code".into()),
                    ..Default::default()
                },
                false,
            ),
        ] {
            // By model: what the model rows hold (sessions, cost, tokens).
            let kinds = if key == FactKey::Model {
                3
            } else {
                values.len()
            };
            let qs: Vec<FactQuery> = values[..kinds]
                .iter()
                .map(|&(value, tokens)| FactQuery {
                    key,
                    value,
                    buckets: FactBuckets::Week,
                    from_ns: day("2026-11-16"),
                    to_ns: day("2026-11-23"),
                    commits: Commits::Any,
                    only: only.clone(),
                    with_workflow,
                    tokens,
                })
                .collect();
            let together = db.analytics_tallies_of(&qs).await.unwrap();
            assert_eq!(together.len(), qs.len());
            // Grouped rows come in no promised order.
            let sorted = |mut t: Vec<tracelink::store::analytics::Tally>| {
                t.sort_by(|a, b| (a.bucket, &a.key).cmp(&(b.bucket, &b.key)));
                t
            };
            for (q, t) in qs.iter().zip(together) {
                let alone = sorted(db.analytics_tallies(q).await.unwrap());
                assert_eq!(sorted(t), alone, "{key:?} {:?} {only:?}", q.value);
                checked += usize::from(!alone.is_empty());
            }
        }
    }
    assert!(checked > 100, "tallies compared: {checked}");
    // Queries of different rows are refused, not summed wrongly.
    let q = |key| FactQuery {
        key,
        value: FactValue::Sessions,
        buckets: FactBuckets::Week,
        from_ns: 0,
        to_ns: 1,
        commits: Commits::Any,
        only: Only::default(),
        with_workflow: false,
        tokens: false,
    };
    assert!(
        db.analytics_tallies_of(&[q(FactKey::Team), q(FactKey::Agent)])
            .await
            .is_err()
    );
}
