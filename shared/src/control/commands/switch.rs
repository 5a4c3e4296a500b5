//! `ctl pause` and `ctl resume`: the sync function's event source mapping on the task queue
//! (named by `SYNC_FUNCTION_NAME`) disabled or enabled, waited for until it settles; one still
//! changing after the wait is a failed call (exit 1), its state printed first.

use super::failure::Failure;
use crate::aws::lambda_mapping::EventSourceMapping;
use crate::config::ControlConfig;
use serde_json::{json, Value};
use std::time::Duration;

/// Runs `ctl pause` (`enabled` false) or `ctl resume` (true), waiting at most `wait`.
pub async fn switch(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    enabled: bool,
    wait: Duration,
) -> Result<Value, Failure> {
    let function = config.function_name.as_deref().ok_or_else(|| {
        Failure::config("SYNC_FUNCTION_NAME is not set (the sync function's name or ARN)")
    })?;
    let mapping = EventSourceMapping::for_queue(sdk, function, &config.queue_url).await?;
    let state = mapping.set_enabled(enabled, wait).await?;
    settled(mapping.uuid(), &state, enabled, wait)
}

/// The summary of a switch that ended in `state`: a failure (exit 1) unless the mapping settled.
pub fn settled(uuid: &str, state: &str, enabled: bool, wait: Duration) -> Result<Value, Failure> {
    let target = if enabled { "Enabled" } else { "Disabled" };
    let summary = json!({"mapping": uuid, "state": state});
    if state != target {
        return Err(Failure::call(format!(
            "the mapping is {state}, not yet {target}, after {} s",
            wait.as_secs()
        ))
        .with_summary(summary));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::commands::recorded::task;

    #[test]
    fn a_settled_mapping_is_done_and_one_still_changing_is_a_failed_call() {
        let w = Duration::from_secs(120);
        assert_eq!(
            settled("u1", "Disabled", false, w).unwrap(),
            json!({"mapping": "u1", "state": "Disabled"})
        );
        assert_eq!(
            settled("u1", "Enabled", true, w).unwrap()["state"],
            "Enabled"
        );
        let f = settled("u1", "Disabling", false, w).unwrap_err();
        assert_eq!(f.code(), 1);
        assert_eq!(
            f.message,
            "the mapping is Disabling, not yet Disabled, after 120 s"
        );
        assert_eq!(f.stdout(), "{\"mapping\":\"u1\",\"state\":\"Disabling\"}\n");
    }

    #[tokio::test]
    async fn without_the_functions_name_nothing_is_called_and_it_is_bad_input() {
        let sdk = aws_config::SdkConfig::builder().build();
        let f = switch(&task(), &sdk, false, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(f.code(), 2);
        assert_eq!(
            f.message,
            "invalid configuration: SYNC_FUNCTION_NAME is not set (the sync function's name or ARN)"
        );
    }
}
