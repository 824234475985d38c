//! Rendering a [`Report`](crate::report::Report): human-readable text
//! ([`human`]) and versioned JSON ([`json`]).

pub mod human;
pub mod json;
