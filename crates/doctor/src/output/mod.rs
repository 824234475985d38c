//! Rendering a [`Report`](crate::report::Report): human-readable text
//! ([`human`]), versioned JSON ([`json`]) and SARIF 2.1.0 ([`sarif`]).

pub mod human;
pub mod json;
pub mod sarif;
