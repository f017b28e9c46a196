//! `POST /api/v1/ci/uploads`: coverage and test reports from the GitHub Action (not yet
//! written: answers 501).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::config::ServeArgs;
use crate::server::AppState;

/// How uploads are authenticated and bounded.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    pub oidc_issuer: String,
    pub oidc_audience: String,
    /// `owner/repo` → static token.
    pub static_tokens: Vec<(String, String)>,
    pub max_bytes: usize,
}

impl UploadConfig {
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Self> {
        let mut static_tokens = Vec::new();
        for t in &args.upload_tokens {
            let (repo, token) = t.0.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--upload-token must be owner/repo=TOKEN (one was not)")
            })?;
            static_tokens.push((repo.trim().to_ascii_lowercase(), token.trim().to_string()));
        }
        Ok(Self {
            oidc_issuer: args.oidc_issuer.clone(),
            oidc_audience: args.oidc_audience.clone(),
            static_tokens,
            max_bytes: args.max_upload_bytes,
        })
    }
}

pub async fn receive(State(_state): State<AppState>) -> Response {
    (
        StatusCode::NOT_IMPLEMENTED,
        "CI uploads are not available yet",
    )
        .into_response()
}
