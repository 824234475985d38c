//! Printing an error with its causes, each once.
//!
//! The crate's errors follow the standard convention: `Display` says what
//! its own layer knows and [`Error::source`] gives the next layer. Printing
//! only the top `Display` therefore loses the cause; [`ErrorChain`] prints
//! the whole chain.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each of its causes ([`Error::source`]),
/// each distinct cause once, and never a `Debug` dump.
///
/// - `{}` puts each cause on its own line, for people (command-line tools,
///   examples): `top\n  caused by: cause\n  caused by: root`.
/// - `{:#}` puts the chain on one line, causes separated by `: `, for log
///   fields and JSON messages: `top: cause: root`.
///   [`one_line`](Self::one_line) is the same as a value, for `tracing`
///   fields (`error = %ErrorChain(&err).one_line()`).
///
/// Errors of other libraries do not all follow the convention: a cause
/// whose text is already part of the line above is skipped, so that it is
/// not printed twice.
///
/// ```
/// use eks_pod_identity_provider::ErrorChain;
///
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// println!("error: {}", ErrorChain(&io));
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'a));

impl<'a> ErrorChain<'a> {
    /// The chain on one line (`{:#}`), as a value for `tracing` fields and
    /// other places that format with `{}`.
    pub fn one_line(self) -> impl fmt::Display + 'a {
        OneLine(self)
    }
}

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let separator = if f.alternate() {
            ": "
        } else {
            "\n  caused by: "
        };
        let mut above = self.0.to_string();
        f.write_str(&above)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            let text = err.to_string();
            if !text.trim().is_empty() && !above.contains(&text) {
                f.write_str(separator)?;
                f.write_str(&text)?;
            }
            above = text;
            cause = err.source();
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

struct OneLine<'a>(ErrorChain<'a>);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorChain;
    use std::error::Error;
    use std::fmt;

    #[derive(Debug)]
    struct Layer(String, Option<Box<dyn Error + 'static>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref()
        }
    }

    fn layer(text: &str, source: Option<Layer>) -> Layer {
        Layer(text.into(), source.map(|s| Box::new(s) as _))
    }

    #[test]
    fn each_distinct_cause_once_on_its_own_line() {
        // Layers of another library that repeat their cause's text (the
        // shape the SDK showed before the provider's errors followed the
        // convention): each text is printed once.
        let io = layer("No such file or directory (os error 2)", None);
        let token = layer(
            "cannot read token file /nonexistent: No such file or directory (os error 2)",
            Some(io),
        );
        let refresh = layer(
            "pod-identity: cannot read token file /nonexistent: No such file or directory (os error 2)",
            Some(token),
        );
        let sdk = layer("dispatch failure", Some(refresh));
        let shown = ErrorChain(&sdk).to_string();
        assert_eq!(
            shown,
            "dispatch failure\n  caused by: pod-identity: cannot read token file /nonexistent: No such file or directory (os error 2)"
        );
        assert_eq!(shown.matches("cannot read token file").count(), 1);
    }

    #[test]
    fn unrelated_causes_are_all_printed() {
        let err = layer("a", Some(layer("b", Some(layer("c", None)))));
        assert_eq!(
            ErrorChain(&err).to_string(),
            "a\n  caused by: b\n  caused by: c"
        );
    }

    #[test]
    fn alternate_and_one_line_put_the_chain_on_one_line() {
        let err = layer("a", Some(layer("b", Some(layer("c", None)))));
        assert_eq!(format!("{:#}", ErrorChain(&err)), "a: b: c");
        assert_eq!(ErrorChain(&err).one_line().to_string(), "a: b: c");
        assert_eq!(
            format!("{:?}", ErrorChain(&err)),
            "a\n  caused by: b\n  caused by: c"
        );
    }

    #[test]
    fn an_error_without_source_is_its_display() {
        let err = layer("alone", None);
        assert_eq!(ErrorChain(&err).to_string(), "alone");
        assert_eq!(ErrorChain(&err).one_line().to_string(), "alone");
    }
}
