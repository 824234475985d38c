//! `pod-identity-doctor`: see the `eks_pod_identity_doctor::cli` module.

fn main() -> std::process::ExitCode {
    eks_pod_identity_doctor::cli::main()
}
