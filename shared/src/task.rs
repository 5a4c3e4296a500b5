//! Task binding: which events belong to the task (one source bucket, an optional prefix) and
//! where their objects land in the destination.

/// One task's source and destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskBinding {
    /// The only S3 bucket whose events the task acts on.
    pub source_bucket: String,
    /// Only keys starting with this are acted on (empty: all).
    pub source_prefix: String,
    /// The OSS bucket written to.
    pub dest_bucket: String,
    /// Prepended to every destination key.
    pub dest_prefix: String,
    /// Whether the source prefix is removed from the key before the destination prefix is added.
    pub strip_source_prefix: bool,
    /// The report area of the destination bucket (`<REPORT_PREFIX>/`, see
    /// [`crate::config::report_area`]): an event whose destination key falls in it is filtered,
    /// never copied, so no synced object can stand among the report's files. `None`: no area
    /// to keep clear (the configuration refuses a `DEST_PREFIX` overlapping it, so only an empty
    /// `DEST_PREFIX` can reach it).
    pub report_area: Option<String>,
}

/// Why an event is outside the task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Filtered {
    /// Another bucket.
    #[error("bucket {bucket:?} is not the task's source bucket {expected:?}")]
    OtherBucket {
        /// The event's bucket.
        bucket: String,
        /// The task's.
        expected: String,
    },
    /// A key outside the task's prefix.
    #[error("key is outside the task's source prefix {prefix:?}")]
    OutsidePrefix {
        /// The task's prefix.
        prefix: String,
    },
    /// The key is the prefix itself and stripping it would leave nothing.
    #[error(
        "key equals the source prefix {prefix:?}; with the prefix stripped it names no object"
    )]
    EmptyAfterStrip {
        /// The task's prefix.
        prefix: String,
    },
    /// The destination key is in the report area.
    #[error("the destination key {key:?} is in the report area {area:?} (REPORT_PREFIX), which only the report writes; the object is not copied (rename it, or set DEST_PREFIX)")]
    ReportArea {
        /// The destination key.
        key: String,
        /// The report area.
        area: String,
    },
}

impl Filtered {
    /// A short code for records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OtherBucket { .. } => "OtherBucket",
            Self::OutsidePrefix { .. } => "OutsidePrefix",
            Self::EmptyAfterStrip { .. } => "EmptyAfterStrip",
            Self::ReportArea { .. } => "ReportArea",
        }
    }
}

impl TaskBinding {
    /// The destination key for an event's bucket and key, or why the event is not the task's.
    pub fn dest_key(&self, bucket: &str, key: &str) -> Result<String, Filtered> {
        if bucket != self.source_bucket {
            return Err(Filtered::OtherBucket {
                bucket: bucket.to_owned(),
                expected: self.source_bucket.clone(),
            });
        }
        let rest = key
            .strip_prefix(self.source_prefix.as_str())
            .ok_or_else(|| Filtered::OutsidePrefix {
                prefix: self.source_prefix.clone(),
            })?;
        let tail = if self.strip_source_prefix { rest } else { key };
        if tail.is_empty() {
            return Err(Filtered::EmptyAfterStrip {
                prefix: self.source_prefix.clone(),
            });
        }
        let key = format!("{}{}", self.dest_prefix, tail);
        match &self.report_area {
            Some(area) if key.starts_with(area.as_str()) => Err(Filtered::ReportArea {
                key,
                area: area.clone(),
            }),
            _ => Ok(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(prefix: &str, dest: &str, strip: bool) -> TaskBinding {
        TaskBinding {
            source_bucket: "src".into(),
            source_prefix: prefix.into(),
            dest_bucket: "dst".into(),
            dest_prefix: dest.into(),
            strip_source_prefix: strip,
            report_area: Some("reports/".into()),
        }
    }

    #[test]
    fn keys_map_with_and_without_strip() {
        let b = binding("in/", "mirror/", false);
        assert_eq!(
            b.dest_key("src", "in/a b+c.txt").unwrap(),
            "mirror/in/a b+c.txt"
        );
        let b = binding("in/", "mirror/", true);
        assert_eq!(b.dest_key("src", "in/x/y").unwrap(), "mirror/x/y");
        let b = binding("", "", false);
        assert_eq!(b.dest_key("src", "日本/ü").unwrap(), "日本/ü");
    }

    #[test]
    fn outside_events_say_why() {
        let b = binding("in/", "", true);
        assert_eq!(
            b.dest_key("other", "in/a").unwrap_err().code(),
            "OtherBucket"
        );
        assert_eq!(
            b.dest_key("src", "out/a").unwrap_err().code(),
            "OutsidePrefix"
        );
        assert_eq!(b.dest_key("src", "in").unwrap_err().code(), "OutsidePrefix");
        assert_eq!(
            b.dest_key("src", "in/").unwrap_err().code(),
            "EmptyAfterStrip"
        );
        assert!(b
            .dest_key("other", "in/a")
            .unwrap_err()
            .to_string()
            .contains("\"other\""));
    }

    #[test]
    fn keys_landing_in_the_report_area_are_filtered() {
        let b = binding("", "", false);
        let e = b
            .dest_key("src", "reports/t1/2026-11-26/manifest.json")
            .unwrap_err();
        assert_eq!(e.code(), "ReportArea");
        assert!(e.to_string().contains("REPORT_PREFIX"), "{e}");
        assert_eq!(
            b.dest_key("src", "reports/t1/2026-11-25/total_list/x.csv")
                .unwrap_err()
                .code(),
            "ReportArea"
        );
        // Only the area itself: a neighbour with a longer name is copied.
        assert_eq!(b.dest_key("src", "reports2/a").unwrap(), "reports2/a");
        assert_eq!(b.dest_key("src", "reports").unwrap(), "reports");
        // Stripped into the area is filtered too.
        let b = binding("in/", "", true);
        assert_eq!(
            b.dest_key("src", "in/reports/x").unwrap_err().code(),
            "ReportArea"
        );
    }
}
