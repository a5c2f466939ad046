//! Webhook signatures and retry schedule.
//!
//! Invariant: receivers can verify that a delivery came from Candor and is fresh: the signature
//! covers the timestamp and the exact body bytes.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header value sent as `Candor-Signature`: `t=<unix seconds>,v1=<hex hmac>`, where the MAC
/// is HMAC-SHA256(secret, "<t>.<body>").
pub fn signature(secret: &str, unix_secs: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={unix_secs},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Attempts before a delivery is given up and marked failed.
pub const MAX_ATTEMPTS: u32 = 8;

/// Delay before attempt `attempt` (1-based retry count): exponential from 1 s, capped at 1 h.
/// Callers add jitter.
pub fn retry_delay_secs(attempt: u32) -> u64 {
    1u64.checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u64::MAX)
        .min(3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_time_and_body() {
        let a = signature("s3cret", 100, b"{}");
        assert!(a.starts_with("t=100,v1="));
        assert_ne!(a, signature("s3cret", 101, b"{}"));
        assert_ne!(a, signature("s3cret", 100, b"{ }"));
        assert_ne!(a, signature("other", 100, b"{}"));
        assert_eq!(retry_delay_secs(1), 1);
        assert_eq!(retry_delay_secs(4), 8);
        assert_eq!(retry_delay_secs(40), 3600);
    }
}
