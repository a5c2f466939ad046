//! Subjects: the people Candor holds data about, known only by a pseudonymous key.
//!
//! Invariant: the external id a client sends is never stored; only `SubjectKey`, a keyed HMAC of
//! it, is. Without the pseudonymization key the mapping cannot be reversed or recomputed.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::DomainError;

/// An identifier as the client knows a person (a user id, a customer number). Validated, but
/// never persisted.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.is_empty() || s.len() > 256 {
            return Err(DomainError::invalid("subject id", "must be 1-256 bytes"));
        }
        if s.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "subject id",
                "must not contain control characters",
            ));
        }
        Ok(ExternalId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// External ids are personal data: keep them out of logs and panics.
impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExternalId(<redacted>)")
    }
}

/// The pseudonymous key of a subject: 64 lowercase hex characters of HMAC-SHA256.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SubjectKey(String);

impl SubjectKey {
    /// Accepts an already-computed key (from the store or a notification).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(SubjectKey(s.to_owned()))
        } else {
            Err(DomainError::invalid(
                "subject key",
                "must be 64 lowercase hex characters",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Turns external ids into subject keys with a secret key. Cloning the prepared MAC state is
/// cheaper than re-keying for every id.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl Pseudonymizer {
    pub fn new(secret: &[u8]) -> Result<Self, DomainError> {
        if secret.len() < 16 {
            return Err(DomainError::invalid(
                "pseudonymization key",
                "must be at least 16 bytes",
            ));
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .map_err(|_| DomainError::invalid("pseudonymization key", "rejected by HMAC"))?;
        Ok(Pseudonymizer { mac })
    }

    pub fn subject_key(&self, id: &ExternalId) -> SubjectKey {
        let mut mac = self.mac.clone();
        mac.update(id.as_str().as_bytes());
        SubjectKey(hex::encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonymizer(<secret>)")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn key(id: &str) -> SubjectKey {
        Pseudonymizer::new(b"0123456789abcdef0123456789abcdef")
            .unwrap()
            .subject_key(&ExternalId::parse(id).unwrap())
    }

    #[test]
    fn keys_are_stable_keyed_and_opaque() {
        assert_eq!(key("alice"), key("alice"));
        assert_ne!(key("alice"), key("bob"));
        let other = Pseudonymizer::new(b"another-secret-of-32-bytes-long!").unwrap();
        assert_ne!(
            other.subject_key(&ExternalId::parse("alice").unwrap()),
            key("alice")
        );
        assert!(SubjectKey::parse(key("alice").as_str()).is_ok());
        assert!(!key("alice").as_str().contains("alice"));
        assert!(Pseudonymizer::new(b"short").is_err());
        assert!(ExternalId::parse("").is_err());
        assert!(ExternalId::parse("a\nb").is_err());
        assert_eq!(
            format!("{:?}", ExternalId::parse("alice").unwrap()),
            "ExternalId(<redacted>)"
        );
    }
}
