//! How every call reaches GitHub: installation tokens (cached, renewed before they
//! expire), one request with bounded retries and back-off honouring `retry-after` and
//! the rate-limit reset, and pagination.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use octocrab::Octocrab;
use octocrab::models::InstallationId;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::*;

/// One installation's client. octocrab caches the installation token inside it, so it
/// must live as long as the App: a client made per call would fetch a token per call.
pub(super) struct Installation {
    pub(super) id: u64,
    pub(super) client: Octocrab,
    /// Held while the token is checked and renewed, so concurrent calls fetch one token.
    pub(super) renewing: tokio::sync::Mutex<()>,
}

impl Installation {
    pub(super) async fn fresh_token(&self) -> Result<(), octocrab::Error> {
        let _one_at_a_time = self.renewing.lock().await;
        self.client
            .installation_token_with_buffer(chrono::Duration::minutes(TOKEN_RENEW_MARGIN_MINUTES))
            .await
            .map(drop)
    }
}

#[derive(Clone, Copy)]
pub(super) enum Auth<'a> {
    App,
    Installation(&'a Installation),
}

#[derive(Clone, Copy)]
pub(super) enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        })
    }
}

/// A 2xx answer (or a 304 to a conditional request): its body and the next page, if the
/// `Link` header names one, its ETag and what is left of the rate limit.
pub(super) struct Reply {
    pub(super) endpoint: String,
    pub(super) status: u16,
    pub(super) body: String,
    pub(super) next: Option<String>,
    pub(super) etag: Option<String>,
    pub(super) remaining: Option<u64>,
    pub(super) reset: Option<i64>,
}

impl Reply {
    pub(super) fn json<T: DeserializeOwned>(&self) -> Result<T, GithubError> {
        serde_json::from_str(&self.body).map_err(|source| GithubError::Body {
            endpoint: self.endpoint.clone(),
            source,
        })
    }
}

/// An error answer, as much as the retry decision needs of it.
pub(super) struct Refusal {
    pub(super) status: u16,
    pub(super) retry_after: Option<u64>,
    pub(super) remaining: Option<u64>,
    pub(super) reset: Option<i64>,
    pub(super) message: String,
}

pub(super) enum Failure {
    Refused(Refusal),
    Transport(octocrab::Error),
    Client(octocrab::Error),
}

/// A failed attempt: the endpoint it was for (the token endpoint when the token could
/// not be had) and what went wrong.
pub(super) struct FailedAttempt {
    pub(super) endpoint: String,
    pub(super) failure: Failure,
}

impl FailedAttempt {
    pub(super) fn from_octocrab(endpoint: String, error: octocrab::Error) -> Self {
        let failure = match error {
            octocrab::Error::GitHub { source, .. } => {
                let header = |name: &str| {
                    source
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(name))
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                Failure::Refused(Refusal {
                    status: source.status_code.as_u16(),
                    retry_after: header("retry-after").and_then(|v| v.trim().parse().ok()),
                    remaining: header("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok()),
                    reset: header("x-ratelimit-reset").and_then(|v| v.trim().parse().ok()),
                    message: source.message.clone(),
                })
            }
            e @ (octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. }) => {
                Failure::Transport(e)
            }
            e => Failure::Client(e),
        };
        FailedAttempt { endpoint, failure }
    }

    pub(super) fn into_error(self, attempts: u32) -> GithubError {
        let endpoint = self.endpoint;
        match self.failure {
            Failure::Refused(r) => GithubError::Status {
                endpoint,
                status: r.status,
                message: r.message,
                attempts,
            },
            Failure::Transport(source) => GithubError::Transport {
                endpoint,
                attempts,
                source,
            },
            Failure::Client(source) => GithubError::Client { endpoint, source },
        }
    }
}

/// How long to wait before the next attempt, or `None` when retrying cannot help.
pub(super) fn retry_delay(failure: &Failure, attempt: u32, now_unix: i64) -> Option<Duration> {
    let backoff = backoff(attempt);
    let r = match failure {
        Failure::Refused(r) => r,
        Failure::Transport(_) => return Some(backoff),
        Failure::Client(_) => return None,
    };
    let says_rate_limit = r.message.to_ascii_lowercase().contains("rate limit");
    let rate_limited = r.status == 429
        || (r.status == 403
            && (r.retry_after.is_some() || r.remaining == Some(0) || says_rate_limit));
    if rate_limited {
        return Some(if let Some(secs) = r.retry_after {
            Duration::from_secs(secs)
        } else if r.remaining == Some(0)
            && let Some(reset) = r.reset
        {
            // The reset time is a whole second; one more second covers clock skew.
            Duration::from_secs(u64::try_from(reset - now_unix).unwrap_or(0) + 1)
        } else {
            UNSPECIFIED_RATE_LIMIT_WAIT
        });
    }
    if r.status >= 500 {
        let asked = Duration::from_secs(r.retry_after.unwrap_or(0));
        return Some(backoff.max(asked));
    }
    None
}

/// `BACKOFF_BASE` doubled per attempt already made, capped at `BACKOFF_CAP`.
pub(super) fn backoff(attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_CAP)
}

/// The `rel="next"` URL of a `Link` header.
pub(super) fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let mut fields = part.split(';');
        let url = fields.next()?.trim().strip_prefix('<')?.strip_suffix('>')?;
        fields
            .any(|f| f.trim() == r#"rel="next""#)
            .then(|| url.to_string())
    })
}

/// `owner/name`, checked so it can only ever be two path segments.
pub(super) fn repo_route(repo: &str) -> anyhow::Result<String> {
    let ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if ok(owner) && ok(name) => Ok(format!("/repos/{owner}/{name}")),
        _ => bail!("repository {repo:?} is not \"owner/name\""),
    }
}

pub(super) fn org_route(org: &str) -> anyhow::Result<String> {
    if !org.is_empty() && org.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(format!("/orgs/{org}"))
    } else {
        bail!("{org:?} is not a GitHub organisation name")
    }
}

pub(super) fn check_sha(sha: &str) -> anyhow::Result<()> {
    if (7..=64).contains(&sha.len()) && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        bail!("{sha:?} is not a commit SHA")
    }
}

/// `text` cut to at most `max` characters, saying so at the end when it was cut.
pub(super) fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    const NOTE: &str = "\n\n… (truncated: GitHub's length limit)";
    let keep = max - NOTE.chars().count();
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(NOTE);
    out
}

pub(super) fn same_text(a: &str, b: &str) -> bool {
    a.replace("\r\n", "\n") == b.replace("\r\n", "\n")
}

impl GithubApp {
    /// Every item of a paginated listing, following `Link: rel="next"`, at most `max`.
    pub(super) async fn all_pages<T>(
        &self,
        installation_id: u64,
        first: String,
        max: usize,
        items: impl Fn(&Reply) -> Result<Vec<T>, GithubError>,
    ) -> anyhow::Result<Vec<T>> {
        let inst = self.installation(installation_id)?;
        let mut out = Vec::new();
        let mut route = Some(first);
        let mut pages = 0;
        while let Some(r) = route.take() {
            pages += 1;
            let reply = self
                .request(Auth::Installation(&inst), Verb::Get, &r, None)
                .await?;
            out.extend(items(&reply)?);
            if out.len() >= max || pages >= MAX_PAGES {
                out.truncate(max);
                break;
            }
            route = reply.next.map(|next| self.route_of(&next)).transpose()?;
        }
        Ok(out)
    }

    /// The installation's client, made once and kept (with its token cache).
    pub(super) fn installation(&self, id: u64) -> anyhow::Result<Arc<Installation>> {
        let mut map = self
            .installations
            .lock()
            .map_err(|_| anyhow::anyhow!("GitHub installation clients: lock poisoned"))?;
        if let Some(inst) = map.get(&id) {
            return Ok(inst.clone());
        }
        let client = self
            .app
            .installation(InstallationId(id))
            .with_context(|| format!("GitHub installation {id}: client"))?;
        let inst = Arc::new(Installation {
            id,
            client,
            renewing: tokio::sync::Mutex::new(()),
        });
        map.insert(id, inst.clone());
        Ok(inst)
    }

    /// A pagination link as a route under the configured API URL. octocrab only sends
    /// credentials with relative routes (or to api.github.com), so links are followed
    /// as routes, and a link to another host is refused.
    pub(super) fn route_of(&self, url: &str) -> anyhow::Result<String> {
        if url.starts_with('/') {
            return Ok(url.to_string());
        }
        url.strip_prefix(&self.origin)
            .filter(|rest| rest.starts_with('/'))
            .map(str::to_string)
            .with_context(|| {
                format!(
                    "GitHub pagination link {url:?} is not under {}",
                    self.origin
                )
            })
    }

    /// One call, retried within GitHub's limits (see the module docs).
    pub(super) async fn request(
        &self,
        auth: Auth<'_>,
        verb: Verb,
        route: &str,
        body: Option<&Value>,
    ) -> Result<Reply, GithubError> {
        self.request_if(auth, verb, route, body, None).await
    }

    /// [`Self::request`], conditional on `if_none_match` (an ETag) when given: GitHub then
    /// answers 304 with no body when the resource is unchanged.
    pub(super) async fn request_if(
        &self,
        auth: Auth<'_>,
        verb: Verb,
        route: &str,
        body: Option<&Value>,
        if_none_match: Option<&str>,
    ) -> Result<Reply, GithubError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failed = match self.attempt(auth, verb, route, body, if_none_match).await {
                Ok(reply) => return Ok(reply),
                Err(failed) => failed,
            };
            // A create that failed with a server error or a broken connection may still
            // have happened: retrying it could create twice. The caller's next upsert
            // looks for what exists first, so it is left to that.
            let ambiguous = match &failed.failure {
                Failure::Refused(r) => r.status >= 500,
                _ => true,
            };
            if matches!(verb, Verb::Post) && ambiguous && !route.ends_with("/access_tokens") {
                return Err(failed.into_error(attempt));
            }
            let now = chrono::Utc::now().timestamp();
            let Some(wait) = retry_delay(&failed.failure, attempt, now) else {
                return Err(failed.into_error(attempt));
            };
            if wait > MAX_WAIT
                && let Failure::Refused(r) = &failed.failure
            {
                return Err(GithubError::RateLimited {
                    endpoint: failed.endpoint,
                    status: r.status,
                    wait_secs: wait.as_secs(),
                    max_secs: MAX_WAIT.as_secs(),
                });
            }
            if attempt >= MAX_ATTEMPTS {
                return Err(failed.into_error(attempt));
            }
            let status = match &failed.failure {
                Failure::Refused(r) => Some(r.status),
                _ => None,
            };
            tracing::warn!(
                endpoint = %failed.endpoint,
                ?status,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "GitHub call failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    pub(super) async fn attempt(
        &self,
        auth: Auth<'_>,
        verb: Verb,
        route: &str,
        body: Option<&Value>,
        if_none_match: Option<&str>,
    ) -> Result<Reply, FailedAttempt> {
        let client = match auth {
            Auth::App => &self.app,
            Auth::Installation(inst) => {
                inst.fresh_token().await.map_err(|e| {
                    FailedAttempt::from_octocrab(
                        format!("POST /app/installations/{}/access_tokens", inst.id),
                        e,
                    )
                })?;
                &inst.client
            }
        };
        let endpoint = format!("{verb} {route}");
        let sent = match verb {
            Verb::Get => {
                let mut headers = hyper::header::HeaderMap::new();
                if let Some(tag) = if_none_match
                    && let Ok(value) = hyper::header::HeaderValue::from_str(tag)
                {
                    headers.insert(hyper::header::IF_NONE_MATCH, value);
                }
                client._get_with_headers(route, Some(headers)).await
            }
            Verb::Post => client._post(route, body).await,
            Verb::Patch => client._patch(route, body).await,
            Verb::Delete => client._delete(route, body).await,
        };
        let response = sent.map_err(|e| FailedAttempt::from_octocrab(endpoint.clone(), e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let next = header("link").as_deref().and_then(next_link);
        let retry_after = header("retry-after").and_then(|v| v.trim().parse().ok());
        let remaining = header("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok());
        let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse().ok());
        let etag = header("etag");
        let text = client.body_to_string(response).await;
        if (200..300).contains(&status) || (status == 304 && if_none_match.is_some()) {
            let body = text.map_err(|e| FailedAttempt::from_octocrab(endpoint.clone(), e))?;
            return Ok(Reply {
                endpoint,
                status,
                body,
                next,
                etag,
                remaining,
                reset,
            });
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            message: String,
        }
        let text = text.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.message)
            .unwrap_or_else(|_| text.trim().chars().take(200).collect());
        Err(FailedAttempt {
            endpoint,
            failure: Failure::Refused(Refusal {
                status,
                retry_after,
                remaining,
                reset,
                message,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16) -> Refusal {
        Refusal {
            status,
            retry_after: None,
            remaining: None,
            reset: None,
            message: String::new(),
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(40), BACKOFF_CAP);
    }

    #[test]
    fn which_answers_are_retried() {
        let delay = |r: Refusal| retry_delay(&Failure::Refused(r), 1, 1_000);
        assert_eq!(delay(refused(502)), Some(BACKOFF_BASE));
        assert_eq!(delay(refused(404)), None);
        assert_eq!(delay(refused(422)), None);
        // A 403 that is not a rate limit is a permission problem.
        assert_eq!(delay(refused(403)), None);
        let mut secondary = refused(403);
        secondary.retry_after = Some(3);
        assert_eq!(delay(secondary), Some(Duration::from_secs(3)));
        let mut primary = refused(403);
        primary.remaining = Some(0);
        primary.reset = Some(1_010);
        assert_eq!(delay(primary), Some(Duration::from_secs(11)));
        let mut worded = refused(403);
        worded.message = "You have exceeded a secondary rate limit.".into();
        assert_eq!(delay(worded), Some(UNSPECIFIED_RATE_LIMIT_WAIT));
        assert_eq!(delay(refused(429)), Some(UNSPECIFIED_RATE_LIMIT_WAIT));
    }

    #[test]
    fn next_link_is_found_among_others() {
        let link = r#"<https://api.github.com/repositories/1/issues/2/comments?page=1>; rel="prev", <https://api.github.com/repositories/1/issues/2/comments?page=3>; rel="next", <https://api.github.com/repositories/1/issues/2/comments?page=5>; rel="last""#;
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://api.github.com/repositories/1/issues/2/comments?page=3")
        );
        assert_eq!(next_link(r#"<https://x/y?page=1>; rel="first""#), None);
    }

    #[test]
    fn repo_must_be_owner_slash_name() {
        assert_eq!(repo_route("acme/widgets").unwrap(), "/repos/acme/widgets");
        for bad in ["acme", "acme/", "/w", "a/b/c", "a/..", "a/b?x=1", "a b/c"] {
            assert!(repo_route(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_text_is_cut_with_a_note() {
        let cut = fit(&"é".repeat(100), 60);
        assert_eq!(cut.chars().count(), 60);
        assert!(cut.ends_with("length limit)"));
        assert_eq!(fit("short", 60), "short");
    }
}
