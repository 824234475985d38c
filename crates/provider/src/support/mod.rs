//! Plumbing shared by the sources and the cache: the hardened HTTP client,
//! time helpers and the RFC 3339 format of the wire documents.

pub(crate) mod http;
pub(crate) mod rfc3339;
pub(crate) mod time;
