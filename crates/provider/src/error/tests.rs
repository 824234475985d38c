//! Each error's `Display` says what its own layer knows and `source()`
//! gives the next layer: the cause's text is never in the `Display` too, so
//! a chain printer shows every cause once.

use super::*;
use std::io;

/// A real "file not found" error, as the token loader sees it.
fn not_found() -> io::Error {
    std::fs::read("/nonexistent/eks-pod-identity/token").unwrap_err()
}

fn token_read() -> TokenError {
    TokenError::Read {
        origin: TokenOrigin::File("/nonexistent/eks-pod-identity/token".into()),
        source: not_found(),
    }
}

/// `err`'s `Display` does not repeat its cause, and `source()` is the cause.
fn assert_source_not_repeated(err: &dyn StdError, cause_text: &str) {
    let shown = err.to_string();
    assert!(
        !shown.contains(cause_text),
        "{shown:?} repeats {cause_text:?}"
    );
    let source = err.source().expect("the cause is the source");
    assert_eq!(source.to_string(), cause_text);
}

#[test]
fn token_read_names_the_file_and_the_fix_and_leaves_the_io_error_to_source() {
    let err = token_read();
    let io_text = not_found().to_string();
    assert_eq!(
        err.to_string(),
        "cannot read token file /nonexistent/eks-pod-identity/token; check the projected service-account volume is mounted (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)"
    );
    assert_source_not_repeated(&err, &io_text);
    let io = err.source().unwrap().downcast_ref::<io::Error>();
    assert_eq!(io.map(io::Error::kind), Some(io::ErrorKind::NotFound));
    // Seen through the agent error, which is transparent over it.
    let agent = AgentError::from(token_read());
    assert_eq!(agent.to_string(), err.to_string());
    assert_source_not_repeated(&agent, &io_text);
}

#[test]
fn invalid_agent_document_leaves_the_parse_error_to_source() {
    let parse = ParseError::MissingField("AccessKeyId");
    let err = AgentError::InvalidResponse {
        uri: "http://169.254.170.23/v1/credentials".into(),
        source: parse.clone(),
    };
    assert_eq!(
        err.to_string(),
        "the Pod Identity Agent at http://169.254.170.23/v1/credentials sent an invalid credentials document"
    );
    assert_source_not_repeated(&err, &parse.to_string());
    assert_eq!(err.source().unwrap().downcast_ref(), Some(&parse));
}

#[test]
fn invalid_imds_document_leaves_the_parse_error_to_source() {
    let parse = ParseError::NotSuccess {
        code: "AssumeRoleUnauthorizedAccess".into(),
    };
    let err = ImdsError::InvalidResponse {
        endpoint: "http://169.254.169.254".into(),
        role: "node-role".into(),
        source: parse.clone(),
    };
    assert_eq!(
        err.to_string(),
        "IMDS at http://169.254.169.254 sent invalid credentials for role node-role"
    );
    assert_source_not_repeated(&err, &parse.to_string());
    assert_eq!(err.source().unwrap().downcast_ref(), Some(&parse));
}

#[test]
fn refresh_error_names_the_source_and_leaves_its_error_to_source() {
    let err = RefreshError::new("pod-identity", AgentError::from(token_read()));
    assert_eq!(
        err.to_string(),
        "could not get credentials from pod-identity"
    );
    assert_source_not_repeated(&err, &token_read().to_string());
    assert!(err.source().unwrap().is::<AgentError>());
    assert!(err.source_error().is::<AgentError>());
}

#[test]
fn the_sdk_error_does_not_repeat_the_refresh_error() {
    let refresh = RefreshError::new("pod-identity", AgentError::from(token_read()));
    let sdk = CredentialsError::from(refresh.clone());
    assert!(matches!(sdk, CredentialsError::ProviderError(_)), "{sdk:?}");
    assert_source_not_repeated(&sdk, &refresh.to_string());
    assert!(sdk.source().unwrap().is::<RefreshError>());
}

#[test]
fn the_chain_prints_each_cause_once_on_its_own_line() {
    let refresh = RefreshError::new("pod-identity", AgentError::from(token_read()));
    let sdk = CredentialsError::from(refresh);
    let io_text = not_found().to_string();
    let expected = [
        "an error occurred while loading credentials",
        "could not get credentials from pod-identity",
        "cannot read token file /nonexistent/eks-pod-identity/token; check the projected service-account volume is mounted (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)",
        io_text.as_str(),
    ];
    assert_eq!(
        ErrorChain(&sdk).to_string(),
        expected.join("\n  caused by: ")
    );
    assert_eq!(ErrorChain(&sdk).one_line().to_string(), expected.join(": "));
    let shown = ErrorChain(&sdk).to_string();
    assert_eq!(shown.matches(io_text.as_str()).count(), 1, "{shown}");
    assert_eq!(
        shown.matches("cannot read token file").count(),
        1,
        "{shown}"
    );
}
