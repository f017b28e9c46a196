//! The keyed hash both webhook signatures and pseudonyms are built on, the key
//! derivation from `TRACELINK_SECRET_KEY`, and the sealing of secrets stored in the
//! database (the GitHub App's private key and webhook secret).

use sha2::{Digest, Sha256};

const BLOCK: usize = 64;

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// HKDF-SHA256 (RFC 5869) with one output block: extract with a fixed salt, expand
/// with `info`, so each use of the secret gets a key of its own.
pub fn hkdf(secret: &[u8], info: &[u8]) -> [u8; 32] {
    let prk = hmac_sha256(b"tracelink hkdf salt v1", secret);
    let mut block = Vec::with_capacity(info.len() + 1);
    block.extend_from_slice(info);
    block.push(1);
    hmac_sha256(&prk, &block)
}

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the sealed value is too short to hold a nonce and a tag")]
    Short,
    #[error(
        "the sealed value does not open with this key (another TRACELINK_SECRET_KEY, or altered)"
    )]
    Key,
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

const NONCE: usize = 24;

/// XChaCha20-Poly1305 under `key`: a random 24-byte nonce, then the ciphertext and
/// its tag. `context` is authenticated but not stored: a value sealed for one use does
/// not open as another.
pub fn seal(key: &[u8; 32], context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce).map_err(|e| SealError::Random(e.to_string()))?;
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(key.into());
    let sealed = cipher
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: plaintext,
                aad: context,
            },
        )
        .map_err(|_| SealError::Key)?;
    let mut out = Vec::with_capacity(NONCE + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens what [`seal`] sealed with the same key and context.
pub fn open(key: &[u8; 32], context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    if sealed.len() < NONCE + 16 {
        return Err(SealError::Short);
    }
    let (nonce, body) = sealed.split_at(NONCE);
    let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| SealError::Short)?;
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(
            (&nonce).into(),
            Payload {
                msg: body,
                aad: context,
            },
        )
        .map_err(|_| SealError::Key)
}

#[cfg(test)]
mod seal_tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let key = hkdf(b"a secret of enough length", b"tracelink test v1");
        let other = hkdf(b"another secret of enough length", b"tracelink test v1");
        let sealed = seal(&key, b"pem", b"-----BEGIN PRIVATE KEY-----").unwrap();
        assert_eq!(
            open(&key, b"pem", &sealed).unwrap(),
            b"-----BEGIN PRIVATE KEY-----"
        );
        assert_ne!(
            sealed,
            seal(&key, b"pem", b"-----BEGIN PRIVATE KEY-----").unwrap()
        );
        assert_eq!(open(&other, b"pem", &sealed), Err(SealError::Key));
        assert_eq!(open(&key, b"webhook", &sealed), Err(SealError::Key));
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(open(&key, b"pem", &altered), Err(SealError::Key));
        assert_eq!(open(&key, b"pem", &sealed[..30]), Err(SealError::Short));
    }
}
