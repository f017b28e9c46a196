//! The four DORA keys of a repository and environment, split by agent involvement.
//!
//! Definitions (as fourkeys and DevLake state them, applied to tracelink's graph):
//! - **Deployment frequency**: successful deployments to the environment per day of the
//!   window. A deployment's time is its first `success` status.
//! - **Lead time for changes**: for every commit a successful deployment shipped, the time
//!   from the change's start to that deployment; the median. A change starts at its
//!   commit's author time, except a merge or squash commit of a pull request, whose
//!   change starts at the first commit of that pull request (a rebased copy keeps its
//!   original's author time, so it needs no exception). A deployment ships
//!   the commits reachable from its SHA and not from the previous successful deployment to
//!   the same environment (DESIGN.md §4), found in the commit ancestry loaded into petgraph.
//! - **Change failure rate**: the share of successful deployments that caused an incident.
//!   An incident is caused by the deployment its root cause names, or by the first
//!   deployment that shipped the commit it names, or — with no usable root cause — by
//!   the last successful deployment to its environment before it opened
//!   ([`crate::graph::incidents`]).
//! - **Time to restore**: for incidents opened in the window, resolved, and caused by a
//!   deployment to the environment, the time from opened to resolved; the median.
//!
//! A commit is agent-assisted when a known agent trailer names it or an agent session is
//! linked to it (a stored `authored` link, whatever its evidence); a deployment is
//! agent-assisted when it shipped at least one such commit, and an incident when the
//! deployment that caused it is.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

const NS_PER_HOUR: f64 = 3_600_000_000_000.0;

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Keys {
    pub deployments: u64,
    pub deployments_per_day: f64,
    pub changes: u64,
    pub lead_time_median_hours: Option<f64>,
    pub failed_deployments: u64,
    pub change_failure_rate: Option<f64>,
    pub incidents_restored: u64,
    pub time_to_restore_median_hours: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dora {
    pub repository: String,
    pub environment: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub all: Keys,
    pub agent_assisted: Keys,
    pub not_agent_assisted: Keys,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    let mid = if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    };
    Some((mid * 100.0).round() / 100.0)
}

#[derive(Default, Clone)]
struct Acc {
    deployments: u64,
    lead_hours: Vec<f64>,
    failed: u64,
    restore_hours: Vec<f64>,
}

impl Acc {
    fn keys(self, days: f64) -> Keys {
        Keys {
            deployments: self.deployments,
            deployments_per_day: if days > 0.0 {
                ((self.deployments as f64 / days) * 1000.0).round() / 1000.0
            } else {
                0.0
            },
            changes: self.lead_hours.len() as u64,
            lead_time_median_hours: median(self.lead_hours),
            failed_deployments: self.failed,
            change_failure_rate: (self.deployments > 0).then(|| {
                ((self.failed as f64 / self.deployments as f64) * 1000.0).round() / 1000.0
            }),
            incidents_restored: self.restore_hours.len() as u64,
            time_to_restore_median_hours: median(self.restore_hours),
        }
    }
}

/// A successful deployment and every commit (key) reachable from its SHA.
#[derive(Debug, Clone, Default)]
pub struct DeploymentReach {
    pub id: i64,
    /// Its first success.
    pub at_ns: i64,
    pub reach: HashSet<String>,
}

/// What the keys are computed from.
#[derive(Debug, Clone, Default)]
pub struct DoraInputs {
    pub repository: String,
    pub environment: String,
    /// Successful deployments before the window's end, oldest first.
    pub deployments: Vec<DeploymentReach>,
    /// Agent-assisted commit keys.
    pub assisted: HashSet<String>,
    /// Author time by commit key.
    pub authored: HashMap<String, i64>,
    /// When the change a merge result stands for started, by commit key: a squash or
    /// merge commit's change starts at the first commit of its pull request.
    pub change_start: HashMap<String, i64>,
    pub causes: Vec<IncidentCause>,
}

/// An incident and the deployment that caused it, when one is known.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentCause {
    pub number: i64,
    pub deployment: Option<i64>,
    pub opened_ns: Option<i64>,
    pub closed_ns: Option<i64>,
    /// `open` or `resolved`.
    pub state: String,
}

/// The keys for deployments in `[since, until)` (ns).
pub fn compute(inputs: &DoraInputs, since_ns: i64, until_ns: i64) -> Dora {
    let m = measure(inputs, since_ns, until_ns);
    Dora {
        repository: inputs.repository.clone(),
        environment: inputs.environment.clone(),
        since: crate::time::rfc3339(Some(since_ns), chrono::SecondsFormat::Secs),
        until: crate::time::rfc3339(Some(until_ns), chrono::SecondsFormat::Secs),
        all: m.all.keys(m.days),
        agent_assisted: m.agent.keys(m.days),
        not_agent_assisted: m.human.keys(m.days),
    }
}

/// What the keys of one or several repositories are computed from: their deployments,
/// changes' lead times and restore times, pooled (a roll-up's median is the median of
/// every change, never a median of medians).
#[derive(Default, Clone)]
pub struct Measured {
    all: Acc,
    agent: Acc,
    human: Acc,
    days: f64,
}

impl Measured {
    /// Adds another repository's measurements over the same window.
    pub fn add(&mut self, other: Measured) {
        for (into, from) in [
            (&mut self.all, other.all),
            (&mut self.agent, other.agent),
            (&mut self.human, other.human),
        ] {
            into.deployments += from.deployments;
            into.failed += from.failed;
            into.lead_hours.extend(from.lead_hours);
            into.restore_hours.extend(from.restore_hours);
        }
        self.days = other.days;
    }

    /// The keys: all deployments, the agent-assisted ones, the others.
    pub fn keys(self) -> [Keys; 3] {
        [
            self.all.keys(self.days),
            self.agent.keys(self.days),
            self.human.keys(self.days),
        ]
    }
}

/// What [`compute`] measures, before the keys are taken.
pub fn measure(inputs: &DoraInputs, since_ns: i64, until_ns: i64) -> Measured {
    let DoraInputs {
        deployments,
        assisted,
        authored,
        change_start,
        causes,
        ..
    } = inputs;
    let (mut all, mut agent, mut human) = (Acc::default(), Acc::default(), Acc::default());
    let mut previous: HashSet<String> = HashSet::new();
    let mut assisted_deployment: HashMap<i64, bool> = HashMap::new();
    let mut in_window: HashSet<i64> = HashSet::new();
    for DeploymentReach {
        id,
        at_ns: at,
        reach,
    } in deployments
    {
        let shipped: Vec<&String> = reach.iter().filter(|c| !previous.contains(*c)).collect();
        let is_agent = shipped.iter().any(|c| assisted.contains(*c));
        assisted_deployment.insert(*id, is_agent);
        if *at >= since_ns {
            in_window.insert(*id);
            for acc in [&mut all, if is_agent { &mut agent } else { &mut human }] {
                acc.deployments += 1;
            }
            for c in &shipped {
                if let Some(t) = change_start.get(*c).or_else(|| authored.get(*c)) {
                    let hours = (*at - t).max(0) as f64 / NS_PER_HOUR;
                    all.lead_hours.push(hours);
                    if assisted.contains(*c) {
                        agent.lead_hours.push(hours);
                    } else {
                        human.lead_hours.push(hours);
                    }
                }
            }
        }
        previous = reach.clone();
    }
    let mut failed: HashSet<i64> = HashSet::new();
    let mut restored: HashSet<i64> = HashSet::new();
    for IncidentCause {
        number,
        deployment,
        opened_ns: opened,
        closed_ns: closed,
        state,
    } in causes
    {
        // Only deployments to this environment.
        let Some(d) = deployment.filter(|d| assisted_deployment.contains_key(d)) else {
            continue;
        };
        let is_agent = assisted_deployment.get(&d).copied().unwrap_or(false);
        if in_window.contains(&d) && failed.insert(d) {
            for acc in [&mut all, if is_agent { &mut agent } else { &mut human }] {
                acc.failed += 1;
            }
        }
        if let (Some(o), Some(c), "resolved") = (*opened, *closed, state.as_str())
            && o >= since_ns
            && o < until_ns
            && restored.insert(*number)
        {
            let hours = (c - o).max(0) as f64 / NS_PER_HOUR;
            for acc in [&mut all, if is_agent { &mut agent } else { &mut human }] {
                acc.restore_hours.push(hours);
            }
        }
    }
    Measured {
        all,
        agent,
        human,
        days: (until_ns - since_ns).max(0) as f64 / (24.0 * NS_PER_HOUR),
    }
}
