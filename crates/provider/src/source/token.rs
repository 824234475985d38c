//! The authorization token: read, validate, never reveal.
//!
//! The token file is re-read on **every** fetch. The kubelet rotates the
//! projected token; reading it once at start-up is what caused botocore's
//! well-known expired-token outage.

use crate::config::{Secret, TokenSource};
use crate::context::FileSystem;
use crate::error::{TokenError, TokenOrigin};
use crate::protocol::MAX_TOKEN_BYTES;

/// Loads the current token from its source.
pub(crate) fn load(source: &TokenSource, fs: &dyn FileSystem) -> Result<Secret, TokenError> {
    match source {
        TokenSource::File(path) => {
            let origin = TokenOrigin::File(path.clone());
            let bytes =
                fs.read_capped(path, MAX_TOKEN_BYTES)
                    .map_err(|source| TokenError::Read {
                        origin: origin.clone(),
                        source,
                    })?;
            validate(origin, &bytes)
        }
        TokenSource::Value(secret) => validate(TokenOrigin::Value, secret.expose().as_bytes()),
    }
}

/// Validates raw token bytes: at most [`MAX_TOKEN_BYTES`], one trailing
/// newline trimmed, no other CR/LF or control characters, not empty.
///
/// ```
/// # #[cfg(feature = "test-util")] {
/// use eks_pod_identity_provider::test_util::parsers::validate_token as validate;
/// use eks_pod_identity_provider::TokenOrigin;
/// assert_eq!(validate(TokenOrigin::Value, b"abc\n").unwrap().expose(), "abc");
/// assert!(validate(TokenOrigin::Value, b"abc\r\nX-Injected: 1").is_err());
/// # }
/// ```
pub fn validate(origin: TokenOrigin, bytes: &[u8]) -> Result<Secret, TokenError> {
    if bytes.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge {
            origin,
            limit: MAX_TOKEN_BYTES,
        });
    }
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if trimmed.is_empty() {
        return Err(TokenError::Empty { origin });
    }
    // Header values must be visible ASCII (and tab/space); anything else could
    // split the header or confuse the agent.
    if trimmed
        .iter()
        .any(|&b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
    {
        return Err(TokenError::InvalidCharacters { origin });
    }
    let text = std::str::from_utf8(trimmed).map_err(|_| TokenError::InvalidCharacters {
        origin: origin.clone(),
    })?;
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::RealFileSystem;

    fn v(bytes: &[u8]) -> Result<String, String> {
        validate(TokenOrigin::Value, bytes)
            .map(|s| s.expose().to_owned())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn trims_exactly_one_trailing_newline() {
        assert_eq!(v(b"tok\n").unwrap(), "tok");
        assert_eq!(v(b"tok").unwrap(), "tok");
        assert!(v(b"tok\n\n").is_err());
    }

    #[test]
    fn rejects_cr_lf_and_controls_anywhere_else() {
        for bad in [
            &b"a\r\nb"[..],
            b"a\nb",
            b"a\rb",
            b"tok\r\n",
            b"a\0b",
            b"\x1b[31m",
        ] {
            let err = v(bad).unwrap_err();
            assert!(err.contains("line break"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn rejects_empty_and_oversized() {
        assert!(v(b"").unwrap_err().contains("empty"));
        assert!(v(b"\n").unwrap_err().contains("empty"));
        let big = vec![b'a'; MAX_TOKEN_BYTES + 1];
        assert!(v(&big).unwrap_err().contains("larger than"));
        assert!(v(&vec![b'a'; MAX_TOKEN_BYTES]).is_ok());
    }

    #[test]
    fn file_is_reread_each_time_and_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let src = TokenSource::File(path.clone());
        let err = load(&src, &RealFileSystem).unwrap_err();
        assert!(err.to_string().contains(&path.display().to_string()));
        std::fs::write(&path, "first\n").unwrap();
        assert_eq!(load(&src, &RealFileSystem).unwrap().expose(), "first");
        std::fs::write(&path, "second\n").unwrap();
        assert_eq!(load(&src, &RealFileSystem).unwrap().expose(), "second");
        std::fs::write(&path, vec![b'x'; MAX_TOKEN_BYTES + 10]).unwrap();
        assert!(matches!(
            load(&src, &RealFileSystem),
            Err(TokenError::TooLarge { .. })
        ));
    }

    #[test]
    fn errors_never_contain_the_token() {
        let secret = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln";
        let bad = format!("{secret}\r\nInjected: yes");
        let err = validate(TokenOrigin::Value, bad.as_bytes()).unwrap_err();
        assert!(!err.to_string().contains(secret));
        assert!(!format!("{err:?}").contains(secret));
    }
}
