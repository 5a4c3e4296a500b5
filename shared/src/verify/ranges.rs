//! Key ranges for listing a large bucket several ranges at once. A range is given by relative
//! keys (what follows the listing's prefix, the same on both sides, since the task's key mapping
//! only replaces the prefix): every key after `after` up to and including `upto`. Any set of
//! boundaries partitions the key space exactly; probing the source listing only makes the
//! ranges useful, by placing boundaries where keys are.
//!
//! Probing: first the longest prefix every key shares is found by bisection over the first key's
//! characters (all keys share `p` when no key lies after `p` followed by the last Unicode
//! character: a one-key listing each). Then a ListObjectsV2 of one key after `base + c` for each
//! printable ASCII `c` gives the first key after each probe. Distinct first keys are where ranges
//! can start. When every probe finds the same key (the keys' next characters are not printable
//! ASCII, say), the probe goes one character deeper, up to [`MAX_DEPTH`] rounds.

/// How many rounds of probes are made below the shared prefix.
pub const MAX_DEPTH: usize = 3;

/// The first `n` characters of a key.
pub fn char_prefix(key: &str, n: usize) -> String {
    key.chars().take(n).collect()
}

/// A key after every key that starts with `prefix`: `prefix` followed by the last Unicode
/// character (the greatest UTF-8 sequence, so every key under `prefix` sorts before it, but for
/// keys holding U+10FFFF itself, which only make the shared prefix found shorter).
pub fn beyond(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// One range of relative keys: those after `after` (all when `None`) up to and including `upto`
/// (all the rest when `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    /// Keys strictly after this one.
    pub after: Option<String>,
    /// Keys up to and including this one.
    pub upto: Option<String>,
}

impl KeyRange {
    /// Whether a relative key lies beyond the range's end.
    pub fn past_end(&self, rel: &str) -> bool {
        self.upto
            .as_deref()
            .is_some_and(|u| rel.as_bytes() > u.as_bytes())
    }
}

/// The probes under `base`: `base` followed by each printable ASCII character, in order.
pub fn probes(base: &str) -> Vec<String> {
    (0x20u8..=0x7e)
        .map(|b| format!("{base}{}", b as char))
        .collect()
}

/// What a round of probes under `base` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probed {
    /// Boundaries to split at (relative keys, ascending).
    Split(Vec<String>),
    /// Every probe found the same key: probe again under this longer base.
    Deeper(String),
    /// Nothing to split.
    Whole,
}

/// Decides from probes (each with the first relative key after it, in probe order) where `n`
/// ranges should start. A boundary is the last probe that found a key, so the range after it
/// starts at that key.
pub fn decide(base: &str, found: &[(String, Option<String>)], n: usize) -> Probed {
    let mut starts: Vec<&str> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    for (probe, key) in found {
        let Some(key) = key.as_deref().filter(|k| k.starts_with(base)) else {
            continue;
        };
        if keys.last() == Some(&key) {
            if let Some(last) = starts.last_mut() {
                *last = probe;
            }
        } else {
            keys.push(key);
            starts.push(probe);
        }
    }
    match keys.len() {
        0 => Probed::Whole,
        1 => match keys[0][base.len()..].chars().next() {
            Some(c) => Probed::Deeper(format!("{base}{c}")),
            None => Probed::Whole,
        },
        _ => {
            // The first key's range starts at the beginning anyway.
            let candidates = &starts[1..];
            let want = n.saturating_sub(1).min(candidates.len());
            if want == 0 {
                return Probed::Whole;
            }
            let picked = (1..=want)
                .map(|i| candidates[i * candidates.len() / (want + 1)].to_owned())
                .collect::<Vec<_>>();
            let mut picked = picked;
            picked.dedup();
            Probed::Split(picked)
        }
    }
}

/// The ranges between boundaries (ascending): `n + 1` ranges for `n` boundaries.
pub fn ranges(boundaries: &[String]) -> Vec<KeyRange> {
    let mut out = Vec::with_capacity(boundaries.len() + 1);
    let mut after: Option<String> = None;
    for b in boundaries {
        out.push(KeyRange {
            after: after.take(),
            upto: Some(b.clone()),
        });
        after = Some(b.clone());
    }
    out.push(KeyRange { after, upto: None });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What probing a sorted key set finds.
    fn probe(keys: &[&str], base: &str) -> Vec<(String, Option<String>)> {
        probes(base)
            .into_iter()
            .map(|p| {
                let first = keys.iter().find(|k| k.as_bytes() > p.as_bytes());
                (p, first.map(|k| k.to_string()))
            })
            .collect()
    }

    fn plan(keys: &[&str], n: usize) -> Vec<KeyRange> {
        let first_after = |p: &str| {
            keys.iter()
                .find(|k| k.as_bytes() > p.as_bytes())
                .map(|k| k.to_string())
        };
        let Some(first) = keys.first() else {
            return ranges(&[]);
        };
        let mut shared = 0;
        while shared < first.chars().count()
            && first_after(&beyond(&char_prefix(first, shared + 1))).is_none()
        {
            shared += 1;
        }
        let mut base = char_prefix(first, shared);
        loop {
            match decide(&base, &probe(keys, &base), n) {
                Probed::Split(b) => return ranges(&b),
                Probed::Deeper(b) => base = b,
                Probed::Whole => return ranges(&[]),
            }
        }
    }

    #[test]
    fn flat_keys_are_split_one_character_deeper() {
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i:05}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let r = plan(&refs, 4);
        assert!(r.len() >= 3, "{r:?}");
        // Every key falls in exactly one range.
        for k in &refs {
            let n = r
                .iter()
                .filter(|g| {
                    g.after
                        .as_deref()
                        .is_none_or(|a| k.as_bytes() > a.as_bytes())
                        && !g.past_end(k)
                })
                .count();
            assert_eq!(n, 1, "{k}");
        }
    }

    #[test]
    fn keys_under_a_long_shared_prefix_are_split_below_it() {
        let keys: Vec<String> = (0..100_000)
            .step_by(7)
            .map(|i| format!("obj/{i:06}"))
            .collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let r = plan(&refs, 8);
        assert!(r.len() >= 7, "{r:?}");
        assert!(r[1].after.as_deref().unwrap().starts_with("obj/0"), "{r:?}");
    }

    #[test]
    fn spread_keys_split_at_the_first_character_and_nothing_splits_nothing() {
        let r = plan(&["a1", "b1", "c1", "d1", "e1", "f1", "g1", "h1"], 4);
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!(r[0].after, None);
        assert_eq!(r[3].upto, None);
        assert_eq!(plan(&[], 8), vec![KeyRange::default()]);
        assert_eq!(plan(&["only"], 8), vec![KeyRange::default()]);
        assert_eq!(plan(&["a", "b"], 1), vec![KeyRange::default()]);
    }
}
