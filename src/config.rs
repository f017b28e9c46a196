//! Command line and environment: one struct per command, every flag with an env twin.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::ids::{PrNumber, RepoName};
use crate::store::Location;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tracelink",
    version,
    about = "What did your AI coding agents' work turn into?"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Read the config file, the environment and these flags as `serve` would, check
    /// them (the App's key, the identities file, the price table), and print every
    /// setting with where it came from; secrets are masked.
    Check(Box<ServeArgs>),
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// Apply stored deliveries again through the current code (after a fixed bug or a
    /// fault): they are marked pending, and a running tracelink applies them within
    /// seconds (else the next start does).
    Replay {
        /// Only deliveries in this state.
        #[arg(long, value_parser = ["failed", "processed", "pending"])]
        status: Option<String>,
        /// Only deliveries received at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only this delivery.
        #[arg(long)]
        id: Option<String>,
        /// SQLite database file, or a `postgres://` URL.
        #[arg(long, env = "TRACELINK_DB", default_value = "./tracelink.db")]
        db: Location,
    },
}

/// `tracelink demo`'s settings.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print the pull request's comment and exit, without seeding the organisation or
    /// serving the dashboard.
    #[arg(long)]
    pub no_serve: bool,
    /// The dashboard's address (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub http_listen: SocketAddr,
    /// Keep the demo's database in this file (else a temporary one, removed on exit).
    /// It must not exist yet.
    #[arg(long)]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive OTLP from coding agents and serve the query API.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate {
        /// SQLite database file, or a `postgres://` URL.
        #[arg(long, env = "TRACELINK_DB", default_value = "./tracelink.db")]
        db: Location,
    },
    /// Move an installation to another database: every row of FROM (a SQLite file) is
    /// copied into TO (an empty `postgres://` database; its schema is created) in one
    /// transaction, then verified: the same row count in every table, and every pull
    /// request's report built from each identical. FROM is read as one snapshot, so
    /// `serve` may keep running on it; point `serve` at TO once this succeeds.
    MigrateData {
        /// The installation's database (SQLite file).
        #[arg(long)]
        from: Location,
        /// The new database (`postgres://…`), empty.
        #[arg(long)]
        to: Location,
    },
    /// Print the report of a pull request from the database.
    Report {
        /// The pull request, as `owner/repo#number`.
        target: String,
        #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
        format: ReportFormat,
        /// SQLite database file, or a `postgres://` URL.
        #[arg(long, env = "TRACELINK_DB", default_value = "./tracelink.db")]
        db: Location,
        #[arg(long, env = "TRACELINK_IDENTITIES")]
        identities: Option<PathBuf>,
        /// JSON prices added to (and overriding) the built-in table, as `serve` reads
        /// them: the same file gives the same cost as the comment.
        #[arg(long, env = "TRACELINK_PRICE_TABLE")]
        price_table: Option<PathBuf>,
    },
    /// List the sessions that arrived most recently, newest first, one line each: to
    /// check that an agent is set up (its repository, user, cost and commits).
    Sessions {
        /// How many sessions to list.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        last: u32,
        /// SQLite database file, or a `postgres://` URL.
        #[arg(long, env = "TRACELINK_DB", default_value = "./tracelink.db")]
        db: Location,
        /// JSON prices added to (and overriding) the built-in table, as `serve` reads them.
        #[arg(long, env = "TRACELINK_PRICE_TABLE")]
        price_table: Option<PathBuf>,
    },
    /// Whether set-up is complete: per agent and repository, when telemetry last
    /// arrived; per repository, when GitHub's webhooks last did; and what is missing
    /// (sessions naming no repository or user, people in no team, no deliveries). Read
    /// only: safe beside a running `serve`. The dashboard's Setup page says the same,
    /// with the server's configuration.
    Status {
        /// SQLite database file, or a `postgres://` URL.
        #[arg(long, env = "TRACELINK_DB", default_value = "./tracelink.db")]
        db: Location,
        /// The identities file `serve` reads: users it does not know are listed.
        #[arg(long, env = "TRACELINK_IDENTITIES")]
        identities: Option<PathBuf>,
    },
    /// Try tracelink with nothing set up: a server on a temporary database and an
    /// in-process stand-in for GitHub. It plays the story of one pull request (a
    /// Claude Code session, its commits, CI, the merge, a deployment), prints the
    /// comment and check run tracelink posted, seeds a month of a small organisation
    /// (three teams, three agents, a policy change, a spend spike, an incident), and
    /// serves the dashboard at the address it prints until Ctrl-C.
    Demo(DemoArgs),
    /// The config file (`tracelink.toml`): `config check` validates it with the
    /// environment and flags, and prints the settings `serve` would run with.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the rows and bytes on disk of every table and index, largest first (read
    /// only: safe beside a running `serve`).
    Stats {
        /// SQLite database file, or a `postgres://` URL.
        #[arg(long, env = "TRACELINK_DB", default_value = "./tracelink.db")]
        db: Location,
    },
    /// Write a consistent copy of the database to FILE, also while `serve` runs (restore
    /// by stopping tracelink and putting FILE in place of the database file).
    Backup {
        /// Where the copy goes; it must not exist yet.
        file: PathBuf,
        /// SQLite database file, or a `postgres://` URL.
        #[arg(long, env = "TRACELINK_DB", default_value = "./tracelink.db")]
        db: Location,
    },
    /// Link sessions to commits again after the identities file, the grace period or a
    /// rule changed: queues the sessions in the database; a running `serve` relinks them
    /// within a minute (`POST /api/v1/admin/relink` at once), else the next start does.
    /// Reports whose content changes are published again; the rest are left alone.
    Relink {
        /// Only sessions of this repository (and those naming none).
        #[arg(long, value_parser = |s: &str| RepoName::parse(s).map_err(|e| e.to_string()))]
        repo: Option<RepoName>,
        /// Only sessions active at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// SQLite database file, or a `postgres://` URL.
        #[arg(long, env = "TRACELINK_DB", default_value = "./tracelink.db")]
        db: Location,
    },
    /// Fetch a repository's recent history from the GitHub API (pull requests, their
    /// commits with parents, statuses and check runs at their heads, default-branch
    /// commits, deployments with statuses, incident issues) and store it as webhook
    /// deliveries of it would, so ancestry, commit sets and DORA hold for history
    /// tracelink never saw. Resumes an unfinished backfill of the repository where it
    /// stopped; a second run sends conditional requests (unchanged pages cost nothing).
    /// When a running `serve` holds the backfill, follows its progress instead.
    Backfill(BackfillArgs),
    /// Stored webhook deliveries (and posted deployments and incidents).
    Deliveries {
        #[command(subcommand)]
        command: DeliveriesCommand,
    },
    /// Git hooks that record agent sessions in commit trailers.
    Hook {
        #[command(subcommand)]
        command: HookCommand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Json,
}

/// `owner/repo#number` → (`owner/repo`, number).
pub fn parse_pull_target(s: &str) -> Result<(RepoName, PrNumber), String> {
    let (repo, number) = s
        .rsplit_once('#')
        .ok_or_else(|| format!("{s:?} is not owner/repo#number"))?;
    let number: i64 = number
        .parse()
        .map_err(|_| format!("{number:?} in {s:?} is not a pull request number"))?;
    let repo = RepoName::parse(repo).map_err(|_| format!("{repo:?} in {s:?} is not owner/repo"))?;
    Ok((repo, PrNumber(number)))
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Install a `prepare-commit-msg` hook that adds `Traceparent:` and
    /// `Tracelink-Session:` trailers when an agent session is known.
    Install {
        /// The repository (any path inside its work tree).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
}

/// A secret from the command line or environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("a token must not be empty".into());
        }
        Ok(Secret(s.to_string()))
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A TOML file of these settings (keys: the flags' names); flags and environment
    /// variables override it. Default: `./tracelink.toml` when there is one.
    #[arg(long, env = "TRACELINK_CONFIG")]
    pub config: Option<PathBuf>,
    /// The address GitHub and browsers reach this server at (`https://tracelink.example.com`):
    /// the App created on `/setup/app` sends its webhooks there. Default: the address
    /// the setup page was opened at.
    #[arg(long, env = "TRACELINK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// SQLite database file, created on first start, or a `postgres://` URL.
    #[arg(long, env = "TRACELINK_DB", default_value = "./tracelink.db")]
    pub db: Location,
    /// OTLP/gRPC listen address (port 0 picks a free port).
    #[arg(long, env = "TRACELINK_GRPC_LISTEN", default_value = "127.0.0.1:4317")]
    pub grpc_listen: SocketAddr,
    /// OTLP/HTTP and API listen address (port 0 picks a free port).
    #[arg(long, env = "TRACELINK_HTTP_LISTEN", default_value = "127.0.0.1:4318")]
    pub http_listen: SocketAddr,
    /// Bearer tokens that may send data: OTLP, deployment and incident posts
    /// (comma-separated, several for rotation); none = no auth.
    #[arg(
        long = "ingest-token",
        env = "TRACELINK_INGEST_TOKENS",
        value_delimiter = ','
    )]
    pub ingest_tokens: Vec<Secret>,
    /// Bearer tokens that may read: the query API and the gRPC report service
    /// (comma-separated, several for rotation); none = no auth.
    #[arg(
        long = "read-token",
        env = "TRACELINK_READ_TOKENS",
        value_delimiter = ','
    )]
    pub read_tokens: Vec<Secret>,
    /// Replace every email and agent user id — telemetry, webhook payloads, the
    /// identities file — by a keyed hash before it is stored (the key is derived from
    /// `TRACELINK_SECRET_KEY`); linking still matches.
    #[arg(long, env = "TRACELINK_PSEUDONYMIZE_USERS")]
    pub pseudonymize_users: bool,
    /// The secret keys are derived from (`--pseudonymize-users`, the GitHub App created
    /// on `/setup/app`); keep it stable.
    #[arg(long, env = "TRACELINK_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<Secret>,
    /// Whether anything is shown or grouped per person (`on`) or not (`off`): today the
    /// session list's `?user=` filter; the organisation views' per-person groupings as
    /// they arrive.
    #[arg(long, env = "TRACELINK_PEOPLE", value_enum, default_value = "off")]
    pub people: OnOff,
    /// Bearer tokens for the admin routes (replaying deliveries), comma-separated; none:
    /// loopback clients only.
    #[arg(
        long = "admin-token",
        env = "TRACELINK_ADMIN_TOKENS",
        value_delimiter = ','
    )]
    pub admin_tokens: Vec<Secret>,
    /// Bearer token for `/metrics`; without it `/metrics` answers loopback clients only.
    #[arg(long = "metrics-token", env = "TRACELINK_METRICS_TOKEN")]
    pub metrics_token: Option<Secret>,
    /// Listen beyond loopback without ingest and read tokens (anyone who reaches the
    /// ports can send data and read every session).
    #[arg(long, env = "TRACELINK_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// HTTP connections open at once (keep it below the process's descriptor limit);
    /// more are closed as they arrive.
    #[arg(long, env = "TRACELINK_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,
    /// gRPC connections open at once (with `--max-connections`, keep the sum below the
    /// descriptor limit); at the cap the one silent longest is closed to make room.
    #[arg(long, env = "TRACELINK_MAX_GRPC_CONNECTIONS", default_value_t = 256)]
    pub max_grpc_connections: usize,
    /// Seconds an HTTP client has to send a request's headers (also how long an idle
    /// keep-alive connection stays open).
    #[arg(long, env = "TRACELINK_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds from a request's headers to its answer, body included.
    #[arg(long, env = "TRACELINK_REQUEST_TIMEOUT_SECS", default_value_t = 120)]
    pub request_timeout_secs: u64,
    /// Largest OTLP request body, compressed or inflated, in bytes.
    #[arg(long, env = "TRACELINK_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Requests waiting for the writer before new ones are refused with 429.
    #[arg(long, env = "TRACELINK_QUEUE_CAPACITY", default_value_t = 256)]
    pub queue_capacity: usize,
    /// JSON prices added to (and overriding) the built-in table, for estimating cost
    /// where agents report none.
    #[arg(long, env = "TRACELINK_PRICE_TABLE")]
    pub price_table: Option<PathBuf>,
    /// GitHub App webhook secrets (comma-separated; several during a rotation). With
    /// none, every webhook delivery is refused.
    #[arg(
        long = "webhook-secret",
        env = "TRACELINK_WEBHOOK_SECRET",
        value_delimiter = ','
    )]
    pub webhook_secrets: Vec<Secret>,
    /// Issue label that marks an incident (case-insensitive).
    #[arg(long, env = "TRACELINK_INCIDENT_LABEL", default_value = "incident")]
    pub incident_label: String,
    /// Environment of an incident whose issue names none (no `environment:` line, no
    /// `env:<name>` label).
    #[arg(
        long,
        env = "TRACELINK_INCIDENT_ENVIRONMENT",
        default_value = "production"
    )]
    pub incident_environment: String,
    /// TOML file mapping GitHub logins to emails and agent user IDs.
    #[arg(long, env = "TRACELINK_IDENTITIES")]
    pub identities: Option<PathBuf>,
    /// Seconds a commit may fall outside a session's active window and still be linked
    /// to it by the `window` and `coauthor` rules.
    #[arg(long, env = "TRACELINK_LINK_GRACE_SECS", default_value_t = 1800)]
    pub link_grace_secs: u64,
    /// The GitHub App (with a private key, reports are posted to pull requests).
    #[command(flatten)]
    pub github: GithubAppArgs,
    /// How long raw telemetry (spans, log events, metric points) and processed webhook
    /// payloads are kept after tracelink received them: `90d`, `12h`, `30m`, `45s`, or
    /// `off`. Facts, links and reports derived from them are kept.
    #[arg(
        long,
        env = "TRACELINK_RETAIN_RAW",
        default_value = "90d",
        value_parser = crate::retention::parse_retention
    )]
    pub retain_raw: crate::retention::Retention,
    /// Seconds a pull request's report waits for more changes before it is published;
    /// at most one write per pull request per period.
    #[arg(long, env = "TRACELINK_COMMENT_DEBOUNCE", default_value_t = 10)]
    pub comment_debounce: u64,
    /// Seconds a replica's claim on shared work (a webhook delivery to apply, a report
    /// to publish, the export of organisation-wide figures on /metrics) lasts without
    /// renewal: how long the work of a replica that died waits for another.
    #[arg(long, env = "TRACELINK_REPLICA_LEASE", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub replica_lease: u64,
    /// A day's spend or tokens alerts when above its trailing 28 days' median by this
    /// many times 1.4826 × MAD (`GET /api/v1/alerts`).
    #[arg(long, env = "TRACELINK_ALERT_MADS", default_value_t = 4.0, value_parser = positive_f64)]
    pub alert_mads: f64,
    /// Adds GitHub team membership (read through the App, at start, at most once a day
    /// per organisation) to the identities file's teams; needs the App's organisation
    /// permission "Members: read".
    #[arg(long, env = "TRACELINK_SYNC_TEAMS")]
    pub sync_teams: bool,
    /// Where analytics' days, weeks and months begin, and alerts' days: an IANA time
    /// zone name (`Europe/Berlin`); dates in the API are this zone's.
    #[arg(long, env = "TRACELINK_TIMEZONE", default_value = "UTC", value_parser = parse_zone)]
    pub timezone: crate::time::Zone,
    /// The least spend in a day (US dollars) that raises a spend-spike alert.
    #[arg(long, env = "TRACELINK_ALERT_MIN_USD", default_value_t = 20.0, value_parser = non_negative_f64)]
    pub alert_min_usd: f64,
    /// Posts each of the day's alerts once, as Slack-compatible JSON (`{"text": …}`), to
    /// this http(s) URL (a Slack or Mattermost incoming webhook, or any receiver).
    #[arg(long, env = "TRACELINK_ALERT_WEBHOOK")]
    pub alert_webhook: Option<String>,
    /// Whom PR comments and job summaries name: `logins` (GitHub logins, else "a
    /// teammate"; never an email) or `none`.
    #[arg(
        long,
        env = "TRACELINK_COMMENT_PEOPLE",
        value_enum,
        default_value = "logins"
    )]
    pub comment_people: crate::report::markdown::CommentPeople,
    /// What PR comments and job summaries show of cost: `per-session`, `total` or
    /// `none`. Unset: per-session on private repositories, total on public ones (and
    /// where the visibility is not known yet).
    #[arg(long, env = "TRACELINK_COMMENT_COST", value_enum)]
    pub comment_cost: Option<crate::report::markdown::CostShown>,
    /// Issuer of the GitHub Actions OIDC tokens that authenticate CI uploads.
    #[arg(
        long,
        env = "TRACELINK_OIDC_ISSUER",
        default_value = "https://token.actions.githubusercontent.com"
    )]
    pub oidc_issuer: String,
    /// Audience CI upload tokens must be issued for.
    #[arg(long, env = "TRACELINK_OIDC_AUDIENCE", default_value = "tracelink")]
    pub oidc_audience: String,
    /// Static CI upload tokens, `owner/repo=TOKEN` (comma-separated), for CI without OIDC.
    #[arg(
        long = "upload-token",
        env = "TRACELINK_UPLOAD_TOKENS",
        value_delimiter = ','
    )]
    pub upload_tokens: Vec<Secret>,
    /// Repositories (`owner/repo`, or `owner/*` for all of an owner's) whose CI may
    /// upload with an OIDC token although no App installation or delivery names them
    /// (comma-separated). Others' tokens are refused.
    #[arg(
        long = "upload-repos",
        env = "TRACELINK_UPLOAD_REPOS",
        value_delimiter = ','
    )]
    pub upload_repos: Vec<String>,
    /// Largest CI upload (all files together), in bytes.
    #[arg(long, env = "TRACELINK_MAX_UPLOAD_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_upload_bytes: usize,
}

/// `tracelink backfill`'s arguments.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The repository, `owner/repo`.
    #[arg(value_parser = |s: &str| RepoName::parse(s).map_err(|e| e.to_string()))]
    pub repo: RepoName,
    /// How far back: pull requests updated, commits made, deployments created and
    /// incidents updated within this (`30d`, `12h`, `90m`).
    #[arg(long, default_value = "30d", value_parser = parse_since)]
    pub since: std::time::Duration,
    /// SQLite database file, or a `postgres://` URL.
    #[arg(long, env = "TRACELINK_DB", default_value = "./tracelink.db")]
    pub db: Location,
    /// Issue label that marks an incident (case-insensitive), as `serve` has it.
    #[arg(long, env = "TRACELINK_INCIDENT_LABEL", default_value = "incident")]
    pub incident_label: String,
    /// Environment of an incident whose issue names none, as `serve` has it.
    #[arg(
        long,
        env = "TRACELINK_INCIDENT_ENVIRONMENT",
        default_value = "production"
    )]
    pub incident_environment: String,
    /// TOML file mapping GitHub logins to emails and agent user IDs, as `serve` has it.
    #[arg(long, env = "TRACELINK_IDENTITIES")]
    pub identities: Option<PathBuf>,
    /// Link grace in seconds, as `serve` has it.
    #[arg(long, env = "TRACELINK_LINK_GRACE_SECS", default_value_t = 1800)]
    pub link_grace_secs: u64,
    /// Replace every email by a keyed hash before it is stored, as `serve` does.
    #[arg(long, env = "TRACELINK_PSEUDONYMIZE_USERS")]
    pub pseudonymize_users: bool,
    /// The secret keys are derived from (`--pseudonymize-users`): the same as `serve`'s.
    #[arg(long, env = "TRACELINK_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<Secret>,
    #[command(flatten)]
    pub github: GithubAppArgs,
}

/// `--since` of `tracelink backfill`: a duration like `30d`, `12h`, `90m`.
pub fn parse_since(s: &str) -> Result<std::time::Duration, String> {
    match crate::retention::parse_retention(s) {
        Ok(crate::retention::Retention(Some(d))) => Ok(d),
        _ => Err(format!("{s:?} is not a duration like 30d, 12h or 90m")),
    }
}

impl BackfillArgs {
    /// The GitHub App settings; a backfill needs them.
    pub fn github_app(&self) -> anyhow::Result<crate::github::app::AppConfig> {
        self.github.app()?.ok_or_else(|| {
            anyhow::anyhow!(
                "a backfill reads the GitHub API as the App: set --github-app-id and --github-private-key-file (or their TRACELINK_ environment variables)"
            )
        })
    }
}

/// The GitHub App's settings, as `serve` and `backfill` both take them.
#[derive(Debug, Clone, Args)]
pub struct GithubAppArgs {
    /// GitHub App ID; with a private key, the App's API is used (reports posted,
    /// backfills read).
    #[arg(long, env = "TRACELINK_GITHUB_APP_ID")]
    pub github_app_id: Option<u64>,
    /// File holding the App's private key (PEM).
    #[arg(long, env = "TRACELINK_GITHUB_PRIVATE_KEY_FILE")]
    pub github_private_key_file: Option<PathBuf>,
    /// The App's private key itself (PEM), instead of a file.
    #[arg(
        long,
        env = "TRACELINK_GITHUB_PRIVATE_KEY",
        conflicts_with = "github_private_key_file"
    )]
    pub github_private_key: Option<Secret>,
    /// GitHub's REST API (GitHub Enterprise Server: `https://HOST/api/v3`).
    #[arg(
        long,
        env = "TRACELINK_GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,
    /// GitHub's web pages, where `/setup/app` sends a person to create the App from
    /// the manifest (GitHub Enterprise Server: `https://HOST`).
    #[arg(
        long,
        env = "TRACELINK_GITHUB_WEB_URL",
        default_value = "https://github.com"
    )]
    pub github_web_url: String,
}

impl Default for GithubAppArgs {
    /// No App.
    fn default() -> Self {
        Self {
            github_app_id: None,
            github_private_key_file: None,
            github_private_key: None,
            github_api_url: "https://api.github.com".into(),
            github_web_url: "https://github.com".into(),
        }
    }
}

/// An App's settings as flags would give them (tests, the demo).
impl From<&crate::github::app::AppConfig> for GithubAppArgs {
    fn from(app: &crate::github::app::AppConfig) -> Self {
        Self {
            github_app_id: Some(app.app_id),
            github_private_key_file: None,
            github_private_key: Some(Secret(app.private_key_pem.clone())),
            github_api_url: app.api_url.clone(),
            github_web_url: "https://github.com".into(),
        }
    }
}

impl GithubAppArgs {
    /// The GitHub App settings, when an App ID and a key are given; an error naming
    /// what is missing when only one is.
    pub fn app(&self) -> anyhow::Result<Option<crate::github::app::AppConfig>> {
        let key = match (&self.github_private_key, &self.github_private_key_file) {
            (Some(k), _) => Some(k.0.clone()),
            (None, Some(path)) => Some(std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("reading the GitHub App private key {}: {e}", path.display())
            })?),
            (None, None) => None,
        };
        match (self.github_app_id, key) {
            (Some(app_id), Some(private_key_pem)) => Ok(Some(crate::github::app::AppConfig {
                app_id,
                private_key_pem,
                api_url: self.github_api_url.clone(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => anyhow::bail!(
                "--github-app-id is set but no private key: set --github-private-key-file or --github-private-key"
            ),
            (None, Some(_)) => {
                anyhow::bail!("a GitHub App private key is set but no --github-app-id")
            }
        }
    }
}

impl ServeArgs {
    /// The GitHub App settings, when an App ID and a key are given.
    pub fn github_app(&self) -> anyhow::Result<Option<crate::github::app::AppConfig>> {
        self.github.app()
    }
}

impl ServeArgs {
    /// Settings for a server on loopback with ephemeral ports (tests, benchmarks, demo).
    pub fn ephemeral(db: impl Into<Location>) -> Self {
        Self {
            config: None,
            public_url: None,
            db: db.into(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ingest_tokens: Vec::new(),
            read_tokens: Vec::new(),
            admin_tokens: Vec::new(),
            pseudonymize_users: false,
            people: OnOff::Off,
            secret_key: None,
            metrics_token: None,
            allow_unauthenticated: false,
            max_connections: 512,
            max_grpc_connections: 256,
            header_timeout_secs: 10,
            request_timeout_secs: 120,
            max_body_bytes: 16 * 1024 * 1024,
            queue_capacity: 256,
            price_table: None,
            webhook_secrets: Vec::new(),
            incident_label: "incident".into(),
            incident_environment: "production".into(),
            identities: None,
            link_grace_secs: 1800,
            github: GithubAppArgs::default(),
            comment_debounce: 10,
            replica_lease: 30,
            alert_mads: 4.0,
            timezone: crate::time::Zone::UTC,
            sync_teams: false,
            alert_min_usd: 20.0,
            alert_webhook: None,
            retain_raw: crate::retention::Retention(Some(std::time::Duration::from_secs(
                90 * 86_400,
            ))),
            comment_people: crate::report::markdown::CommentPeople::Logins,
            comment_cost: None,
            oidc_issuer: "https://token.actions.githubusercontent.com".into(),
            oidc_audience: "tracelink".into(),
            upload_tokens: Vec::new(),
            upload_repos: Vec::new(),
            max_upload_bytes: 64 * 1024 * 1024,
        }
    }
}

fn parse_zone(s: &str) -> Result<crate::time::Zone, String> {
    crate::time::Zone::parse(s)
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of dollars (0 or more)")),
    }
}
