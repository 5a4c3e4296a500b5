//! Errors as values and as text. As values: [`BoxError`], the cause an error keeps as its
//! `#[source]`, and [`Context`], a cause with what was being done when it came. As text, for
//! records, logs and the command line (the edges): [`error_chain`], an error with its chain of
//! causes. Errors say their own context and the cause that came straight from below; the rest of
//! the chain is rendered only at the edges, by [`error_chain`].

/// A cause kept as an error's source: any error, or a message (`"...".into()`) when there is no
/// error below to keep.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error and its causes, joined, so nothing of the chain is lost in a record. A cause whose
/// text is already in what comes before it (an error that shows its cause) is not repeated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        cur = s.source();
    }
    out
}

/// A cause with what was being done when it came (`GetObject <key>`), and whether trying again
/// may help. It shows as `<what>: <cause>`.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct Context {
    /// What was being done.
    pub what: String,
    /// Whether trying again may help.
    pub transient: bool,
    /// The cause.
    #[source]
    pub source: BoxError,
}

impl Context {
    /// `source`, met while doing `what`; not transient unless [`Self::transient`] says so.
    pub fn new(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            what: what.into(),
            transient: false,
            source: source.into(),
        }
    }

    /// Says whether trying again may help.
    pub fn transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }
}

impl crate::retry::Transient for Context {
    fn is_transient(&self) -> bool {
        self.transient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_shows_each_cause_once() {
        let io = std::io::Error::other("connection reset");
        let e = Context::new("GetObject k", io);
        assert_eq!(e.to_string(), "GetObject k: connection reset");
        assert_eq!(error_chain(&e), "GetObject k: connection reset");
        let outer = Context::new("results store", e);
        assert_eq!(
            error_chain(&outer),
            "results store: GetObject k: connection reset"
        );
        let msg = Context::new("PutObject k", "injected");
        assert_eq!(error_chain(&msg), "PutObject k: injected");
    }
}
