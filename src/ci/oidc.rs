//! Who may upload: GitHub Actions OIDC tokens, and static per-repository upload tokens.
//!
//! An OIDC token is an RS256 JWT that GitHub mints for one workflow run. [`Verifier`]
//! fetches the issuer's keys (`{issuer}/.well-known/openid-configuration` → `jwks_uri`
//! → JWKS), caches them by `kid`, and refetches once when a token names a key it does
//! not know (at most once a minute, so a stream of made-up `kid`s cannot make tracelink
//! hammer the issuer). A token is accepted when its signature checks out, `iss` is the
//! configured issuer, `aud` contains the configured audience, `exp`/`nbf` hold with 60 s
//! of leeway, and (checked by the caller, once the upload's context is read) its
//! `repository` claim names the repository the upload is for.
//!
//! Static tokens (`--upload-token owner/repo=TOKEN`) are compared in constant time and
//! are good for their repository only.
//!
//! Every refusal is an [`AuthError`] whose message is the reason the 401 carries.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use tokio::sync::{Mutex, OnceCell};

/// Leeway on `exp` and `nbf`, for clocks that disagree a little.
const LEEWAY_SECS: u64 = 60;
/// Least time between two JWKS fetches caused by unknown key IDs.
const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// Least time between two fetches while no key could be fetched at all.
const RETRY_EMPTY_AFTER: Duration = Duration::from_secs(5);
/// Largest JWT accepted (GitHub's are about 1.5 KB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why an upload's credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "missing Authorization: Bearer <token> (a GitHub Actions OIDC token or an upload token)"
    )]
    Missing,
    #[error("the bearer token is neither a known upload token nor a JWT")]
    UnknownToken,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unsupported token algorithm {0}: GitHub Actions tokens are RS256")]
    Algorithm(String),
    #[error("unknown signing key {0:?}: not in the issuer's JWKS")]
    UnknownKey(String),
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("issuer {found:?} is not the configured issuer {expected:?}")]
    Issuer { found: String, expected: String },
    #[error("audience {found:?} does not include the configured audience {expected:?}")]
    Audience { found: String, expected: String },
    #[error("repository claim {claim:?} does not match the upload's repository {upload:?}")]
    Repository { claim: String, upload: String },
    #[error("the upload token is for {allowed}, not for {upload:?}")]
    StaticRepository { allowed: String, upload: String },
    /// Not the uploader's fault: answered 503, not 401.
    #[error("the OIDC issuer's signing keys could not be fetched: {0}")]
    Keys(String),
}

impl AuthError {
    /// Whether the fault lies with tracelink or the issuer rather than the credentials.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::Keys(_))
    }
}

/// What a verified GitHub Actions token says about the workflow run it was minted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunClaims {
    pub repository: String,
    pub repository_id: Option<i64>,
    /// `ref`: the branch or tag (`refs/heads/main`), or `refs/pull/N/merge` for a pull
    /// request run.
    pub git_ref: String,
    /// `sha`: the commit the run checked out (for a pull request run, GitHub's test
    /// merge, not the head).
    pub sha: String,
    /// `event_name`: push, pull_request, workflow_run, schedule, …
    pub event_name: String,
    pub run_id: Option<i64>,
    pub run_attempt: Option<i64>,
}

/// Who an upload's credentials say it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A verified OIDC token and the run it names.
    Oidc(Box<RunClaims>),
    /// A static token and the repositories (lower case) it was configured for.
    Static { repositories: Vec<String> },
}

impl Principal {
    /// Whether these credentials may upload for `repo` (case-insensitive).
    pub fn allows(&self, repo: &str) -> Result<(), AuthError> {
        match self {
            Principal::Oidc(run) if run.repository.eq_ignore_ascii_case(repo) => Ok(()),
            Principal::Oidc(run) => Err(AuthError::Repository {
                claim: run.repository.clone(),
                upload: repo.to_string(),
            }),
            Principal::Static { repositories }
                if repositories.iter().any(|r| r.eq_ignore_ascii_case(repo)) =>
            {
                Ok(())
            }
            Principal::Static { repositories } => Err(AuthError::StaticRepository {
                allowed: repositories.join(", "),
                upload: repo.to_string(),
            }),
        }
    }
}

/// The claims tracelink reads from a GitHub Actions token.
#[derive(Debug, Deserialize)]
struct Claims {
    iss: Option<String>,
    #[serde(default)]
    aud: Audience,
    repository: Option<String>,
    repository_id: Option<Number>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    sha: Option<String>,
    event_name: Option<String>,
    run_id: Option<Number>,
    run_attempt: Option<Number>,
}

/// GitHub writes numeric claims as strings (`"run_id": "1234"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Text(String),
}

impl Number {
    fn get(self) -> Option<i64> {
        match self {
            Number::Int(n) => Some(n),
            Number::Text(s) => s.trim().parse().ok(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    last_fetch: Option<Instant>,
}

/// Verifies OIDC tokens of one issuer for one audience, caching the issuer's keys.
pub struct Verifier {
    issuer: String,
    audience: String,
    cache: Mutex<KeyCache>,
    client: OnceCell<octocrab::Octocrab>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(issuer: &str, audience: &str) -> Self {
        Verifier {
            issuer: issuer.trim_end_matches('/').to_string(),
            audience: audience.to_string(),
            cache: Mutex::new(KeyCache::default()),
            client: OnceCell::new(),
        }
    }

    /// Checks a token's signature, issuer, audience and lifetime; returns the run its
    /// claims name as a [`Principal`].
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed("token too long".into()));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Malformed(format!("header: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Malformed("the header names no key (kid)".into()))?;
        let key = self.key(&kid).await?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false; // checked below, to say which audience it was
        validation.set_required_spec_claims(&["exp"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e
            .kind()
        {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            _ => AuthError::Malformed(e.to_string()),
        })?;
        let claims = data.claims;
        let iss = claims.iss.unwrap_or_default();
        if iss.trim_end_matches('/') != self.issuer {
            return Err(AuthError::Issuer {
                found: iss,
                expected: self.issuer.clone(),
            });
        }
        let audiences = match claims.aud {
            Audience::None => Vec::new(),
            Audience::One(a) => vec![a],
            Audience::Many(a) => a,
        };
        if !audiences.contains(&self.audience) {
            return Err(AuthError::Audience {
                found: audiences.join(", "),
                expected: self.audience.clone(),
            });
        }
        let required = |v: Option<String>, name: &str| {
            v.filter(|v| !v.is_empty())
                .ok_or_else(|| AuthError::Malformed(format!("no {name} claim")))
        };
        Ok(Principal::Oidc(Box::new(RunClaims {
            repository: required(claims.repository, "repository")?,
            repository_id: claims.repository_id.and_then(Number::get),
            git_ref: required(claims.git_ref, "ref")?,
            sha: required(claims.sha, "sha")?.to_ascii_lowercase(),
            event_name: required(claims.event_name, "event_name")?,
            run_id: claims.run_id.and_then(Number::get),
            run_attempt: claims.run_attempt.and_then(Number::get),
        })))
    }

    /// The key with this ID, fetching the issuer's JWKS when it is not cached yet.
    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(k) = cache.keys.get(kid) {
            return Ok(k.clone());
        }
        let wait = if cache.keys.is_empty() {
            RETRY_EMPTY_AFTER
        } else {
            REFETCH_AFTER
        };
        let may_fetch = cache.last_fetch.is_none_or(|t| t.elapsed() >= wait);
        if may_fetch {
            cache.last_fetch = Some(Instant::now());
            let keys = self.fetch_keys().await?;
            tracing::info!(issuer = %self.issuer, keys = keys.len(), "fetched the OIDC issuer's signing keys");
            cache.keys = keys;
        } else if cache.keys.is_empty() {
            return Err(AuthError::Keys(
                "the last attempt failed; retrying shortly".into(),
            ));
        }
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::UnknownKey(kid.to_string()))
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, DecodingKey>, AuthError> {
        #[derive(Deserialize)]
        struct Discovery {
            jwks_uri: String,
        }
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<serde_json::Value>,
        }
        let discovery_url = format!("{}/.well-known/openid-configuration", self.issuer);
        let discovery: Discovery = serde_json::from_str(&self.get(&discovery_url).await?)
            .map_err(|e| AuthError::Keys(format!("{discovery_url}: {e}")))?;
        let jwks: Jwks = serde_json::from_str(&self.get(&discovery.jwks_uri).await?)
            .map_err(|e| AuthError::Keys(format!("{}: {e}", discovery.jwks_uri)))?;
        let mut keys = HashMap::new();
        for value in jwks.keys {
            // A key tracelink cannot use (another algorithm) is skipped, not fatal.
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(&jwk))
            else {
                continue;
            };
            keys.insert(kid, key);
        }
        if keys.is_empty() {
            return Err(AuthError::Keys(format!(
                "{} holds no usable RSA key",
                discovery.jwks_uri
            )));
        }
        Ok(keys)
    }

    async fn get(&self, url: &str) -> Result<String, AuthError> {
        let client = self
            .client
            .get_or_try_init(|| async {
                octocrab::Octocrab::builder()
                    .set_connect_timeout(Some(Duration::from_secs(5)))
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .build()
                    .map_err(|e| AuthError::Keys(format!("HTTP client: {e}")))
            })
            .await?;
        let response = client
            ._get(url)
            .await
            .map_err(|e| AuthError::Keys(format!("{url}: {e}")))?;
        let status = response.status();
        let body = client
            .body_to_string(response)
            .await
            .map_err(|e| AuthError::Keys(format!("{url}: {e}")))?;
        if !status.is_success() {
            return Err(AuthError::Keys(format!("{url} answered {status}")));
        }
        Ok(body)
    }
}

/// The repositories a static token is configured for (lower case); empty when it is
/// none of them. Every configured token is compared, in constant time.
pub fn static_token_repositories(tokens: &[(String, String)], presented: &str) -> Vec<String> {
    let mut repos = Vec::new();
    for (repo, token) in tokens {
        if constant_time_eq(token.as_bytes(), presented.as_bytes()) {
            repos.push(repo.clone());
        }
    }
    repos
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a bearer token is shaped like a JWT (three base64url segments).
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts.iter().take(2).all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_allow_their_repository_only() {
        let p = Principal::Oidc(Box::new(RunClaims {
            repository: "Acme/Widgets".into(),
            repository_id: None,
            git_ref: "refs/heads/main".into(),
            sha: "a".repeat(40),
            event_name: "push".into(),
            run_id: None,
            run_attempt: None,
        }));
        assert!(p.allows("acme/widgets").is_ok());
        assert_eq!(
            p.allows("acme/other").unwrap_err().to_string(),
            "repository claim \"Acme/Widgets\" does not match the upload's repository \"acme/other\""
        );
        let s = Principal::Static {
            repositories: vec!["acme/widgets".into()],
        };
        assert!(s.allows("ACME/widgets").is_ok());
        assert!(s.allows("acme/other").is_err());
    }

    #[test]
    fn static_tokens_match_exactly() {
        let tokens = vec![
            ("acme/a".to_string(), "tok-a".to_string()),
            ("acme/b".to_string(), "tok-b".to_string()),
        ];
        assert_eq!(static_token_repositories(&tokens, "tok-b"), vec!["acme/b"]);
        assert!(static_token_repositories(&tokens, "tok-").is_empty());
        assert!(static_token_repositories(&tokens, "tok-bb").is_empty());
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(!looks_like_jwt("plain-token"));
        assert!(!looks_like_jwt("a..b"));
    }

    #[tokio::test]
    async fn garbage_tokens_are_refused_without_a_fetch() {
        let v = Verifier::new("http://127.0.0.1:9", "tracelink");
        assert!(matches!(
            v.verify("not.a.jwt").await,
            Err(AuthError::Malformed(_))
        ));
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(
            v.verify(&long).await,
            Err(AuthError::Malformed(_))
        ));
    }
}
