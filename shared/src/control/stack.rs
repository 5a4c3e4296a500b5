//! `ctl --stack NAME`: a deployed task's settings, read from its CloudFormation stack instead of
//! the environment.
//!
//! The stack's outputs name the task queue and both functions (`template.yaml`: `TaskQueueUrl`,
//! `SyncFunctionName`, `ReportFunctionName`); the functions' environment holds every setting the
//! template gave them. The report function's environment has the task's settings (the binding,
//! the OSS endpoint and credentials' secret, the results and report locations), the sync
//! function's adds its own. ctl's own environment wins over what the stack says, so a setting can
//! be tried without a deploy: variable by variable, except the OSS credentials, which go together
//! (a key pair in the environment replaces the stack's secret rather than standing beside it).
//! ctl names every variable the environment overrode.

use super::ControlError;
use std::collections::HashMap;

/// The stack outputs ctl reads, and the variables they stand for.
pub const OUTPUTS: [(&str, &str); 2] = [
    ("TaskQueueUrl", "TASK_QUEUE_URL"),
    ("SyncFunctionName", "SYNC_FUNCTION_NAME"),
];

/// The outputs naming the functions whose environment is read, in the order they are merged
/// (later wins).
pub const FUNCTION_OUTPUTS: [&str; 2] = ["ReportFunctionName", "SyncFunctionName"];

/// Variables a function's environment may hold that are not the task's settings: ctl keeps its
/// own log filter.
const NOT_SETTINGS: [&str; 1] = ["RUST_LOG"];

/// The OSS credential variables: one set, taken whole from the environment or from the stack.
pub const CREDENTIALS: [&str; 4] = [
    "OSS_ACCESS_KEY_ID",
    "OSS_ACCESS_KEY_SECRET",
    "OSS_SECURITY_TOKEN",
    "OSS_CREDENTIALS_SECRET_ID",
];

/// A deployed task's settings, by environment variable name. `Debug` shows the names only (a
/// stack may hold a key pair).
#[derive(Default, Clone, PartialEq, Eq)]
pub struct StackSettings {
    /// The stack's name.
    pub stack: String,
    values: HashMap<String, String>,
}

impl std::fmt::Debug for StackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.values.keys().collect();
        names.sort();
        f.debug_struct("StackSettings")
            .field("stack", &self.stack)
            .field("variables", &names)
            .finish()
    }
}

impl StackSettings {
    /// Merges what a stack says: each function's environment (in [`FUNCTION_OUTPUTS`]' order),
    /// then the outputs that name the task's parts ([`OUTPUTS`]).
    pub fn from_parts(
        stack: &str,
        outputs: &HashMap<String, String>,
        function_environments: Vec<HashMap<String, String>>,
    ) -> Self {
        let mut values = HashMap::new();
        for env in function_environments {
            values.extend(
                env.into_iter()
                    .filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str())),
            );
        }
        for (output, variable) in OUTPUTS {
            if let Some(v) = outputs.get(output).filter(|v| !v.is_empty()) {
                values.insert(variable.to_owned(), v.clone());
            }
        }
        Self {
            stack: stack.to_owned(),
            values,
        }
    }

    /// The stack's value of a variable.
    pub fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    /// How many settings the stack gave.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the stack gave no setting.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The variables the stack gives that `env` overrides (sorted): set there and not empty, or
    /// left out because the environment gives the OSS credentials.
    pub fn overridden(&self, env: impl Fn(&str) -> Option<String>) -> Vec<String> {
        let env = |n: &str| env(n).filter(|v| !v.is_empty());
        let own_credentials = CREDENTIALS.iter().any(|n| env(n).is_some());
        let mut names: Vec<String> = self
            .values
            .keys()
            .filter(|n| env(n).is_some() || (own_credentials && CREDENTIALS.contains(&n.as_str())))
            .cloned()
            .collect();
        names.sort();
        names
    }
}

/// A variable lookup: `env` first (ctl's own environment; an empty value counts as unset), then
/// the stack's settings, if any. When the environment gives any OSS credential variable, none of
/// the stack's is taken.
pub fn lookup<'a>(
    env: impl Fn(&str) -> Option<String> + 'a,
    stack: Option<&'a StackSettings>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        let env = |n: &str| env(n).filter(|v| !v.is_empty());
        if let Some(v) = env(name) {
            return Some(v);
        }
        if CREDENTIALS.contains(&name) && CREDENTIALS.iter().any(|n| env(n).is_some()) {
            return None;
        }
        stack.and_then(|s| s.get(name))
    }
}

/// Reads a stack's outputs, then the environment of the functions they name.
pub async fn read(sdk: &aws_config::SdkConfig, stack: &str) -> Result<StackSettings, ControlError> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let described = match cfn.describe_stacks().stack_name(stack).send().await {
        Ok(d) => d,
        // CloudFormation's answer for a name it does not know: bad input, not a failed call.
        Err(e)
            if e.as_service_error()
                .and_then(|s| s.meta().message())
                .is_some_and(|m| m.contains("does not exist")) =>
        {
            return Err(ControlError::Input(format!("no stack named {stack:?}")));
        }
        Err(e) => return Err(ControlError::aws("CloudFormation", "DescribeStacks", e)),
    };
    let Some(found) = described.stacks().first() else {
        return Err(ControlError::Input(format!("no stack named {stack:?}")));
    };
    let outputs: HashMap<String, String> = found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect();
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let mut environments = Vec::new();
    for output in FUNCTION_OUTPUTS {
        let Some(function) = outputs.get(output) else {
            return Err(ControlError::Input(format!(
                "stack {stack:?} has no output {output}: is it an s3-oss-sync stack (template.yaml)?"
            )));
        };
        let conf = lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(|e| ControlError::aws("Lambda", "GetFunctionConfiguration", e))?;
        let environment = conf.environment();
        if let Some(error) = environment.and_then(|e| e.error()) {
            // Lambda could not decrypt the variables for this caller (a customer managed key).
            return Err(ControlError::Input(format!(
                "the environment of function {function} cannot be read: {}: {} (kms:Decrypt on \
                 the function's key is needed)",
                error.error_code().unwrap_or("error"),
                error.message().unwrap_or_default()
            )));
        }
        environments.push(
            environment
                .and_then(|e| e.variables())
                .cloned()
                .unwrap_or_default(),
        );
    }
    Ok(StackSettings::from_parts(stack, &outputs, environments))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_environment_wins_then_outputs_then_the_sync_function_then_the_report_function() {
        let outputs = map(&[
            ("TaskQueueUrl", "https://sqs.eu-west-1.amazonaws.com/1/q"),
            ("SyncFunctionName", "stack-SyncFunction-ABC"),
            ("ReportFunctionName", "stack-ReportFunction-DEF"),
            ("DashboardName", "d"),
        ]);
        let report = map(&[
            ("TASK_ID", "t1"),
            ("TASK_QUEUE_URL", "stale"),
            ("DEST_PREFIX", "mirror/"),
            ("RUST_LOG", "debug"),
        ]);
        let sync = map(&[
            ("TASK_ID", "t1"),
            ("SYNC_DELETES", "true"),
            ("DEST_PREFIX", "from-sync/"),
        ]);
        let s = StackSettings::from_parts("stack", &outputs, vec![report, sync]);
        assert_eq!(
            s.get("TASK_QUEUE_URL").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/1/q")
        );
        assert_eq!(
            s.get("SYNC_FUNCTION_NAME").as_deref(),
            Some("stack-SyncFunction-ABC")
        );
        // The sync function's environment is merged after the report function's.
        assert_eq!(s.get("DEST_PREFIX").as_deref(), Some("from-sync/"));
        assert_eq!(s.get("SYNC_DELETES").as_deref(), Some("true"));
        // ctl keeps its own log filter; outputs that are not settings are not variables.
        assert_eq!(s.get("RUST_LOG"), None);
        assert_eq!(s.get("DashboardName"), None);
        assert_eq!(s.len(), 5);

        let env = |name: &str| match name {
            "TASK_ID" => Some("from-env".to_owned()),
            "DEST_PREFIX" => Some(String::new()),
            _ => None,
        };
        let get = lookup(env, Some(&s));
        assert_eq!(get("TASK_ID").as_deref(), Some("from-env"));
        // An empty variable counts as unset.
        assert_eq!(get("DEST_PREFIX").as_deref(), Some("from-sync/"));
        assert_eq!(get("NOT_SET"), None);
        assert_eq!(s.overridden(env), ["TASK_ID"]);
        let get = lookup(env, None);
        assert_eq!(get("SYNC_DELETES"), None);
    }

    #[test]
    fn the_oss_credentials_come_whole_from_one_side_and_debug_shows_no_value() {
        let report = map(&[
            ("OSS_CREDENTIALS_SECRET_ID", "arn:secret"),
            ("OSS_ACCESS_KEY_SECRET", "stack-secret-value"),
            ("TASK_ID", "t1"),
        ]);
        let s = StackSettings::from_parts("stack", &HashMap::new(), vec![report]);
        let none = |_: &str| None;
        assert_eq!(
            lookup(none, Some(&s))("OSS_CREDENTIALS_SECRET_ID").as_deref(),
            Some("arn:secret")
        );
        // A key pair in the environment: the stack's secret is not taken beside it.
        let pair = |name: &str| {
            matches!(name, "OSS_ACCESS_KEY_ID" | "OSS_ACCESS_KEY_SECRET").then(|| "k".to_owned())
        };
        let get = lookup(pair, Some(&s));
        assert_eq!(get("OSS_CREDENTIALS_SECRET_ID"), None);
        assert_eq!(get("OSS_ACCESS_KEY_SECRET").as_deref(), Some("k"));
        assert_eq!(get("TASK_ID").as_deref(), Some("t1"));
        assert_eq!(
            s.overridden(pair),
            ["OSS_ACCESS_KEY_SECRET", "OSS_CREDENTIALS_SECRET_ID"]
        );
        let debug = format!("{s:?}");
        assert!(!debug.contains("stack-secret-value") && debug.contains("OSS_ACCESS_KEY_SECRET"));
    }
}
