//! Envelope encryption of contact data, so erasure can be crypto-shredding.
//!
//! Invariants:
//! - Each subject's contact/PII values are sealed with that subject's own 256-bit data key; the
//!   data key is stored only wrapped (sealed) by the master key. Destroying the wrapped data key
//!   makes every copy of the subject's ciphertext unreadable, backups included.
//! - Every ciphertext is bound to its subject and field (AEAD associated data), so a value copied
//!   to another subject or field fails to open instead of being misattributed.
//! - Nonces are 96-bit random values supplied by the caller (this crate does no I/O and owns no
//!   randomness); the format is `version(1) || nonce(12) || ciphertext+tag`.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};

use crate::DomainError;

const VERSION: u8 = 1;
pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;

/// A 256-bit key (the master key or a subject's data key). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(bytes)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, DomainError> {
        let bytes = hex::decode(s.trim())
            .map_err(|_| DomainError::invalid("master key", "must be 64 hex characters"))?;
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            DomainError::invalid("master key", "must be 64 hex characters (32 bytes)")
        })?;
        Ok(SecretKey(arr))
    }

    /// A 256-bit key derived from this one for a named use (HMAC-SHA256 over `label`), so
    /// one master key can root other keys without ever being used for them directly.
    pub fn derive(&self, label: &[u8]) -> [u8; KEY_LEN] {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac =
            <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.0).expect("any key length");
        mac.update(label);
        mac.finalize().into_bytes().into()
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&self.0).expect("32-byte key")
    }

    /// Seals `plaintext`, bound to `context` (e.g. `subject-key|field`).
    pub fn seal(&self, nonce: [u8; NONCE_LEN], plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let ct = self
            .cipher()
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("AES-GCM encryption of in-memory data cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value sealed with this key and the same context.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, DomainError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(DomainError::invalid(
                "ciphertext",
                "not a Candor sealed value",
            ));
        }
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().expect("length checked");
        self.cipher()
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: context,
                },
            )
            .map_err(|_| {
                DomainError::invalid("ciphertext", "cannot be opened with this key and context")
            })
    }

    /// Wraps a subject's data key with this (master) key.
    pub fn wrap(&self, nonce: [u8; NONCE_LEN], data_key: &SecretKey, subject: &str) -> Vec<u8> {
        self.seal(nonce, &data_key.0, format!("dek|{subject}").as_bytes())
    }

    pub fn unwrap_key(&self, wrapped: &[u8], subject: &str) -> Result<SecretKey, DomainError> {
        let raw = self.open(wrapped, format!("dek|{subject}").as_bytes())?;
        let arr: [u8; KEY_LEN] = raw
            .try_into()
            .map_err(|_| DomainError::invalid("wrapped key", "wrong length"))?;
        Ok(SecretKey(arr))
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// The associated data binding a sealed field to its subject.
pub fn field_context(subject: &str, field: &str) -> Vec<u8> {
    format!("field|{subject}|{field}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_wrap_and_binding() {
        let master = SecretKey::from_bytes([1; 32]);
        let dek = SecretKey::from_bytes([2; 32]);
        let wrapped = master.wrap([3; 12], &dek, "subj-a");
        assert!(
            !wrapped.windows(32).any(|w| w == [2; 32]),
            "the data key never appears in clear"
        );
        let dek2 = master.unwrap_key(&wrapped, "subj-a").unwrap();
        assert_eq!(dek2, dek);
        assert!(
            master.unwrap_key(&wrapped, "subj-b").is_err(),
            "a wrapped key is bound to its subject"
        );

        let sealed = dek.seal(
            [4; 12],
            b"alice@example.com",
            &field_context("subj-a", "email"),
        );
        assert!(!sealed.windows(5).any(|w| w == b"alice"));
        assert_eq!(
            dek.open(&sealed, &field_context("subj-a", "email"))
                .unwrap(),
            b"alice@example.com"
        );
        assert!(
            dek.open(&sealed, &field_context("subj-a", "phone"))
                .is_err()
        );
        assert!(
            SecretKey::from_bytes([9; 32])
                .open(&sealed, &field_context("subj-a", "email"))
                .is_err()
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(
            dek.open(&tampered, &field_context("subj-a", "email"))
                .is_err()
        );
        assert!(SecretKey::from_hex("zz").is_err());
        assert_eq!(format!("{dek:?}"), "SecretKey(<redacted>)");
    }
}
