//! Printing an error with its causes, for command-line tools.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each of its causes ([`Error::source`]) on
/// its own line, each distinct cause once, and never a `Debug` dump.
///
/// Layers that repeat their cause's text in their own message (common in
/// SDK errors) would otherwise print the same cause several times: a cause
/// whose text is already part of the line above is skipped.
///
/// ```
/// use eks_pod_identity::report::ErrorReport;
///
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// println!("error: {}", ErrorReport(&io));
/// ```
#[derive(Clone, Copy)]
pub struct ErrorReport<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut above = self.0.to_string();
        f.write_str(&above)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            let text = err.to_string();
            if !text.trim().is_empty() && !above.contains(&text) {
                write!(f, "\n  caused by: {text}")?;
            }
            above = text;
            cause = err.source();
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorReport;
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
        // Shaped like a missing token file seen through the SDK: three
        // layers repeat the same text.
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
        let shown = ErrorReport(&sdk).to_string();
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
            ErrorReport(&err).to_string(),
            "a\n  caused by: b\n  caused by: c"
        );
    }
}
