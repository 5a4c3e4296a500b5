//! `ctl --stack NAME`: a deployed task's settings, read from its CloudFormation stack instead of
//! the environment.
//!
//! The stack's outputs name the task queue and both functions (`template.yaml`: `TaskQueueUrl`,
//! `SyncFunctionName`, `ReportFunctionName`); the functions' environment holds every setting the
//! template gave them. The report function's environment has the task's settings (the binding,
//! the OSS endpoint and credentials' secret, the results and report locations), the sync
//! function's adds its own. ctl's own environment wins over what the stack says, so a setting can
//! be tried without a deploy.

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

/// A deployed task's settings, by environment variable name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StackSettings {
    /// The stack's name.
    pub stack: String,
    values: HashMap<String, String>,
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
}

/// A variable lookup: `env` first (ctl's own environment), then the stack's settings, if any.
pub fn lookup<'a>(
    env: impl Fn(&str) -> Option<String> + 'a,
    stack: Option<&'a StackSettings>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| env(name).or_else(|| stack.and_then(|s| s.get(name)))
}

/// Reads a stack's outputs, then the environment of the functions they name.
pub async fn read(sdk: &aws_config::SdkConfig, stack: &str) -> Result<StackSettings, ControlError> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let described = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| ControlError::aws("CloudFormation", "DescribeStacks", &e))?;
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
            .map_err(|e| ControlError::aws("Lambda", "GetFunctionConfiguration", &e))?;
        environments.push(
            conf.environment()
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
        let sync = map(&[("TASK_ID", "t1"), ("SYNC_DELETES", "true")]);
        let s = StackSettings::from_parts("stack", &outputs, vec![report, sync]);
        assert_eq!(
            s.get("TASK_QUEUE_URL").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/1/q")
        );
        assert_eq!(
            s.get("SYNC_FUNCTION_NAME").as_deref(),
            Some("stack-SyncFunction-ABC")
        );
        assert_eq!(s.get("DEST_PREFIX").as_deref(), Some("mirror/"));
        assert_eq!(s.get("SYNC_DELETES").as_deref(), Some("true"));
        // ctl keeps its own log filter; outputs that are not settings are not variables.
        assert_eq!(s.get("RUST_LOG"), None);
        assert_eq!(s.get("DashboardName"), None);
        assert_eq!(s.len(), 5);

        let env = |name: &str| (name == "TASK_ID").then(|| "from-env".to_owned());
        let get = lookup(env, Some(&s));
        assert_eq!(get("TASK_ID").as_deref(), Some("from-env"));
        assert_eq!(get("DEST_PREFIX").as_deref(), Some("mirror/"));
        assert_eq!(get("NOT_SET"), None);
        let get = lookup(env, None);
        assert_eq!(get("DEST_PREFIX"), None);
    }
}
