//! Join keys as types: a trace ID is 16 bytes, a span ID 8, a commit SHA 40 hex digits.
//! A wrong length or a stray character is refused where the value enters, never later.

use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("{what} must be {want} bytes, got {got}")]
    Length {
        what: &'static str,
        want: usize,
        got: usize,
    },
    #[error("{what} must not be all zeros")]
    Zero { what: &'static str },
    #[error("{what} is not hex: {value:?}")]
    NotHex { what: &'static str, value: String },
    #[error("repository must be owner/name, got {0:?}")]
    Repo(String),
}

macro_rules! byte_id {
    ($name:ident, $len:expr, $what:expr) => {
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// Parses lowercase or uppercase hex.
            pub fn from_hex(s: &str) -> Result<Self, IdError> {
                let mut out = [0u8; $len];
                decode_hex(s, &mut out, $what)?;
                Self::try_from(&out[..])
            }

            pub fn to_hex(&self) -> String {
                encode_hex(&self.0)
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = IdError;
            fn try_from(bytes: &[u8]) -> Result<Self, IdError> {
                let arr: [u8; $len] = bytes.try_into().map_err(|_| IdError::Length {
                    what: $what,
                    want: $len,
                    got: bytes.len(),
                })?;
                if arr.iter().all(|b| *b == 0) {
                    return Err(IdError::Zero { what: $what });
                }
                Ok(Self(arr))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }
    };
}

byte_id!(TraceId, 16, "trace id");
byte_id!(SpanId, 8, "span id");

/// A full 40-digit git commit SHA, stored lowercase.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize)]
#[serde(transparent)]
pub struct CommitSha(String);

impl CommitSha {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        if s.len() != 40 {
            return Err(IdError::Length {
                what: "commit sha",
                want: 40,
                got: s.len(),
            });
        }
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(IdError::NotHex {
                what: "commit sha",
                value: s.to_string(),
            });
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An agent session's own identifier (`session.id`, `conversation.id`, …), or the hex
/// trace ID when the agent names no session.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// Longest session identifier accepted; anything longer is not an identifier.
    pub const MAX_LEN: usize = 256;

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return None;
        }
        Some(Self(s.to_string()))
    }

    pub fn from_trace(trace: TraceId) -> Self {
        Self(trace.to_hex())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A GitHub repository `owner/name`. GitHub compares names case-insensitively, so the
/// key is the lowercase form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize)]
#[serde(transparent)]
pub struct RepoName(String);

impl RepoName {
    /// `owner/name`, both parts non-empty, no spaces.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        let ok = s.len() <= 200
            && s.split_once('/')
                .is_some_and(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
            && !s
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
        if !ok {
            return Err(IdError::Repo(s.chars().take(200).collect()));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    /// From the two path segments of an API route.
    pub fn from_parts(owner: &str, name: &str) -> Result<Self, IdError> {
        Self::parse(&format!("{owner}/{name}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pull request's number in its repository.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize)]
#[serde(transparent)]
pub struct PrNumber(pub i64);

impl fmt::Display for PrNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A value as a URL's query (or path segment) carries it: percent-encoded, RFC 3986's
/// unreserved characters kept.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The key of a node of the graph, as the `links` table stores it (DESIGN.md §3):
/// commit `owner/repo@sha`, pull request `owner/repo#N`, CI run `kind:id:attempt`,
/// deployment `deployment:id`, incident `owner/repo!N`, session key, trace ID (hex).
pub mod node {
    use super::CommitSha;

    pub fn commit(repo: &str, sha: &CommitSha) -> String {
        format!("{repo}@{sha}")
    }

    /// A commit key from a SHA already known to be lowercase hex.
    pub fn commit_str(repo: &str, sha: &str) -> String {
        format!("{repo}@{sha}")
    }

    pub fn pull(repo: &str, number: i64) -> String {
        format!("{repo}#{number}")
    }

    pub fn run(kind: &str, id: i64, attempt: i64) -> String {
        format!("{kind}:{id}:{attempt}")
    }

    pub fn deployment(id: i64) -> String {
        format!("deployment:{id}")
    }

    pub fn incident(repo: &str, number: i64) -> String {
        format!("{repo}!{number}")
    }

    /// The SHA part of a commit key.
    pub fn commit_sha(key: &str) -> &str {
        key.rsplit('@').next().unwrap_or_default()
    }
}

/// The CI trace ID of a workflow run attempt, as the OpenTelemetry Collector's GitHub
/// receiver derives it: the first 32 hex digits of `sha256("{run_id}{run_attempt}t")`.
pub fn workflow_trace_id(run_id: i64, attempt: i64) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{run_id}{attempt}t").as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h[..16]);
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

pub fn encode_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

fn decode_hex(s: &str, out: &mut [u8], what: &'static str) -> Result<(), IdError> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return Err(IdError::Length {
            what,
            want: out.len(),
            got: b.len() / 2,
        });
    }
    let nib = |c: u8| -> Result<u8, IdError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(IdError::NotHex {
                what,
                value: s.to_string(),
            }),
        }
    };
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
    }
    Ok(())
}

/// An agent's id from its id or the name reports print (`Claude Code`, `gemini cli`).
pub fn agent_id(name: &str) -> std::borrow::Cow<'_, str> {
    let folded: String = name
        .trim()
        .chars()
        .map(|c| {
            if c == ' ' || c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    if folded == name {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(folded)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(url_encode("A-z_0.9~"), "A-z_0.9~");
    }

    use super::*;

    #[test]
    fn trace_id_round_trips_and_rejects_bad_lengths() {
        let t = TraceId::from_hex("b3334784fc61510ab4e4362d0249eb86").unwrap();
        assert_eq!(t.to_hex(), "b3334784fc61510ab4e4362d0249eb86");
        assert!(matches!(
            TraceId::try_from(&[1u8; 8][..]),
            Err(IdError::Length {
                want: 16,
                got: 8,
                ..
            })
        ));
        assert_eq!(
            TraceId::try_from(&[0u8; 16][..]),
            Err(IdError::Zero { what: "trace id" })
        );
        assert!(matches!(
            SpanId::from_hex("zz05c33b2d44e8a1"),
            Err(IdError::NotHex { .. })
        ));
    }

    #[test]
    fn repo_names_are_lowercase_owner_slash_name() {
        assert_eq!(
            RepoName::parse("Acme/Widgets").unwrap().as_str(),
            "acme/widgets"
        );
        for bad in ["acme", "/x", "x/", "a/b/c", "a /b", ""] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn commit_sha_is_normalised_to_lowercase() {
        let sha = CommitSha::parse("9C0832B26219B10B65F2A64EF32BE97E2E28F8DA").unwrap();
        assert_eq!(sha.as_str(), "9c0832b26219b10b65f2a64ef32be97e2e28f8da");
        assert!(CommitSha::parse("9c0832b").is_err());
        assert!(CommitSha::parse("g".repeat(40).as_str()).is_err());
    }
}
