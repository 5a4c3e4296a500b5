//! A verification's metrics: one CloudWatch embedded-metric-format line (what the template's
//! alarm on differences watches).

use super::join::Kind;
use super::report::Summary;
use crate::telemetry::{capitalised, emf};
use serde_json::{json, Map, Value};

/// One EMF line for a verification: `VerifyDifferences` (what the template's alarm watches),
/// `VerifyKeys` (keys compared), one count per kind that is not equal (`VerifyMissing`,
/// `VerifyExtra`, `VerifySizeDiffers`, `VerifyMayDiffer`), `VerifyHeads` (HEADs made) and
/// `VerifyComplete` (1, or 0 when it stopped before the end of the listings).
pub fn verify_metrics_line(task: &str, summary: &Summary, now_ms: i64) -> String {
    let c = &summary.counts;
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let mut doc = Map::new();
    doc.insert("Task".into(), json!(task));
    let mut metrics = Vec::new();
    let mut put = |name: String, value: u64| {
        metrics.push(json!({"Name": name, "Unit": "Count"}));
        doc.insert(name, json!(value));
    };
    put("VerifyDifferences".into(), summary.differences);
    let keys: u64 = Kind::ALL.iter().map(|k| n(&c["kinds"][k.as_str()])).sum();
    put("VerifyKeys".into(), keys);
    for k in Kind::ALL.into_iter().filter(|k| *k != Kind::Equal) {
        put(
            format!("Verify{}", capitalised(k.as_str())),
            n(&c["kinds"][k.as_str()]),
        );
    }
    put(
        "VerifyHeads".into(),
        n(&c["heads"]["dest"]) + n(&c["heads"]["source"]),
    );
    put("VerifyComplete".into(), u64::from(summary.complete));
    emf(doc, metrics, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_metrics_count_differences_by_kind() {
        let summary = Summary {
            format_version: 1,
            task: "t".into(),
            started_at: String::new(),
            finished_at: String::new(),
            complete: false,
            source: "list".into(),
            source_bucket: "s".into(),
            source_prefix: String::new(),
            dest_bucket: "d".into(),
            dest_prefix: String::new(),
            clock_tolerance_s: 1,
            ranges: 1,
            differences: 3,
            counts: json!({"kinds": {"equal": 7, "missing": 2, "extra": 1, "size_differs": 0, "may_differ": 0},
                           "heads": {"dest": 4, "source": 1}}),
            differences_list: Default::default(),
        };
        let v: Value = serde_json::from_str(&verify_metrics_line("t", &summary, 9)).unwrap();
        assert_eq!(v["VerifyDifferences"], 3);
        assert_eq!(v["VerifyKeys"], 10);
        assert_eq!(v["VerifyMissing"], 2);
        assert_eq!(v["VerifySizeDiffers"], 0);
        assert_eq!(v["VerifyMayDiffer"], 0);
        assert_eq!(v["VerifyHeads"], 5);
        assert_eq!(v["VerifyComplete"], 0);
        let names: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"VerifyDifferences") && names.contains(&"VerifyComplete"));
    }
}
