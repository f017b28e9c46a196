//! `--pseudonymize-users`: every email and agent user id tracelink receives — in
//! telemetry, in webhook payloads (commit authors, committers, `Co-authored-by`
//! trailers, pushers), in the identities file — is replaced, before anything is stored,
//! by the same keyed hash, so a session still matches its commits and nobody's address
//! is kept. The key is derived from `TRACELINK_SECRET_KEY` for this purpose alone
//! (HKDF-SHA256, RFC 5869), never the raw secret; the same secret gives the same
//! pseudonyms across restarts and replicas.
//!
//! GitHub's own addresses are kept: `noreply@github.com` (GitHub's commits, which are
//! never linked by time) and `ID+login@users.noreply.github.com`, which only says a
//! public login.

use std::borrow::Cow;

use serde_json::Value;

use crate::crypto::hmac_sha256;
use crate::store::batch::Batch;

/// The smallest secret accepted (bytes).
const MIN_SECRET: usize = 16;

/// Keyed pseudonyms for people's identifiers.
pub struct Pseudonyms {
    key: [u8; 32],
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms(***)")
    }
}

impl Pseudonyms {
    /// From `TRACELINK_SECRET_KEY`; a clear error when it is missing or short.
    pub fn from_secret(secret: Option<&str>) -> anyhow::Result<Self> {
        let secret = secret.map(str::trim).unwrap_or_default();
        anyhow::ensure!(
            secret.len() >= MIN_SECRET,
            "--pseudonymize-users needs TRACELINK_SECRET_KEY set to a secret of at least {MIN_SECRET} characters (keep it: the same secret gives the same pseudonyms)"
        );
        Ok(Self {
            key: crate::crypto::hkdf(secret.as_bytes(), b"tracelink pseudonymize users v1"),
        })
    }

    fn digest(&self, kind: &str, value: &str) -> String {
        let mut m = Vec::with_capacity(kind.len() + 1 + value.len());
        m.extend_from_slice(kind.as_bytes());
        m.push(b':');
        m.extend_from_slice(value.as_bytes());
        crate::ids::encode_hex(&hmac_sha256(&self.key, &m)[..12])
    }

    /// An email's pseudonym, still an address (`p-<hash>@pseudonymous.invalid`), so
    /// everything that compares addresses keeps working; GitHub's own are kept.
    pub fn email(&self, email: &str) -> String {
        let e = email.trim().to_ascii_lowercase();
        if is_github_address(&e) || e.ends_with("@pseudonymous.invalid") {
            return e;
        }
        format!("p-{}@pseudonymous.invalid", self.digest("email", &e))
    }

    /// An agent user id's pseudonym.
    pub fn user_id(&self, id: &str) -> String {
        let id = id.trim();
        if id.starts_with("p-") && id.len() == 26 {
            return id.to_string();
        }
        format!("p-{}", self.digest("user", id))
    }

    /// Text with every email address in it replaced (commit messages carry them in
    /// `Co-authored-by:` and `Signed-off-by:` trailers).
    pub fn text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        if !s.contains('@') {
            return Cow::Borrowed(s);
        }
        let bytes = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'@' {
                i += 1;
                continue;
            }
            let mut start = i;
            while start > copied && is_local(bytes[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < bytes.len() && is_domain(bytes[end]) {
                end += 1;
            }
            // A domain ends with a label, not a dot.
            while end > i + 1 && bytes[end - 1] == b'.' {
                end -= 1;
            }
            let domain = &s[i + 1..end];
            if start < i && domain.contains('.') {
                out.push_str(&s[copied..start]);
                out.push_str(&self.email(&s[start..end]));
                copied = end;
            }
            i = end.max(i + 1);
        }
        if copied == 0 {
            return Cow::Borrowed(s);
        }
        out.push_str(&s[copied..]);
        Cow::Owned(out)
    }

    /// A webhook payload with every address in every string replaced; a body that is
    /// not JSON has its text replaced.
    pub fn payload(&self, body: &[u8]) -> Vec<u8> {
        match serde_json::from_slice::<Value>(body) {
            Ok(mut v) => {
                self.value(&mut v);
                serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
            }
            Err(_) => self
                .text(&String::from_utf8_lossy(body))
                .into_owned()
                .into_bytes(),
        }
    }

    fn value(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Cow::Owned(t) = self.text(s) {
                    *s = t;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.value(x)),
            Value::Object(o) => o.values_mut().for_each(|x| self.value(x)),
            _ => {}
        }
    }

    /// An OTLP request's sessions, before they are stored.
    pub fn batch(&self, b: &mut Batch) {
        for s in &mut b.sessions {
            if let Some(e) = &s.user_email {
                s.user_email = Some(self.email(e));
            }
            if let Some(id) = &s.user_id {
                s.user_id = Some(self.user_id(id));
            }
        }
    }
}

fn is_github_address(e: &str) -> bool {
    e == "noreply@github.com" || e.ends_with("@users.noreply.github.com")
}

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Pseudonyms {
        Pseudonyms::from_secret(Some("correct horse battery staple")).unwrap()
    }

    #[test]
    fn the_same_secret_gives_the_same_pseudonyms_and_others_differ() {
        let a = p().email("Dev@Acme.example");
        assert_eq!(a, p().email("dev@acme.example"));
        assert!(
            a.starts_with("p-") && a.ends_with("@pseudonymous.invalid"),
            "{a}"
        );
        let other = Pseudonyms::from_secret(Some("another secret of enough length")).unwrap();
        assert_ne!(other.email("dev@acme.example"), a);
        assert_ne!(p().user_id("dev@acme.example"), a, "kinds are keyed apart");
        // Applying twice changes nothing.
        assert_eq!(p().email(&a), a);
        assert_eq!(p().user_id(&p().user_id("usr_1")), p().user_id("usr_1"));
    }

    #[test]
    fn a_short_or_missing_secret_is_refused() {
        assert!(Pseudonyms::from_secret(None).is_err());
        assert!(Pseudonyms::from_secret(Some("short")).is_err());
    }

    #[test]
    fn addresses_in_text_are_replaced_and_githubs_kept() {
        let p = p();
        let msg = "Fix it.\n\nCo-authored-by: Ann <ann.lee+x@corp.example.com>\nSigned-off-by: dev@acme.example.";
        let out = p.text(msg);
        assert!(
            !out.contains("ann.lee") && !out.contains("dev@acme"),
            "{out}"
        );
        assert!(
            out.contains(&format!("<{}>", p.email("ann.lee+x@corp.example.com"))),
            "{out}"
        );
        assert!(
            out.ends_with(&format!("{}.", p.email("dev@acme.example"))),
            "{out}"
        );
        for kept in [
            "GitHub <noreply@github.com>",
            "1234+octo@users.noreply.github.com",
            "@octocat mentioned",
            "a @ b",
            "no address",
        ] {
            assert_eq!(p.text(kept), kept);
        }
    }

    #[test]
    fn payloads_keep_their_shape() {
        let p = p();
        let body = br#"{"commits":[{"author":{"email":"dev@acme.example","name":"Dev"},"message":"x <dev@acme.example>"}],"n":1}"#;
        let out: Value = serde_json::from_slice(&p.payload(body)).unwrap();
        let e = p.email("dev@acme.example");
        assert_eq!(out["commits"][0]["author"]["email"], e.as_str());
        assert_eq!(out["commits"][0]["message"], format!("x <{e}>"));
        assert_eq!(out["n"], 1);
    }
}
