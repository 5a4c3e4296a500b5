//! `ctl`'s command line: the commands and their options, turned into the library's requests.

use clap::{Parser, Subcommand};
use s3_oss_sync::control::commands::args::{parse_day_arg, parse_rate, parse_since};
use s3_oss_sync::control::commands::backfill::BackfillRequest;
use s3_oss_sync::control::commands::verify::VerifyRequest;
use time::OffsetDateTime;

#[derive(Parser)]
#[command(
    version,
    about = "s3-oss-sync task control: backfill, retry-failed, redrive, pause, resume, verify, \
             status, sweep-uploads",
    after_help = "Settings: TASK_ID, SOURCE_BUCKET, SOURCE_PREFIX, TASK_QUEUE_URL, \
                  SYNC_FUNCTION_NAME (pause, resume, status), the report function's variables \
                  (RESULTS_BUCKET, DEST_BUCKET, OSS_*) for retry-failed and status, and \
                  DEST_BUCKET, DEST_PREFIX, UPLOAD_SWEEP_AGE_HOURS, RESULTS_BUCKET (the \
                  checkpoints of copies in progress) and OSS_* for sweep-uploads; verify reads \
                  the sync function's and the report function's variables. With --stack NAME, \
                  every variable not set in the environment is read from the deployed stack: its \
                  outputs and its functions' environment.\n\
                  Exit codes: 0 done, 1 an AWS or OSS call failed, 2 bad settings or input, \
                  3 verify found differences, 130 interrupted."
)]
pub struct Cli {
    /// Read the task's settings from this deployed stack: its functions' environment, with its
    /// outputs over that; variables set in the environment win (the OSS credentials as a set).
    #[arg(long, global = true, value_name = "NAME")]
    pub stack: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Send an event for every object already in the source bucket (under the task's prefix),
    /// so the sync function copies what is missing and skips what is there. Resumable.
    Backfill(BackfillArgs),
    /// Re-send the keys a day's report lists as failed (failed_list), once each.
    RetryFailed {
        /// The day (YYYY-MM-DD, in the report's REPORT_TIME_ZONE).
        #[arg(long, value_parser = parse_day_arg)]
        day: time::Date,
        /// List the keys without sending anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move the dead-letter queue's messages back to the task queue.
    Redrive {
        /// Move at most this many.
        #[arg(long)]
        max: Option<u64>,
    },
    /// Disable the sync function's event source mapping: messages wait in the queue.
    Pause {
        /// Wait at most this long for the mapping to settle.
        #[arg(long, default_value_t = 120)]
        wait_seconds: u64,
    },
    /// Enable the sync function's event source mapping again.
    Resume {
        /// Wait at most this long for the mapping to settle.
        #[arg(long, default_value_t = 120)]
        wait_seconds: u64,
    },
    /// Compare the source and destination listings of the task's prefix key by key (HEADs only
    /// for keys the listings cannot settle), write the verification report to the report area,
    /// and with --repair send events for what differs.
    Verify(VerifyArgs),
    /// Queue depths, oldest message age, delivery state, last complete report day, today's counts,
    /// copies in progress.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Leave out the oldest message's age, the one part CloudWatch answers (a local stack
        /// does not serve CloudWatch).
        #[arg(long)]
        no_cloudwatch: bool,
    },
    /// Abort the multipart uploads under the task's DEST_PREFIX that were initiated longer ago
    /// than --older-than (uploads a killed or timed-out sync left open, whose parts OSS bills),
    /// except those of copies in progress whose checkpoints were written within --older-than.
    SweepUploads {
        /// Age in hours, 1 to 720 [default: UPLOAD_SWEEP_AGE_HOURS, or 24].
        #[arg(long, value_name = "HOURS", value_parser = clap::value_parser!(u64).range(1..=720))]
        older_than: Option<u64>,
        /// List what would be aborted; abort nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `ctl backfill`'s options.
#[derive(clap::Args)]
pub struct BackfillArgs {
    /// Only keys under this prefix (inside the task's SOURCE_PREFIX).
    #[arg(long)]
    prefix: Option<String>,
    /// Only objects modified at or after this instant (RFC 3339, or a date: its midnight UTC).
    #[arg(long, value_parser = parse_since)]
    since: Option<OffsetDateTime>,
    /// At most this many events per second.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Read the objects from an S3 Inventory (CSV) manifest, s3://bucket/key/manifest.json,
    /// instead of listing the bucket.
    #[arg(long)]
    inventory: Option<String>,
    /// The checkpoint file [default: backfill-TASK_ID.checkpoint.json].
    #[arg(long)]
    checkpoint: Option<String>,
    /// Start over even if an unfinished backfill is checkpointed.
    #[arg(long)]
    restart: bool,
    /// Batches of 10 in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    /// Hold sending while more than this many messages wait in the task queue, so live
    /// events are not queued behind the backfill.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_waiting: Option<u64>,
}

impl From<BackfillArgs> for BackfillRequest {
    fn from(a: BackfillArgs) -> Self {
        Self {
            prefix: a.prefix,
            since: a.since,
            rate: a.rate,
            inventory: a.inventory,
            checkpoint: a.checkpoint,
            restart: a.restart,
            parallel: a.parallel.into(),
            max_waiting: a.max_waiting,
        }
    }
}

/// `ctl verify`'s options.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Send events for the keys missing or differing in OSS (and, with SYNC_DELETES, for the keys
    /// only in OSS) through the task queue, checkpointed and rate-limited like a backfill.
    #[arg(long)]
    repair: bool,
    /// Only keys under this prefix (inside the task's SOURCE_PREFIX).
    #[arg(long)]
    prefix: Option<String>,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Read the source from an S3 Inventory (CSV) manifest, s3://bucket/key/manifest.json,
    /// instead of listing the bucket (one listing, in the inventory's key order).
    #[arg(long)]
    inventory: Option<String>,
    /// Key ranges listed at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    /// Seconds the OSS copy must be later than S3's LastModified for the listing alone to
    /// settle a key (the clocks of the two clouds may differ by this much).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=3600))]
    clock_tolerance: u16,
    /// Repair: at most this many events per second.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Repair: hold sending while more than this many messages wait in the task queue.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_waiting: Option<u64>,
    /// Repair: the checkpoint file [default: verify-TASK_ID.checkpoint.json].
    #[arg(long)]
    checkpoint: Option<String>,
    /// Repair: verify again even if an unfinished repair is checkpointed.
    #[arg(long)]
    restart: bool,
}

impl From<VerifyArgs> for VerifyRequest {
    fn from(a: VerifyArgs) -> Self {
        Self {
            repair: a.repair,
            prefix: a.prefix,
            json: a.json,
            inventory: a.inventory,
            parallel: a.parallel.into(),
            clock_tolerance_s: a.clock_tolerance.into(),
            rate: a.rate,
            max_waiting: a.max_waiting,
            checkpoint: a.checkpoint,
            restart: a.restart,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ctl").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn backfill_options_become_the_request_with_their_defaults() {
        let cli = parse(&[
            "--stack",
            "s",
            "backfill",
            "--rate",
            "5/s",
            "--since",
            "2026-11-01",
        ])
        .unwrap();
        assert_eq!(cli.stack.as_deref(), Some("s"));
        let Command::Backfill(a) = cli.command else {
            panic!()
        };
        let r = BackfillRequest::from(a);
        assert_eq!(r.rate, Some(5.0));
        assert_eq!(r.since, Some(time::macros::datetime!(2026-11-01 00:00 UTC)));
        assert_eq!((r.parallel, r.restart, r.max_waiting), (8, false, None));
        assert!(parse(&["backfill", "--parallel", "0"]).is_err());
        assert!(parse(&["backfill", "--rate", "0"]).is_err());
    }

    #[test]
    fn verify_options_become_the_request_with_their_defaults() {
        let Command::Verify(a) = parse(&["verify", "--repair", "--clock-tolerance", "0"])
            .unwrap()
            .command
        else {
            panic!()
        };
        let r = VerifyRequest::from(a);
        assert!(r.repair && !r.json && !r.restart);
        assert_eq!((r.parallel, r.clock_tolerance_s), (8, 0));
        let Command::Verify(a) = parse(&["verify"]).unwrap().command else {
            panic!()
        };
        assert_eq!(VerifyRequest::from(a).clock_tolerance_s, 1);
    }

    #[test]
    fn a_bad_day_is_refused_by_the_command_line() {
        let Err(e) = parse(&["retry-failed", "--day", "2026-13-01"]) else {
            panic!("accepted")
        };
        assert!(e.to_string().contains("is not YYYY-MM-DD"), "{e}");
        assert!(parse(&["retry-failed", "--day", "2026-11-30", "--dry-run"]).is_ok());
    }
}
