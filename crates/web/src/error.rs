use thiserror::Error;

/// What can go wrong in the page layer. Only CSRF handling can fail; rendering cannot.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WebError {
    /// The CSRF secret is too short to resist guessing.
    #[error("the CSRF secret must be at least {min} bytes, got {len}")]
    WeakSecret { len: usize, min: usize },
    /// The token is not `<expiry>.<signature>` with a decimal expiry and a base64url signature.
    #[error("the CSRF token is malformed: {0}")]
    MalformedToken(&'static str),
    /// The token was valid until `expired_at` (microseconds since the epoch).
    #[error("the CSRF token expired at {expired_at} µs; reload the page and try again")]
    ExpiredToken { expired_at: candor_domain::Micros },
    /// The signature does not match: the token was made for another session, by another server
    /// secret, or was altered. These are deliberately indistinguishable.
    #[error("the CSRF token does not match this session")]
    InvalidToken,
}
