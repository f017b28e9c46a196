//! Creating the GitHub App from its manifest (GitHub's "register a GitHub App from a
//! manifest" flow): the manifest a person posts to GitHub, the signed `state` that
//! comes back with GitHub's code, the code's conversion into the App's credentials
//! (`POST /app-manifests/{code}/conversions`, within the hour), and the App stored in
//! the database with its secrets sealed under `TRACELINK_SECRET_KEY`.

use anyhow::{Context, bail};
use octocrab::Octocrab;
use serde::Deserialize;
use serde_json::Value;

use super::app::AppConfig;
use crate::crypto;
use crate::store::app::StoredApp;

/// The manifest shipped with tracelink: permissions and events.
pub const MANIFEST: &str = include_str!("../../webhooks/app-manifest.json");
/// How long a setup started on `/setup/app` may take (GitHub's codes last an hour).
pub const STATE_TTL_SECS: i64 = 3600;
/// The shortest `TRACELINK_SECRET_KEY` accepted.
pub const MIN_SECRET: usize = 16;

const SEAL_INFO: &[u8] = b"tracelink github app v1";
const STATE_INFO: &[u8] = b"tracelink setup state v1";

/// The keys derived from `TRACELINK_SECRET_KEY` for the App: one seals its secrets,
/// one signs setup states.
#[derive(Clone)]
pub struct AppKeys {
    seal: [u8; 32],
    state: [u8; 32],
}

impl std::fmt::Debug for AppKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKeys(***)")
    }
}

impl AppKeys {
    /// From `TRACELINK_SECRET_KEY`; `None` when it is missing or too short.
    pub fn from_secret(secret: Option<&str>) -> Option<AppKeys> {
        let secret = secret.map(str::trim).filter(|s| s.len() >= MIN_SECRET)?;
        Some(AppKeys {
            seal: crypto::hkdf(secret.as_bytes(), SEAL_INFO),
            state: crypto::hkdf(secret.as_bytes(), STATE_INFO),
        })
    }

    /// A state for a setup started at `now_secs`: its expiry and a MAC of it.
    pub fn state(&self, now_secs: i64) -> String {
        let expiry = now_secs + STATE_TTL_SECS;
        format!(
            "{expiry}.{}",
            crate::ids::encode_hex(&crypto::hmac_sha256(
                &self.state,
                expiry.to_string().as_bytes()
            ))
        )
    }

    /// Whether `state` is one this server signed and it has not expired.
    pub fn state_valid(&self, state: &str, now_secs: i64) -> bool {
        let Some((expiry, mac)) = state.split_once('.') else {
            return false;
        };
        let Ok(at) = expiry.parse::<i64>() else {
            return false;
        };
        let want = crate::ids::encode_hex(&crypto::hmac_sha256(&self.state, expiry.as_bytes()));
        crate::otlp::token_allowed(&[want], Some(mac)) && now_secs <= at
    }
}

/// The manifest to post to GitHub for a server reached at `public_url` (no trailing
/// slash): its webhooks go to `/webhooks/github`, and GitHub sends the person back to
/// `/setup/app/callback` with the code.
pub fn manifest(public_url: &str) -> anyhow::Result<Value> {
    let mut m: Value = serde_json::from_str(MANIFEST).context("the bundled manifest")?;
    m["url"] = public_url.into();
    m["hook_attributes"]["url"] = format!("{public_url}/webhooks/github").into();
    m["redirect_url"] = format!("{public_url}/setup/app/callback").into();
    Ok(m)
}

/// A public URL as the setup form gives it: `http(s)://host[:port][/path]`, without a
/// trailing slash.
pub fn public_url(s: &str) -> anyhow::Result<String> {
    let s = s.trim().trim_end_matches('/');
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .with_context(|| format!("{s:?} is not an http(s) URL"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ', '"', '<', '>']) {
        bail!("{s:?} is not a URL GitHub can reach (https://host[:port][/path])");
    }
    Ok(s.to_string())
}

/// What GitHub returns for a manifest code.
#[derive(Debug, Clone, Deserialize)]
pub struct Conversion {
    pub id: u64,
    pub slug: String,
    pub name: String,
    pub html_url: String,
    pub pem: String,
    /// `null` when the App was created without a webhook secret.
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

/// Exchanges GitHub's `code` for the App's credentials (no authentication: the code is
/// the credential, once, within the hour).
pub async fn convert(api_url: &str, code: &str) -> anyhow::Result<Conversion> {
    if code.is_empty()
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!("GitHub's code {code:?} is not one it issues");
    }
    let client = Octocrab::builder()
        .base_uri(api_url.trim_end_matches('/'))
        .with_context(|| format!("GitHub API URL {api_url:?} is not a URL"))?
        .build()
        .context("building the GitHub client")?;
    let answer: Value = client
        .post(format!("/app-manifests/{code}/conversions"), None::<&()>)
        .await
        .map_err(|e| match e {
            octocrab::Error::GitHub { source, .. } => anyhow::anyhow!(
                "GitHub refused the code ({}): {}; codes last an hour and work once — start again",
                source.status_code,
                source.message
            ),
            other => anyhow::anyhow!("asking GitHub for the App's credentials: {other}"),
        })?;
    let c: Conversion = serde_json::from_value(answer)
        .context("GitHub's answer to the manifest code is not an App's credentials")?;
    if c.webhook_secret.as_deref().is_none_or(str::is_empty) {
        bail!(
            "GitHub created App {} without a webhook secret; set one in its settings and start tracelink with --webhook-secret",
            c.slug
        );
    }
    Ok(c)
}

impl AppKeys {
    /// The App to store: its secrets sealed.
    pub fn seal(&self, c: &Conversion) -> anyhow::Result<StoredApp> {
        let secret = c.webhook_secret.as_deref().unwrap_or_default();
        Ok(StoredApp {
            app_id: i64::try_from(c.id).context("the App's id")?,
            slug: c.slug.clone(),
            html_url: c.html_url.clone(),
            private_key_sealed: crypto::seal(&self.seal, b"private key", c.pem.as_bytes())?,
            webhook_secret_sealed: crypto::seal(&self.seal, b"webhook secret", secret.as_bytes())?,
        })
    }

    /// The stored App's configuration and webhook secret.
    pub fn open(&self, app: &StoredApp, api_url: &str) -> anyhow::Result<(AppConfig, String)> {
        let text = |context: &[u8], sealed: &[u8]| -> anyhow::Result<String> {
            let bytes = crypto::open(&self.seal, context, sealed)
                .with_context(|| format!("the GitHub App {} stored by /setup/app", app.slug))?;
            String::from_utf8(bytes).context("a sealed value is not text")
        };
        let pem = text(b"private key", &app.private_key_sealed)?;
        let secret = text(b"webhook secret", &app.webhook_secret_sealed)?;
        Ok((
            AppConfig {
                app_id: u64::try_from(app.app_id).context("the App's id")?,
                private_key_pem: pem,
                api_url: api_url.to_string(),
            },
            secret,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_signed_and_expire() {
        let keys = AppKeys::from_secret(Some("a secret of enough length")).unwrap();
        let other = AppKeys::from_secret(Some("another secret, long enough")).unwrap();
        let s = keys.state(1_000);
        assert!(keys.state_valid(&s, 1_000 + STATE_TTL_SECS));
        assert!(!keys.state_valid(&s, 1_001 + STATE_TTL_SECS), "expired");
        assert!(!other.state_valid(&s, 1_000), "another server's");
        assert!(!keys.state_valid("99999999999.00", 1_000), "forged");
        assert!(!keys.state_valid("", 1_000));
        assert!(AppKeys::from_secret(Some("short")).is_none());
    }

    #[test]
    fn the_manifest_points_github_at_this_server() {
        let m = manifest("https://tl.acme.example").unwrap();
        assert_eq!(
            m["hook_attributes"]["url"],
            "https://tl.acme.example/webhooks/github"
        );
        assert_eq!(
            m["redirect_url"],
            "https://tl.acme.example/setup/app/callback"
        );
        assert_eq!(m["default_permissions"]["pull_requests"], "write");
        assert_eq!(
            public_url("https://tl.acme.example/").unwrap(),
            "https://tl.acme.example"
        );
        assert!(public_url("tl.acme.example").is_err());
        assert!(public_url("https://").is_err());
        assert!(public_url("https://x\"><script>").is_err());
    }
}
