//! `ctl status`: the task's state gathered ([`gather`]) and shown as text or JSON; exit 1 when a
//! part could not be read.

use super::settings::Settings;
use super::Output;
use crate::config::ControlConfig;
use crate::control::status::{gather, Status};

/// Runs `ctl status`: CloudWatch asked unless `cloudwatch` is false; JSON with `json`.
pub async fn status(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    settings: &Settings,
    cloudwatch: bool,
    json: bool,
) -> Output {
    let st = gather(config, sdk, |n| settings.get(n), cloudwatch).await;
    status_output(&st, json)
}

/// What `ctl status` prints for a status, and its exit code.
pub fn status_output(st: &Status, json: bool) -> Output {
    let stdout = if json {
        format!("{}\n", serde_json::to_string(st).unwrap_or_default())
    } else {
        st.render()
    };
    Output {
        stdout,
        notes: Vec::new(),
        code: if st.problems.is_empty() { 0 } else { 1 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_with_problems_exits_1_and_json_is_one_line() {
        let mut st = Status {
            task: "t1".into(),
            queue_url: "http://q/t1".into(),
            ..Status::default()
        };
        let out = status_output(&st, false);
        assert_eq!((out.stdout.as_str(), out.code), (st.render().as_str(), 0));
        st.problem("queue", "access denied");
        let out = status_output(&st, true);
        assert_eq!(out.code, 1);
        assert!(out.stdout.ends_with("}\n") && out.stdout.lines().count() == 1);
        let back: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(back["problems"][0], "queue: access denied");
        assert!(out.notes.is_empty());
    }
}
