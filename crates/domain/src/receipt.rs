//! Signed erasure receipts: proof of what an erasure removed, kept and why, checkable offline
//! with the server's public key.
//!
//! Invariants:
//! - The signature covers a digest of every field of the receipt, so a verifier that finds the
//!   signature good can name exactly which fields were changed afterwards, instead of only
//!   saying "invalid".
//! - The signing key is derived from the master key (HMAC-SHA256 with a fixed label), so every
//!   node of a cluster signs with the same key and no key file has to be kept in step; the
//!   public key is published and its id is its own digest.
//! - A receipt names the subject only by its pseudonymous key: it never holds an external id
//!   or any value that was erased.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::DomainError;
use crate::envelope::SecretKey;
use crate::rights::ReceiptPart;

/// What the signature is computed over, so a signature can never be replayed as something
/// else's.
const SIGNED_LABEL: &str = "candor-erasure-receipt-v1\n";

/// The fields of a receipt, in the order they are digested.
const FIELDS: [&str; 9] = [
    "receipt_version",
    "request_id",
    "subject_key",
    "erased_at",
    "suppressed",
    "parts",
    "audit_seq",
    "audit_hash",
    "key_id",
];

/// One erasure, as recorded and handed to whoever asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReceipt {
    pub receipt_version: u32,
    pub request_id: String,
    pub subject_key: String,
    /// RFC 3339.
    pub erased_at: String,
    /// Whether later events for the subject are dropped at ingestion.
    pub suppressed: bool,
    /// Every store and artifact touched, with counts and a status each.
    pub parts: Vec<ReceiptPart>,
    /// The audit entry that records the erasure.
    pub audit_seq: i64,
    pub audit_hash: String,
    /// Id of the public key that signs (see [`ReceiptSigner::key_id`]).
    pub key_id: String,
    /// SHA-256 of each field above (canonical JSON), hex; the signature covers these.
    pub field_digests: BTreeMap<String, String>,
    /// Ed25519 signature (hex) over the label and the canonical JSON of `field_digests`.
    pub signature: String,
}

/// The server's signing key for receipts.
pub struct ReceiptSigner {
    key: SigningKey,
}

impl ReceiptSigner {
    /// Derives the signing key from the master key.
    pub fn from_master(master: &SecretKey) -> Self {
        let seed = master.derive(b"candor erasure receipt signing key v1");
        ReceiptSigner {
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    /// Fills in the key id, the field digests and the signature of `receipt`.
    pub fn sign(&self, mut receipt: ErasureReceipt) -> ErasureReceipt {
        receipt.key_id = self.key_id();
        receipt.field_digests = digests(&receipt);
        let signature = self.key.sign(&signed_bytes(&receipt.field_digests));
        receipt.signature = hex::encode(signature.to_bytes());
        receipt
    }
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceiptSigner({})", self.key_id())
    }
}

fn key_id(key: &VerifyingKey) -> String {
    format!(
        "ed25519:{}",
        &hex::encode(Sha256::digest(key.to_bytes()))[..16]
    )
}

fn signed_bytes(digests: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = SIGNED_LABEL.as_bytes().to_vec();
    out.extend(serde_json::to_vec(digests).expect("a map of strings serializes"));
    out
}

fn digests(r: &ErasureReceipt) -> BTreeMap<String, String> {
    let value = serde_json::to_value(r).expect("a receipt serializes");
    FIELDS
        .iter()
        .map(|f| {
            let bytes = serde_json::to_vec(&value[*f]).expect("a JSON value serializes");
            ((*f).to_owned(), hex::encode(Sha256::digest(bytes)))
        })
        .collect()
}

/// Why a receipt does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt is not a Candor erasure receipt: {0}")]
    Malformed(String),
    #[error("the receipt was signed by key {found}, not by the given key {expected}")]
    WrongKey { expected: String, found: String },
    #[error(
        "the signature does not match: the signature or the field digests were changed, or another key signed"
    )]
    BadSignature,
    #[error("the signature is good, but these fields were changed after signing: {}", .0.join(", "))]
    Altered(Vec<String>),
}

/// Parses a public key given as 64 hex characters.
pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, DomainError> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| DomainError::invalid("public key", "must be 64 hex characters"))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| DomainError::invalid("public key", "not an Ed25519 public key"))
}

/// Checks a receipt (as JSON text) against a public key, offline: the signature, then each
/// field against its signed digest, naming the fields that changed.
pub fn verify(
    receipt_json: &str,
    public_key: &VerifyingKey,
) -> Result<ErasureReceipt, ReceiptError> {
    let receipt: ErasureReceipt =
        serde_json::from_str(receipt_json).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
    let expected = key_id(public_key);
    if receipt.key_id != expected {
        // The key id is itself a signed field: a changed id shows up below if the signature
        // still verifies under the given key.
        let sig_ok = check_signature(&receipt, public_key).is_ok();
        if !sig_ok {
            return Err(ReceiptError::WrongKey {
                expected,
                found: receipt.key_id,
            });
        }
    }
    check_signature(&receipt, public_key)?;
    let actual = digests(&receipt);
    let mut altered: Vec<String> = FIELDS
        .iter()
        .filter(|f| receipt.field_digests.get(**f) != actual.get(**f))
        .map(|f| (*f).to_owned())
        .collect();
    altered.extend(
        receipt
            .field_digests
            .keys()
            .filter(|k| !FIELDS.contains(&k.as_str()))
            .cloned(),
    );
    if altered.is_empty() {
        Ok(receipt)
    } else {
        Err(ReceiptError::Altered(altered))
    }
}

fn check_signature(r: &ErasureReceipt, key: &VerifyingKey) -> Result<(), ReceiptError> {
    let bytes: [u8; 64] = hex::decode(&r.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(ReceiptError::BadSignature)?;
    key.verify(
        &signed_bytes(&r.field_digests),
        &Signature::from_bytes(&bytes),
    )
    .map_err(|_| ReceiptError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> ErasureReceipt {
        ErasureReceipt {
            receipt_version: 1,
            request_id: "req_1".into(),
            subject_key: "a".repeat(64),
            erased_at: "2026-12-04T10:00:00Z".into(),
            suppressed: true,
            parts: vec![
                ReceiptPart::new("database", "events", 10_000, "erased", ""),
                ReceiptPart::new("database", "data_key", 1, "shredded", ""),
            ],
            audit_seq: 42,
            audit_hash: "f".repeat(64),
            key_id: String::new(),
            field_digests: BTreeMap::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn a_signed_receipt_verifies_and_a_changed_one_names_what_changed() {
        let signer = ReceiptSigner::from_master(&SecretKey::from_bytes([7; 32]));
        let public = parse_public_key(&signer.public_key_hex()).unwrap();
        let signed = signer.sign(receipt());
        let text = serde_json::to_string_pretty(&signed).unwrap();
        assert_eq!(verify(&text, &public).unwrap(), signed);

        let mut changed = signed.clone();
        changed.parts[0].count = 9_999;
        changed.suppressed = false;
        let e = verify(&serde_json::to_string(&changed).unwrap(), &public).unwrap_err();
        assert_eq!(
            e,
            ReceiptError::Altered(vec!["suppressed".into(), "parts".into()])
        );
        assert!(e.to_string().contains("suppressed, parts"), "{e}");

        let mut forged = signed.clone();
        forged.parts[0].count = 1;
        forged.field_digests = digests(&forged);
        assert_eq!(
            verify(&serde_json::to_string(&forged).unwrap(), &public).unwrap_err(),
            ReceiptError::BadSignature,
            "re-digesting needs the private key to re-sign"
        );

        let other = ReceiptSigner::from_master(&SecretKey::from_bytes([8; 32]));
        let other_public = parse_public_key(&other.public_key_hex()).unwrap();
        assert!(matches!(
            verify(&text, &other_public).unwrap_err(),
            ReceiptError::WrongKey { .. }
        ));
        assert!(matches!(
            verify("{}", &public).unwrap_err(),
            ReceiptError::Malformed(_)
        ));
        assert_ne!(signer.key_id(), other.key_id());
        assert!(parse_public_key("abc").is_err());
    }
}
