//! One function per page: domain values in, a complete document out.

mod privacy;

pub use privacy::privacy;
pub mod preferences;
