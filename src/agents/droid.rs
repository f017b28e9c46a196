//! Factory Droid. Metrics `droid.*` (delta) and content spans `droid.message.*`,
//! `droid.tool.call|result`. Droid exports no tokens, no cost and no commit SHAs, and
//! reports lines modified without splitting them into added and removed. Its resource's
//! `service.name` is the generic `cli`, so it is recognised by names and scope only.

use super::util::mention_file;
use super::{Agent, MetricFact, MetricRule, RecordRule};
use crate::agents::attrs::Reader;
use crate::facts::{Contribution, Counter, FileAction};

/// Tools whose call writes the file named by `file_path` in `tool.input`.
const EDIT_TOOLS: &[&str] = &["Create", "Edit", "MultiEdit", "Write", "ApplyPatch"];

pub static AGENT: Agent = Agent {
    name: "droid",
    prefixes: &["droid."],
    service_names: &["droid", "factory-droid"],
    scope_names: &["factory-cli"],
    version_attr: None,
    version_from_resource: true,
    metrics: &[
        MetricRule {
            name: "droid.code.files_read",
            fact: MetricFact::Counter(Counter::FilesRead),
        },
        MetricRule {
            name: "droid.code.files_modified",
            fact: MetricFact::Counter(Counter::FilesModified),
        },
        MetricRule {
            name: "droid.code.lines_modified",
            fact: MetricFact::Counter(Counter::LinesModified),
        },
        MetricRule {
            name: "droid.git.commits",
            fact: MetricFact::Counter(Counter::Commits),
        },
        MetricRule {
            name: "droid.git.pull_requests",
            fact: MetricFact::Counter(Counter::PullRequests),
        },
        MetricRule {
            name: "droid.tool.invocations",
            fact: MetricFact::Counter(Counter::ToolInvocations),
        },
        MetricRule {
            name: "droid.mcp.tool_invocations",
            fact: MetricFact::Counter(Counter::McpToolInvocations),
        },
        MetricRule {
            name: "droid.tool.execution_time",
            fact: MetricFact::Counter(Counter::ToolExecutionMs),
        },
        MetricRule {
            name: "droid.repo.metadata",
            fact: MetricFact::Repository { attr: "repo.name" },
        },
    ],
    events: &[],
    spans: &[
        RecordRule {
            name: "droid.message.user",
            apply: user_message,
        },
        RecordRule {
            name: "droid.tool.call",
            apply: tool_call,
        },
        RecordRule {
            name: "droid.tool.result",
            apply: tool_result,
        },
    ],
};

fn user_message(_: &Reader<'_>, c: &mut Contribution) {
    c.additive.add(Counter::Prompts, 1.0);
}

fn tool_call(r: &Reader<'_>, c: &mut Contribution) {
    c.additive.add(Counter::ToolInvocations, 1.0);
    let Some(path) = r.field("tool.input", "file_path") else {
        return;
    };
    match r.str("tool.name") {
        Some(t) if EDIT_TOOLS.contains(&t) => {
            mention_file(&mut c.mentions, &path, FileAction::Modified)
        }
        Some("Read") => mention_file(&mut c.mentions, &path, FileAction::Read),
        _ => {}
    }
}

fn tool_result(r: &Reader<'_>, c: &mut Contribution) {
    if r.flag("tool.success") == Some(false) {
        c.additive.add(Counter::ToolFailures, 1.0);
    }
}
