//! Signed preference-center links: `<key id>.<subject key>.<expires at>.<signature>`.
//!
//! The signature is hex of HMAC-SHA256(link key, "candor-link-v1" ‖ scope ‖ key id ‖ subject ‖
//! expires at), with every part length-prefixed so no two inputs share an encoding. The link key
//! is derived from the master key and a key id (a rotation counter): raising the key id in the
//! configuration revokes every link issued before, because their key id no longer matches.
//!
//! Invariants: a token names exactly one subject and one scope, and cannot be extended; every
//! failure (forged, expired, revoked, malformed) is the same [`LinkError`] kind to the person
//! holding it, so a page never tells whether the subject exists. Verification compares MACs in
//! constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::envelope::SecretKey;
use crate::{Micros, SubjectKey};

/// What a link may be used for. Only the preference center exists; the scope is inside the
/// signature so a later scope cannot accept a preference-center link, or the reverse.
pub const PREFERENCE_CENTER_SCOPE: &str = "preference_center";

const DOMAIN: &[u8] = b"candor-link-v1";

/// Why a link was refused. The person sees one page for all of them; the variant is for logs
/// and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link was signed with a key that has been rotated away")]
    Revoked,
    #[error("the link's signature does not match")]
    Forged,
    #[error("the link expired")]
    Expired,
}

/// The key links are signed with, for one key id.
#[derive(Clone)]
pub struct LinkKey {
    id: u32,
    bytes: [u8; 32],
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkKey({}, ***)", self.id)
    }
}

impl LinkKey {
    /// The link key for `id`, derived from the master key: a new id gives an unrelated key.
    pub fn derive(master: &SecretKey, id: u32) -> Self {
        LinkKey {
            id,
            bytes: master.derive(format!("candor-link-key:{id}").as_bytes()),
        }
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    fn mac(&self, scope: &str, subject: &str, expires_at: Micros) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.bytes).expect("any length");
        mac.update(DOMAIN);
        for part in [scope.as_bytes(), subject.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&self.id.to_be_bytes());
        mac.update(&expires_at.to_be_bytes());
        mac
    }

    /// A token for `subject` in `scope`, valid until `expires_at`.
    pub fn issue(&self, scope: &str, subject: &SubjectKey, expires_at: Micros) -> String {
        let sig = self
            .mac(scope, subject.as_str(), expires_at)
            .finalize()
            .into_bytes();
        format!("{}.{}.{expires_at}.{}", self.id, subject, hex::encode(sig))
    }

    /// The subject a token names, if this key signed it for `scope` and it has not expired.
    pub fn verify(&self, scope: &str, token: &str, now: Micros) -> Result<SubjectKey, LinkError> {
        let mut parts = token.split('.');
        let (Some(id), Some(subject), Some(expires), Some(sig), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(LinkError::Malformed);
        };
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(id) || !digits(expires) || sig.len() != 64 {
            return Err(LinkError::Malformed);
        }
        let id: u32 = id.parse().map_err(|_| LinkError::Malformed)?;
        let expires_at: Micros = expires.parse().map_err(|_| LinkError::Malformed)?;
        let subject = SubjectKey::parse(subject).map_err(|_| LinkError::Malformed)?;
        let sig = hex::decode(sig).map_err(|_| LinkError::Malformed)?;
        if id != self.id {
            return Err(LinkError::Revoked);
        }
        // The signature before the expiry: "expired" is only said of tokens this key issued.
        self.mac(scope, subject.as_str(), expires_at)
            .verify_slice(&sig)
            .map_err(|_| LinkError::Forged)?;
        if now >= expires_at {
            return Err(LinkError::Expired);
        }
        Ok(subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Micros = 1_767_225_600_000_000;
    const DAY: Micros = 86_400_000_000;

    fn master() -> SecretKey {
        SecretKey::from_bytes([7; 32])
    }

    fn subject() -> SubjectKey {
        SubjectKey::parse(&"ab".repeat(32)).unwrap()
    }

    #[test]
    fn a_link_names_its_subject_until_it_expires() {
        let key = LinkKey::derive(&master(), 1);
        let t = key.issue(PREFERENCE_CENTER_SCOPE, &subject(), NOW + DAY);
        assert_eq!(key.verify(PREFERENCE_CENTER_SCOPE, &t, NOW), Ok(subject()));
        assert_eq!(
            key.verify(PREFERENCE_CENTER_SCOPE, &t, NOW + DAY),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn rotating_the_key_id_revokes_old_links() {
        let old = LinkKey::derive(&master(), 1);
        let new = LinkKey::derive(&master(), 2);
        let t = old.issue(PREFERENCE_CENTER_SCOPE, &subject(), NOW + DAY);
        assert_eq!(
            new.verify(PREFERENCE_CENTER_SCOPE, &t, NOW),
            Err(LinkError::Revoked)
        );
        // Claiming the new id does not help: the key behind it differs.
        let claimed = t.replacen("1.", "2.", 1);
        assert_eq!(
            new.verify(PREFERENCE_CENTER_SCOPE, &claimed, NOW),
            Err(LinkError::Forged)
        );
    }

    #[test]
    fn altered_subject_expiry_or_scope_breaks_the_signature() {
        let key = LinkKey::derive(&master(), 1);
        let t = key.issue(PREFERENCE_CENTER_SCOPE, &subject(), NOW + DAY);
        let other = t.replace(&"ab".repeat(32), &"cd".repeat(32));
        assert_eq!(
            key.verify(PREFERENCE_CENTER_SCOPE, &other, NOW),
            Err(LinkError::Forged)
        );
        let longer = t.replace(&(NOW + DAY).to_string(), &(NOW + 100 * DAY).to_string());
        assert_eq!(
            key.verify(PREFERENCE_CENTER_SCOPE, &longer, NOW + 2 * DAY),
            Err(LinkError::Forged)
        );
        assert_eq!(key.verify("admin", &t, NOW), Err(LinkError::Forged));
        let foreign = LinkKey::derive(&SecretKey::from_bytes([8; 32]), 1);
        assert_eq!(
            foreign.verify(PREFERENCE_CENTER_SCOPE, &t, NOW),
            Err(LinkError::Forged)
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let key = LinkKey::derive(&master(), 1);
        let t = key.issue(PREFERENCE_CENTER_SCOPE, &subject(), NOW + DAY);
        for bad in [
            String::new(),
            "1.2.3".into(),
            format!("{t}.x"),
            t.replacen("1.", "x.", 1),
            t[..t.len() - 1].to_owned(),
            t.replace(&"ab".repeat(32), "ab"),
        ] {
            assert_eq!(
                key.verify(PREFERENCE_CENTER_SCOPE, &bad, NOW),
                Err(LinkError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(format!("{key:?}"), "LinkKey(1, ***)");
    }
}
