//! Documentation only: the design, the guarantees and the limitations of
//! this crate, in one place (no code lives here).
//!
//! * [`design`]: how a credentials call flows through the crate, why the
//!   cache is built as it is, how the SDK's identity cache is served, and
//!   the coarse clock on the hot path.
//! * [`guarantees`]: what every public method promises about waiting,
//!   locking and faults (the concurrency contract).
//! * [`limitations`]: what the crate requires (a tokio runtime, one
//!   `SdkIdentityCache` per SDK config) and what it does not do.

pub mod design;
pub mod guarantees;
pub mod limitations;
