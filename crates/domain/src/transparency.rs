//! Signing published transparency reports.
//!
//! Invariant: a stored report can be checked later: its signature is HMAC-SHA256 over the exact
//! stored body under a key derived from the node's pseudonymization secret (never the secret
//! itself), compared in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

fn report_key(secret: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("any key length");
    mac.update(b"candor transparency report v1");
    mac.finalize().into_bytes().to_vec()
}

/// `v1=<hex HMAC>` over `body`.
pub fn sign_report(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&report_key(secret)).expect("any key length");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `signature` is this node's signature of `body`.
pub fn verify_report(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(hex_mac) = signature.strip_prefix("v1=") else {
        return false;
    };
    let Ok(bytes) = hex::decode(hex_mac) else {
        return false;
    };
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&report_key(secret)).expect("any key length");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_body_or_another_secret_fails() {
        let s = sign_report(b"secret-a", b"{\"period\":\"2026\"}");
        assert!(verify_report(b"secret-a", b"{\"period\":\"2026\"}", &s));
        assert!(!verify_report(b"secret-a", b"{\"period\":\"2025\"}", &s));
        assert!(!verify_report(b"secret-b", b"{\"period\":\"2026\"}", &s));
        assert!(!verify_report(b"secret-a", b"{}", "v1=zz"));
    }
}
