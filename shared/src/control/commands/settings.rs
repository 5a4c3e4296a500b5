//! `ctl`'s start-up: where its settings come from. Every variable is read from the environment,
//! else, with `--stack NAME`, from the deployed stack ([`crate::control::stack`]: its functions'
//! environment, its outputs over that; the OSS credentials taken whole from one side). The
//! variables the environment overrides are named, a stack that cannot be read fails with its exit
//! code, and settings that do not make a task fail with 2 (and, without `--stack`, a hint to use
//! it).

use super::failure::Failure;
use super::terminal::Terminal;
use crate::config::ControlConfig;
use crate::control::stack::{self, StackSettings};
use crate::control::ControlError;

/// A variable lookup (the process's environment, or a map in tests).
pub type Env = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The hint after settings that do not make a task, when no stack was named.
pub const STACK_HINT: &str =
    "set the task's variables, or name its deployed stack with --stack NAME";

/// Where a command's settings come from: the environment first, then the stack's, if read.
pub struct Settings {
    env: Env,
    stack: Option<StackSettings>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("stack", &self.stack)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Settings from `env`, then `stack`.
    pub fn new(env: Env, stack: Option<StackSettings>) -> Self {
        Self { env, stack }
    }

    /// The process's environment.
    pub fn process_env() -> Env {
        Box::new(|name| std::env::var(name).ok())
    }

    /// A variable: the environment's value (an empty one counts as unset), else the stack's
    /// ([`stack::lookup`]).
    pub fn get(&self, name: &str) -> Option<String> {
        stack::lookup(|n| (self.env)(n), self.stack.as_ref())(name)
    }

    /// The stack read, if any.
    pub fn stack(&self) -> Option<&StackSettings> {
        self.stack.as_ref()
    }

    /// The task's control settings; without a stack, the failure hints at `--stack`.
    pub fn control_config(&self) -> Result<ControlConfig, Failure> {
        ControlConfig::from_lookup(|n| self.get(n)).map_err(|e| {
            let f = Failure::config(e);
            match self.stack {
                None => f.with_hint(STACK_HINT),
                Some(_) => f,
            }
        })
    }
}

/// The settings, given what reading the stack named `--stack` gave (`None`: no stack named).
/// The variables the environment overrides are noted.
pub fn settings_from(
    env: Env,
    read: Option<(&str, Result<StackSettings, ControlError>)>,
    terminal: &dyn Terminal,
) -> Result<Settings, Failure> {
    let Some((name, read)) = read else {
        return Ok(Settings::new(env, None));
    };
    match read {
        Ok(settings) => {
            tracing::info!(stack = %name, settings = settings.len(), "settings read from the stack");
            let overridden = settings.overridden(|n| env(n));
            if !overridden.is_empty() {
                terminal.note(&format!(
                    "from the environment, not stack {name:?}: {}",
                    overridden.join(", ")
                ));
            }
            Ok(Settings::new(env, Some(settings)))
        }
        Err(e) => {
            // A stack that is not there, or not this product's, is bad input (2); a failed AWS
            // call is 1, as for every command.
            let mut f = Failure::from(e);
            f.message = format!("cannot read the settings of stack {name:?}: {}", f.message);
            Err(f)
        }
    }
}

/// Reads the settings: the stack's with `stack` ([`stack::read`]), then the environment's over
/// them ([`settings_from`]).
pub async fn load(
    sdk: &aws_config::SdkConfig,
    env: Env,
    stack: Option<&str>,
    terminal: &dyn Terminal,
) -> Result<Settings, Failure> {
    let read = match stack {
        None => None,
        Some(name) => Some((name, stack::read(sdk, name).await)),
    };
    settings_from(env, read, terminal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::commands::recorded::Recorded;
    use crate::store::error::StoreError;
    use std::collections::HashMap;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env {
        Box::new(move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn stack() -> StackSettings {
        let outputs: HashMap<String, String> = [
            (
                "TaskQueueUrl",
                "https://sqs.us-east-1.amazonaws.com/1/from-stack",
            ),
            ("SyncFunctionName", "stack-Sync"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let report: HashMap<String, String> = [
            ("TASK_ID", "stack-task"),
            ("SOURCE_BUCKET", "src"),
            ("SOURCE_PREFIX", "data/"),
            ("OSS_CREDENTIALS_SECRET_ID", "arn:secret"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        StackSettings::from_parts("s", &outputs, vec![report])
    }

    #[test]
    fn the_environment_wins_over_the_stack_and_what_it_overrides_is_noted() {
        let t = Recorded::default();
        let s = settings_from(
            env(&[
                ("TASK_ID", "env-task"),
                ("SOURCE_PREFIX", ""),
                ("OSS_ACCESS_KEY_ID", "k"),
            ]),
            Some(("s", Ok(stack()))),
            &t,
        )
        .unwrap();
        assert_eq!(s.get("TASK_ID").as_deref(), Some("env-task"));
        // An empty variable counts as unset; the outputs name the queue and the function.
        assert_eq!(s.get("SOURCE_PREFIX").as_deref(), Some("data/"));
        assert_eq!(s.get("SYNC_FUNCTION_NAME").as_deref(), Some("stack-Sync"));
        // A credential in the environment: none of the stack's is taken.
        assert_eq!(s.get("OSS_CREDENTIALS_SECRET_ID"), None);
        assert_eq!(
            t.notes(),
            [r#"from the environment, not stack "s": OSS_CREDENTIALS_SECRET_ID, TASK_ID"#]
        );
        let c = s.control_config().unwrap();
        assert_eq!(c.task_id, "env-task");
        assert_eq!(
            c.queue_url,
            "https://sqs.us-east-1.amazonaws.com/1/from-stack"
        );
        assert_eq!(c.function_name.as_deref(), Some("stack-Sync"));
        assert!(s.stack().is_some());
    }

    #[test]
    fn nothing_overridden_is_not_noted_and_no_stack_reads_the_environment_alone() {
        let t = Recorded::default();
        let s = settings_from(env(&[]), Some(("s", Ok(stack()))), &t).unwrap();
        assert!(t.notes().is_empty());
        assert_eq!(s.control_config().unwrap().task_id, "stack-task");
        let s = settings_from(env(&[("TASK_ID", "t1")]), None, &t).unwrap();
        assert_eq!(s.get("TASK_ID").as_deref(), Some("t1"));
        assert_eq!(s.get("SOURCE_BUCKET"), None);
        assert!(s.stack().is_none() && t.notes().is_empty());
    }

    #[test]
    fn a_stack_that_cannot_be_read_fails_with_its_errors_code() {
        let t = Recorded::default();
        let e = settings_from(
            env(&[]),
            Some((
                "nope",
                Err(ControlError::Input("no stack named \"nope\"".into())),
            )),
            &t,
        )
        .unwrap_err();
        assert_eq!(e.code(), 2);
        assert_eq!(
            e.stderr(),
            "ctl: cannot read the settings of stack \"nope\": no stack named \"nope\"\n"
        );
        let call = StoreError::Call {
            service: "CloudFormation",
            op: "DescribeStacks",
            source: "timeout".into(),
            transient: true,
        };
        let e = settings_from(env(&[]), Some(("s", Err(call.into()))), &t).unwrap_err();
        assert_eq!(e.code(), 1);
    }

    #[test]
    fn settings_that_make_no_task_fail_with_2_and_a_hint_only_without_a_stack() {
        let t = Recorded::default();
        let s = settings_from(env(&[("TASK_ID", "t1")]), None, &t).unwrap();
        let e = s.control_config().unwrap_err();
        assert_eq!(e.code(), 2);
        let stderr = e.stderr();
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(
            lines[0].starts_with("ctl: invalid configuration: "),
            "{lines:?}"
        );
        assert!(lines[0].contains("TASK_QUEUE_URL"), "{lines:?}");
        assert_eq!(lines[1], format!("ctl: {STACK_HINT}"));
        let empty = StackSettings::from_parts("s", &HashMap::new(), vec![]);
        let s = settings_from(env(&[]), Some(("s", Ok(empty))), &t).unwrap();
        let e = s.control_config().unwrap_err();
        assert_eq!((e.code(), e.hint.as_deref()), (2, None));
    }
}
