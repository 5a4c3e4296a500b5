//! `ctl sweep-uploads`: the task's stale multipart uploads swept ([`sweep_task_uploads`]) and the
//! summary shown as text or JSON; exit 1 when an abort failed or the sweep was held (then why,
//! on stderr).

use super::failure::Failure;
use super::settings::Settings;
use super::Output;
use crate::config::ControlConfig;
use crate::control::sweep::{sweep_task_uploads, SweepRequest};
use crate::sweep::SweepSummary;

/// Runs `ctl sweep-uploads`: JSON with `json`.
pub async fn sweep_uploads(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    settings: &Settings,
    request: SweepRequest,
    json: bool,
) -> Result<Output, Failure> {
    let summary = sweep_task_uploads(config, sdk, |n| settings.get(n), request).await?;
    Ok(sweep_output(&summary, json))
}

/// What `ctl sweep-uploads` prints for a sweep, and its exit code.
pub fn sweep_output(summary: &SweepSummary, json: bool) -> Output {
    let stdout = if json {
        format!("{}\n", serde_json::to_string(summary).unwrap_or_default())
    } else {
        summary.render()
    };
    let notes = summary
        .held
        .iter()
        .map(|why| format!("nothing aborted: {why}"))
        .collect();
    let clean = summary.failed.is_empty() && summary.held.is_none();
    Output {
        stdout,
        notes,
        code: if clean { 0 } else { 1 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::AbortFailure;

    #[test]
    fn a_held_sweep_says_why_and_a_failed_abort_exits_1() {
        let mut s = SweepSummary {
            prefix: "mirror/".into(),
            older_than_secs: 24 * 3600,
            listed: 3,
            ..SweepSummary::default()
        };
        let out = sweep_output(&s, false);
        assert_eq!((out.stdout.clone(), out.code), (s.render(), 0));
        assert!(out.notes.is_empty());
        s.held = Some("the checkpoints could not be read".into());
        let out = sweep_output(&s, true);
        assert_eq!(out.code, 1);
        assert_eq!(
            out.stderr(),
            "ctl: nothing aborted: the checkpoints could not be read\n"
        );
        let back: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(back["prefix"], "mirror/");
        s.held = None;
        s.failed.push(AbortFailure {
            key: "mirror/a".into(),
            upload_id: "u".into(),
            code: "InternalError".into(),
            transient: true,
            message: "503".into(),
        });
        let out = sweep_output(&s, false);
        assert_eq!((out.code, out.notes.len()), (1, 0));
    }
}
