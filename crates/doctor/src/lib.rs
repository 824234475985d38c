//! Node-role leakage detector (work in progress).
