//! One function per page: domain values in, a complete document out.

mod privacy;
mod transparency;

pub use privacy::privacy;
pub use transparency::transparency;
pub mod preferences;
