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
scopes!(Ingest => Scope::Ingest, Recommend => Scope::Recommend, Admin => Scope::Admin, Auditor => Scope::Auditor);

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

fn presented_secret(parts: &Parts) -> Result<String, ApiError> {
    let header = parts
        .headers
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

impl<S: RequiredScope> FromRequestParts<AppState> for Auth<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let secret = presented_secret(parts)?;
        let key = app
            .authenticate(&secret)
            .ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?;
        if !key.scope.permits(S::SCOPE) {
            return Err(ApiError::forbidden(format!(
                "this route needs a key with scope `{}`; this key has `{}`",
                S::SCOPE.as_str(),
                key.scope.as_str()
            )));
        }
        Ok(Auth {
            key,
            _scope: PhantomData,
        })
    }
}
