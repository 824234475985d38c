//! What a run records (every public value and error, for the
//! secret-hygiene test) and the subject under test.

use super::*;

/// What a run produced: human-readable renderings of every public value and
/// error seen (for the secret-hygiene test) and a note per case.
#[derive(Debug, Default)]
pub struct Outcome {
    pub rendered: Vec<String>,
}

impl Outcome {
    pub(crate) fn show(&mut self, v: &(impl std::fmt::Debug + ?Sized)) {
        self.rendered.push(format!("{v:?}"));
    }
    pub(crate) fn show_err(&mut self, e: &RefreshError) {
        self.rendered.push(format!("{e}"));
        self.rendered.push(format!("{e:?}"));
        self.rendered.push(ErrorChain(e).to_string());
        self.rendered.push(format!("{}", e.source_error()));
        self.rendered.push(format!("{:?}", e.source_error()));
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(c) = cur {
            self.rendered.push(c.to_string());
            cur = c.source();
        }
        if let Some(a) = e.source_error().downcast_ref::<AgentError>() {
            self.rendered.push(format!("{a} {a:?}"));
        }
        if let Some(i) = e.source_error().downcast_ref::<ImdsError>() {
            self.rendered.push(format!("{i} {i:?}"));
        }
        let sdk =
            aws_credential_types::provider::error::CredentialsError::provider_error(e.clone());
        self.rendered
            .push(format!("{sdk} {sdk:?} {}", ErrorChain(&sdk)));
    }
}

pub(crate) enum Subject {
    Agent(PodIdentityProvider),
    Imds(RefreshingCache<ImdsSource>),
}

impl Subject {
    pub(crate) async fn get(&self) -> Result<Credentials, RefreshError> {
        match self {
            Subject::Agent(p) => p.credentials().await,
            Subject::Imds(c) => c.get().await,
        }
    }
    pub(crate) fn status(&self) -> Status {
        match self {
            Subject::Agent(p) => p.status(),
            Subject::Imds(c) => c.status(),
        }
    }
    pub(crate) fn debug(&self) -> String {
        match self {
            Subject::Agent(p) => format!("{p:?} {:?}", p.endpoint()),
            Subject::Imds(c) => format!("{c:?}"),
        }
    }
}
