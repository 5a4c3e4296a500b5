//! `ctl`'s commands as library functions: each takes the task's settings and clients (or the
//! ports they stand behind, in its `*_with` core) and a [`terminal::Terminal`] for notes, output
//! and progress, and returns what it did ([`Output`], or the JSON summary the command prints) or a
//! [`failure::Failure`] carrying the exit code. The `ctl` binary parses the arguments, starts up
//! ([`settings`]), calls one of these and prints the result.

pub mod args;
pub mod backfill;
pub mod failure;
pub mod redrive;
pub mod retry_failed;
pub mod settings;
pub mod status;
pub mod sweep_uploads;
pub mod switch;
pub mod terminal;
pub mod verify;

#[cfg(test)]
pub(crate) mod recorded;

/// What a command ends with, when it did not fail: what goes to stdout, the notes for stderr after
/// it, and the exit code (0, or 1 when the command ran but found problems).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Printed to stdout as it is.
    pub stdout: String,
    /// Lines for stderr, printed after the output, each after `ctl: `.
    pub notes: Vec<String>,
    /// The exit code.
    pub code: u8,
}

impl Output {
    /// A command's JSON summary, on one line, exit 0.
    pub fn summary(summary: serde_json::Value) -> Self {
        Self {
            stdout: format!("{summary}\n"),
            notes: Vec::new(),
            code: 0,
        }
    }

    /// The notes as printed to stderr.
    pub fn stderr(&self) -> String {
        self.notes.iter().map(|n| format!("ctl: {n}\n")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_is_one_line_and_notes_are_prefixed() {
        let mut out = Output::summary(serde_json::json!({"a": [true], "b": 1}));
        assert_eq!(out.stdout, "{\"a\":[true],\"b\":1}\n");
        assert_eq!(out.code, 0);
        assert_eq!(out.stderr(), "");
        out.notes = vec!["one".into(), "two".into()];
        assert_eq!(out.stderr(), "ctl: one\nctl: two\n");
    }
}
