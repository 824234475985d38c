//! `pod-identity-doctor` command line (work in progress).
fn main() {}
