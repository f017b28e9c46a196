//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body, checked in constant time against
//! every configured secret (several, so a secret can be rotated without downtime).

pub use crate::crypto::hmac_sha256;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no webhook secret is configured: every delivery is refused (set --webhook-secret)")]
    NoSecret,
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 is not of the form sha256=<64 hex digits>")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body under any configured secret")]
    Mismatch,
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (b[2 * i] as char).to_digit(16)?;
        let lo = (b[2 * i + 1] as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Checks a delivery's signature header against the raw body.
pub fn verify(secrets: &[String], header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let header = header.ok_or(SignatureError::Missing)?;
    let sent = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(decode_hex32)
        .ok_or(SignatureError::Malformed)?;
    let mut ok = false;
    for secret in secrets {
        let want = hmac_sha256(secret.as_bytes(), body);
        // Constant time per secret, and every secret is tried.
        ok |= want.iter().zip(sent).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    }
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header value GitHub would send for `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        crate::ids::encode_hex(&hmac_sha256(secret.as_bytes(), body))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_githubs_documented_example() {
        // docs.github.com "Validating webhook deliveries": secret "It's a Secret to
        // Everybody", payload "Hello, World!".
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn rotation_and_refusals() {
        let secrets = vec!["old".to_string(), "new".to_string()];
        let body = b"{}";
        assert_eq!(verify(&secrets, Some(&sign("old", body)), body), Ok(()));
        assert_eq!(verify(&secrets, Some(&sign("new", body)), body), Ok(()));
        assert_eq!(
            verify(&secrets, Some(&sign("other", body)), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(&secrets, None, body), Err(SignatureError::Missing));
        assert_eq!(
            verify(&secrets, Some("sha1=abc"), body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&[], Some(&sign("old", body)), body),
            Err(SignatureError::NoSecret)
        );
        let long_key = "k".repeat(100);
        assert_eq!(
            verify(
                std::slice::from_ref(&long_key),
                Some(&sign(&long_key, body)),
                body
            ),
            Ok(())
        );
    }
}
