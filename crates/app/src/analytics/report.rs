//! placeholder
use serde::Serialize;
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct RightsFigures {}
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransparencyReport {}
