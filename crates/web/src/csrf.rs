//! CSRF tokens for forms: `<expires_at>.<signature>`.
//!
//! `expires_at` is decimal microseconds since the Unix epoch; `signature` is base64url (no
//! padding) of HMAC-SHA256(secret, "candor-csrf-v1" ‖ len(session) ‖ session ‖ expires_at), with
//! lengths and the expiry as big-endian u64/i64 so no two inputs share an encoding.
//!
//! Why this scheme: it is stateless (a node needs no token table, and every node with the same
//! secret accepts every other node's tokens), a token made for one session is useless in another,
//! and the expiry is inside the signature so it cannot be extended. Verification compares MACs
//! in constant time (`Mac::verify_slice`), so timing does not reveal how much of a forged
//! signature was right.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use candor_domain::Micros;
use hmac::{Hmac, KeyInit, Mac};
use maud::{Markup, html};
use sha2::Sha256;

use crate::WebError;

/// The form field name the token travels in.
pub const FIELD: &str = "csrf_token";

/// Shortest secret accepted: 256 bits, the HMAC-SHA256 output size.
pub const MIN_SECRET_BYTES: usize = 32;

const DOMAIN: &[u8] = b"candor-csrf-v1";
/// A SHA-256 MAC in unpadded base64url.
const SIGNATURE_CHARS: usize = 43;

/// The server secret tokens are signed with. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct CsrfKey(Vec<u8>);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(***)")
    }
}

impl CsrfKey {
    pub fn new(secret: &[u8]) -> Result<Self, WebError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(WebError::WeakSecret {
                len: secret.len(),
                min: MIN_SECRET_BYTES,
            });
        }
        Ok(CsrfKey(secret.to_vec()))
    }

    fn mac(&self, session: &str, expires_at: Micros) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC accepts keys of any length");
        mac.update(DOMAIN);
        mac.update(&(session.len() as u64).to_be_bytes());
        mac.update(session.as_bytes());
        mac.update(&expires_at.to_be_bytes());
        mac
    }
}

/// A token for `session`, valid from `now` for `ttl` microseconds.
pub fn issue(key: &CsrfKey, session: &str, now: Micros, ttl: Micros) -> String {
    let expires_at = now.saturating_add(ttl);
    let signature = key.mac(session, expires_at).finalize().into_bytes();
    format!("{expires_at}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Checks that `token` was issued for `session` under `key` and has not expired at `now`.
pub fn verify(key: &CsrfKey, session: &str, token: &str, now: Micros) -> Result<(), WebError> {
    let (expires, signature) = token.split_once('.').ok_or(WebError::MalformedToken(
        "no `.` between expiry and signature",
    ))?;
    if expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WebError::MalformedToken(
            "the expiry is not a decimal number",
        ));
    }
    let expires_at: Micros = expires
        .parse()
        .map_err(|_| WebError::MalformedToken("the expiry is out of range"))?;
    if signature.len() != SIGNATURE_CHARS {
        return Err(WebError::MalformedToken(
            "the signature has the wrong length",
        ));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| WebError::MalformedToken("the signature is not base64url"))?;
    // The signature is checked before the expiry so that an expired-token answer is only ever
    // given for tokens this server really issued.
    key.mac(session, expires_at)
        .verify_slice(&signature)
        .map_err(|_| WebError::InvalidToken)?;
    if now >= expires_at {
        return Err(WebError::ExpiredToken {
            expired_at: expires_at,
        });
    }
    Ok(())
}

/// The hidden form field carrying `token`; put it inside every state-changing `<form>`.
pub fn hidden_field(token: &str) -> Markup {
    html! { input type="hidden" name=(FIELD) value=(token); }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Micros = 3_600_000_000;
    const NOW: Micros = 1_767_225_600_000_000;

    fn key() -> CsrfKey {
        CsrfKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn a_fresh_token_verifies_for_its_session() {
        let t = issue(&key(), "session-a", NOW, HOUR);
        assert_eq!(verify(&key(), "session-a", &t, NOW), Ok(()));
        assert_eq!(verify(&key(), "session-a", &t, NOW + HOUR - 1), Ok(()));
    }

    #[test]
    fn a_token_is_useless_in_another_session() {
        let t = issue(&key(), "session-a", NOW, HOUR);
        assert_eq!(
            verify(&key(), "session-b", &t, NOW),
            Err(WebError::InvalidToken)
        );
        // The length prefix keeps "ab" + "c..." apart from "a" + "bc...".
        assert_eq!(
            verify(&key(), "session-", &t, NOW),
            Err(WebError::InvalidToken)
        );
    }

    #[test]
    fn a_token_from_another_secret_is_refused() {
        let other = CsrfKey::new(b"another-secret-another-secret-xx").unwrap();
        let t = issue(&other, "session-a", NOW, HOUR);
        assert_eq!(
            verify(&key(), "session-a", &t, NOW),
            Err(WebError::InvalidToken)
        );
    }

    #[test]
    fn a_token_expires() {
        let t = issue(&key(), "session-a", NOW, HOUR);
        assert_eq!(
            verify(&key(), "session-a", &t, NOW + HOUR),
            Err(WebError::ExpiredToken {
                expired_at: NOW + HOUR
            })
        );
    }

    #[test]
    fn an_extended_expiry_breaks_the_signature() {
        let t = issue(&key(), "session-a", NOW, HOUR);
        let (_, sig) = t.split_once('.').unwrap();
        let extended = format!("{}.{sig}", NOW + 100 * HOUR);
        assert_eq!(
            verify(&key(), "session-a", &extended, NOW + 2 * HOUR),
            Err(WebError::InvalidToken)
        );
    }

    #[test]
    fn a_tampered_signature_is_refused() {
        let t = issue(&key(), "session-a", NOW, HOUR);
        let (exp, sig) = t.split_once('.').unwrap();
        let mut sig = sig.as_bytes().to_vec();
        sig[0] = if sig[0] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{exp}.{}", String::from_utf8(sig).unwrap());
        assert_eq!(
            verify(&key(), "session-a", &tampered, NOW),
            Err(WebError::InvalidToken)
        );
    }

    #[test]
    fn malformed_tokens_are_named_as_such() {
        let good = issue(&key(), "s", NOW, HOUR);
        let (exp, sig) = good.split_once('.').unwrap();
        for bad in [
            String::new(),
            "no-dot".to_owned(),
            format!(".{sig}"),
            format!("-1.{sig}"),
            format!("+{exp}.{sig}"),
            format!("99999999999999999999999.{sig}"),
            format!("{exp}."),
            format!("{exp}.{}", &sig[1..]),
            format!("{exp}.{}!", &sig[1..]),
            format!("{exp}.{sig}.{sig}"),
        ] {
            assert!(
                matches!(
                    verify(&key(), "s", &bad, NOW),
                    Err(WebError::MalformedToken(_))
                ),
                "{bad:?} should be malformed"
            );
        }
    }

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        assert_eq!(
            CsrfKey::new(b"short").unwrap_err(),
            WebError::WeakSecret { len: 5, min: 32 }
        );
        assert_eq!(format!("{:?}", key()), "CsrfKey(***)");
    }

    #[test]
    fn the_hidden_field_carries_the_token_escaped() {
        let html = hidden_field("a\"b").into_string();
        assert_eq!(
            html,
            r#"<input type="hidden" name="csrf_token" value="a&quot;b">"#
        );
    }
}
