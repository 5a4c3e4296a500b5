//! How a `ctl` command fails: a [`Failure`] says what to tell the operator and which exit code
//! ends the process (0 done, 1 an AWS or OSS call failed, 2 bad settings or input, 3 a
//! verification found differences, 130 interrupted), and maps every [`ControlError`] and
//! [`StoreError`] to its code.

use crate::control::ControlError;
use crate::store::error::StoreError;

/// A call to AWS or OSS failed: trying again may help.
pub const EXIT_CALL_FAILED: u8 = 1;
/// The settings or the input are not what the command needs.
pub const EXIT_BAD_INPUT: u8 = 2;
/// A verification found differences (and, with `--repair`, sent events for them).
pub const EXIT_DIFFERENCES_FOUND: u8 = 3;
/// The operator stopped the command (a backfill's checkpoint is saved first).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The kinds of failure, one per exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A call to AWS or OSS failed ([`EXIT_CALL_FAILED`]).
    Call,
    /// Bad settings or input ([`EXIT_BAD_INPUT`]).
    Input,
    /// A verification found differences ([`EXIT_DIFFERENCES_FOUND`]).
    Differences,
    /// Stopped by the operator ([`EXIT_INTERRUPTED`]).
    Interrupted,
}

impl FailureKind {
    /// The exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Call => EXIT_CALL_FAILED,
            Self::Input => EXIT_BAD_INPUT,
            Self::Differences => EXIT_DIFFERENCES_FOUND,
            Self::Interrupted => EXIT_INTERRUPTED,
        }
    }
}

/// A command's failure: what it prints and the exit code.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Which failure (the exit code).
    pub kind: FailureKind,
    /// What went wrong, for stderr.
    pub message: String,
    /// A second line for stderr: what to do about it.
    pub hint: Option<String>,
    /// What the command did before it failed (a backfill's counts, a verification's report),
    /// printed to stdout first.
    pub summary: Option<serde_json::Value>,
}

impl Failure {
    /// A failure of a kind.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
            summary: None,
        }
    }

    /// A call that failed (exit 1).
    pub fn call(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Call, message)
    }

    /// Bad input (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Input, message)
    }

    /// Settings that cannot be used (exit 2): `invalid configuration: …`.
    pub fn config(e: impl std::fmt::Display) -> Self {
        Self::input(format!("invalid configuration: {e}"))
    }

    /// The same failure, with what the command did printed before it.
    pub fn with_summary(mut self, summary: serde_json::Value) -> Self {
        self.summary = Some(summary);
        self
    }

    /// The same failure, with a hint line.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The exit code.
    pub fn code(&self) -> u8 {
        self.kind.code()
    }

    /// What goes to stdout: the summary, if any, on one line.
    pub fn stdout(&self) -> String {
        self.summary
            .as_ref()
            .map(|s| format!("{s}\n"))
            .unwrap_or_default()
    }

    /// What goes to stderr: the message, and the hint, each after `ctl: `.
    pub fn stderr(&self) -> String {
        let mut out = format!("ctl: {}\n", self.message);
        if let Some(hint) = &self.hint {
            out.push_str(&format!("ctl: {hint}\n"));
        }
        out
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A failed call is 1; an answer or input the command cannot use, or a checkpoint file that
/// cannot be read or written, is 2.
pub fn kind_of(e: &ControlError) -> FailureKind {
    match e {
        ControlError::Store(StoreError::Call { .. }) | ControlError::Oss(_) => FailureKind::Call,
        ControlError::Store(StoreError::Input(_))
        | ControlError::Input(_)
        | ControlError::Checkpoint { .. } => FailureKind::Input,
    }
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Self {
        Self::new(kind_of(&e), crate::errors::error_chain(&e))
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        ControlError::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(transient: bool) -> StoreError {
        StoreError::Call {
            service: "SQS",
            op: "SendMessageBatch",
            source: "refused".into(),
            transient,
        }
    }

    #[test]
    fn each_error_kind_has_its_exit_code() {
        let cases: Vec<(ControlError, u8)> = vec![
            (ControlError::Store(call(true)), 1),
            (ControlError::Store(call(false)), 1),
            (ControlError::oss("GetObject: 503"), 1),
            (ControlError::Store(StoreError::Input("no DLQ".into())), 2),
            (ControlError::Input("no report".into()), 2),
            (
                ControlError::Checkpoint {
                    path: "cp.json".into(),
                    detail: "denied".into(),
                },
                2,
            ),
        ];
        for (e, code) in cases {
            let text = e.to_string();
            let f = Failure::from(e);
            assert_eq!(f.code(), code, "{text}");
            assert_eq!(f.message, text);
            assert_eq!((f.hint.as_ref(), f.summary.as_ref()), (None, None));
        }
        assert_eq!(Failure::from(call(false)).code(), 1);
        assert_eq!(Failure::from(StoreError::Input("x".into())).code(), 2);
    }

    #[test]
    fn the_kinds_are_the_documented_codes() {
        assert_eq!(FailureKind::Call.code(), 1);
        assert_eq!(FailureKind::Input.code(), 2);
        assert_eq!(FailureKind::Differences.code(), 3);
        assert_eq!(FailureKind::Interrupted.code(), 130);
    }

    #[test]
    fn a_failure_prints_its_summary_to_stdout_and_its_lines_to_stderr() {
        let f = Failure::config("TASK_ID: not set").with_hint("set the task's variables");
        assert_eq!(f.code(), 2);
        assert_eq!(f.stdout(), "");
        assert_eq!(
            f.stderr(),
            "ctl: invalid configuration: TASK_ID: not set\nctl: set the task's variables\n"
        );
        let f = Failure::new(FailureKind::Interrupted, "interrupted")
            .with_summary(serde_json::json!({"finished": false}));
        assert_eq!(f.stdout(), "{\"finished\":false}\n");
        assert_eq!(f.stderr(), "ctl: interrupted\n");
        assert_eq!(f.to_string(), "interrupted");
    }
}
