//! Candor's server-rendered pages: markup, one stylesheet, CSRF tokens and the security headers
//! pages are served with.
//!
//! Invariants:
//! - **No I/O and no HTTP framework.** This crate knows nothing of axum, sockets, SQL, files,
//!   clocks or randomness. Pages are pure functions from domain values to [`maud::Markup`]; the
//!   time and the secrets CSRF needs are passed in. `candor-http` is the only crate that serves
//!   them, so every page can be tested by rendering it.
//! - **Every page goes through [`layout::page`]**: one document shell (language, charset,
//!   viewport, title, skip link, header/main/footer landmarks) and one stylesheet,
//!   [`layout::STYLESHEET`], served at [`layout::STYLESHEET_PATH`].
//! - **No inline styles or scripts.** Pages work without JavaScript and carry no `style`
//!   attributes, `<style>` or `<script>` elements, so [`headers::CONTENT_SECURITY_POLICY`] can
//!   forbid them all. Text is escaped by maud; nothing here uses `PreEscaped` on input.
//! - **State is never shown by colour alone**: every badge and flag says what it means in words.
//! - Forms that change anything carry a CSRF token ([`csrf`]) bound to the session, signed with
//!   HMAC-SHA256 under a server secret, with an expiry; the http crate verifies it before acting.
#![forbid(unsafe_code)]

pub mod banner;
pub mod components;
pub mod csrf;
mod error;
pub mod headers;
pub mod i18n;
pub mod layout;
pub mod pages;

pub use error::WebError;
pub use maud::Markup;
