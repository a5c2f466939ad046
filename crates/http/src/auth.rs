//! API key authentication. A route states the scope it needs in its signature:
//! `Auth<Admin>`, `Auth<Recommend>`, ... Keys come as `Authorization: Bearer <key>`, or as HTTP
//! Basic with the key as user name (how Segment libraries send write keys).

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use candor_app::KeyInfo;
use candor_domain::Scope;

use crate::{ApiError, AppState};

pub trait RequiredScope: Send + Sync {
    const SCOPE: Scope;
}

macro_rules! scopes {
    ($($name:ident => $scope:expr),*) => {$(
        pub struct $name;
        impl RequiredScope for $name { const SCOPE: Scope = $scope; }
    )*};
}
scopes!(Ingest => Scope::Ingest, Recommend => Scope::Recommend, Consent => Scope::Consent, Admin => Scope::Admin, Auditor => Scope::Auditor, Rights => Scope::Rights, Analytics => Scope::Analytics, Site => Scope::Site, Reviewer => Scope::Reviewer);

/// The authenticated key of a request that needed scope `S`.
pub struct Auth<S> {
    pub key: KeyInfo,
    _scope: PhantomData<S>,
}

impl<S> Auth<S> {
    pub fn actor(&self) -> String {
        self.key.actor()
    }
}

fn secret_from_headers(headers: &axum::http::HeaderMap) -> Result<String, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized("missing API key: send `Authorization: Bearer <key>`")
        })?
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not valid text"))?;
    let (scheme, value) = header
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Ok(value.trim().to_owned()),
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::unauthorized("malformed Basic credentials"))?;
            Ok(decoded
                .split_once(':')
                .map_or(decoded.as_str(), |(user, _)| user)
                .to_owned())
        }
        _ => Err(ApiError::unauthorized(
            "unsupported Authorization scheme: use Bearer or Basic",
        )),
    }
}

/// Checks a presented secret against the scope a route needs.
pub fn authorize(app: &AppState, secret: &str, scope: Scope) -> Result<KeyInfo, ApiError> {
    let key = app
        .authenticate(secret)
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?;
    if !key.scope.permits(scope) {
        return Err(ApiError::forbidden(format!(
            "this route needs a key with scope `{}`; this key has `{}`",
            scope.as_str(),
            key.scope.as_str()
        )));
    }
    Ok(key)
}

/// The key from the Authorization header, or else from the `writeKey` a body carried (how some
/// Segment clients send it).
pub fn authorize_ingest(
    app: &AppState,
    headers: &axum::http::HeaderMap,
    body_write_key: Option<&str>,
) -> Result<KeyInfo, ApiError> {
    let secret = match (
        headers.get(axum::http::header::AUTHORIZATION),
        body_write_key,
    ) {
        (None, Some(k)) => k.to_owned(),
        _ => secret_from_headers(headers)?,
    };
    authorize(app, &secret, Scope::Ingest)
}

impl<S: RequiredScope> FromRequestParts<AppState> for Auth<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let secret = secret_from_headers(&parts.headers)?;
        Ok(Auth {
            key: authorize(app, &secret, S::SCOPE)?,
            _scope: PhantomData,
        })
    }
}

/// The authenticated key of a request that needed scope `A` or scope `B`.
pub struct AuthEither<A, B> {
    pub key: KeyInfo,
    _scopes: PhantomData<(A, B)>,
}

impl<A, B> AuthEither<A, B> {
    pub fn actor(&self) -> String {
        self.key.actor()
    }
}

impl<A: RequiredScope, B: RequiredScope> FromRequestParts<AppState> for AuthEither<A, B> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let secret = secret_from_headers(&parts.headers)?;
        let key = authorize(app, &secret, A::SCOPE).or_else(|first| match first.code {
            crate::error::ErrorCode::Forbidden => authorize(app, &secret, B::SCOPE).map_err(|_| {
                ApiError::forbidden(format!(
                    "this route needs a key with scope `{}` or `{}`",
                    A::SCOPE.as_str(),
                    B::SCOPE.as_str()
                ))
            }),
            _ => Err(first),
        })?;
        Ok(AuthEither {
            key,
            _scopes: PhantomData,
        })
    }
}
