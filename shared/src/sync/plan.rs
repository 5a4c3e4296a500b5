//! Planning a batch: the events of one SQS batch grouped by destination key, each group in a total
//! order, newest first. The newest event of a key becomes the key's job; the others are superseded
//! by it (the job makes the destination match the source *now*, which covers them).
//!
//! The order must be total whatever the events carry, or sorting may panic ("does not correctly
//! implement a total order") and fail the whole batch on every delivery. Events mix three kinds of
//! evidence: S3's per-key `sequencer` (the truth, when two events both have one), the event time
//! (milliseconds; the operator's backfill and retry events carry only this), and the position in
//! the batch. Comparing pairwise "by sequencer when both have one, else by time" is not transitive.
//! Instead each event gets a sort key, and keys are compared lexicographically:
//! - a sequenced event's time is raised to the latest time of any sequenced event of the key whose
//!   sequencer is not above its own, so among sequenced events time never contradicts sequencer;
//! - the key is (time, has a sequencer, rank by sequencer, position in the batch).
//!
//! Sequenced events are therefore in sequencer order among themselves, unsequenced events are
//! placed among them by time, and ties end at the position (a later message is newer).

use crate::event::{sequencer_cmp, ObjectEvent};
use time::OffsetDateTime;

/// Where an event sits in the batch: its message's index and its record's index in the message.
pub type Position = (usize, usize);

/// What the order of one event rests on.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// S3's per-key sequencer, if the event has one.
    pub sequencer: Option<&'a str>,
    /// The event time, if it has one that parses.
    pub time: Option<OffsetDateTime>,
    /// Its place in the batch.
    pub position: Position,
}

impl<'a> Evidence<'a> {
    /// The evidence of a parsed event at a position.
    pub fn of(event: &'a ObjectEvent, position: Position) -> Self {
        let time = event.time.as_deref().and_then(|t| {
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        });
        Self {
            sequencer: event.sequencer.as_deref().filter(|s| !s.is_empty()),
            time,
            position,
        }
    }
}

/// The sort key of one event (see the module doc); larger is newer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SortKey {
    time: Option<OffsetDateTime>,
    sequenced: bool,
    rank: usize,
    position: Position,
}

/// The indices of `group` (one key's events), newest first, in a total order.
pub fn newest_first(group: &[Evidence<'_>]) -> Vec<usize> {
    // Sequenced events in sequencer order (position breaks equal sequencers).
    let mut sequenced: Vec<usize> = (0..group.len())
        .filter(|&i| group[i].sequencer.is_some())
        .collect();
    sequenced.sort_by(|&a, &b| {
        let (x, y) = (&group[a], &group[b]);
        sequencer_cmp(x.sequencer.unwrap_or(""), y.sequencer.unwrap_or(""))
            .then(x.position.cmp(&y.position))
    });
    let mut keys: Vec<SortKey> = group
        .iter()
        .map(|e| SortKey {
            time: e.time,
            sequenced: false,
            rank: 0,
            position: e.position,
        })
        .collect();
    let mut latest: Option<OffsetDateTime> = None;
    for (rank, &i) in sequenced.iter().enumerate() {
        latest = latest.max(group[i].time);
        keys[i] = SortKey {
            time: latest,
            sequenced: true,
            rank,
            position: group[i].position,
        };
    }
    let mut order: Vec<usize> = (0..group.len()).collect();
    order.sort_by(|&a, &b| keys[b].cmp(&keys[a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    fn ev(sequencer: Option<&str>, secs: Option<i64>, position: Position) -> Evidence<'_> {
        Evidence {
            sequencer,
            time: secs.map(|s| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(s)),
            position,
        }
    }

    #[test]
    fn sequencers_decide_between_sequenced_events_whatever_their_times() {
        // The later sequencer has the earlier time (S3's clocks are not the sequencer).
        let g = [
            ev(Some("00A2"), Some(10), (0, 0)),
            ev(Some("00A1"), Some(20), (1, 0)),
        ];
        assert_eq!(newest_first(&g), [0, 1]);
    }

    #[test]
    fn the_mix_that_made_the_old_comparator_cycle_is_ordered() {
        // a < b by sequencer, b < c by time, c < a by time: a cycle for a pairwise comparator.
        let g = [
            ev(Some("0001"), Some(3), (0, 0)),
            ev(Some("0002"), Some(1), (0, 1)),
            ev(None, Some(2), (0, 2)),
        ];
        let order = newest_first(&g);
        let pos = |i: usize| order.iter().position(|&x| x == i).unwrap();
        assert!(pos(1) < pos(0), "sequencer order holds: {order:?}");
        assert_eq!(order.len(), 3);
    }

    #[test]
    fn forty_records_of_one_key_with_and_without_sequencers_sort() {
        let seqs: Vec<String> = (0..40)
            .map(|i| format!("00{:04X}", (i * 7919) % 65_536))
            .collect();
        let g: Vec<Evidence<'_>> = (0..40)
            .map(|i| {
                let seq = (i % 2 == 0).then(|| seqs[i].as_str());
                ev(seq, Some(((i * 37) % 11) as i64), (0, i))
            })
            .collect();
        let order = newest_first(&g);
        let mut seen = order.clone();
        seen.sort();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
    }

    proptest! {
        #[test]
        fn any_mix_is_a_total_order_that_respects_sequencers(
            events in proptest::collection::vec(
                (proptest::option::of(0u16..50), proptest::option::of(0i64..20)), 1..60)
        ) {
            let seqs: Vec<Option<String>> =
                events.iter().map(|(s, _)| s.map(|s| format!("{s:04X}"))).collect();
            let g: Vec<Evidence<'_>> = events
                .iter()
                .enumerate()
                .map(|(i, (_, t))| ev(seqs[i].as_deref(), *t, (i / 3, i % 3)))
                .collect();
            let order = newest_first(&g);
            // A permutation ...
            let mut seen = order.clone();
            seen.sort();
            prop_assert_eq!(seen, (0..g.len()).collect::<Vec<_>>());
            // ... in which sequenced events never contradict their sequencers ...
            let sequenced: Vec<usize> = order.iter().copied().filter(|&i| g[i].sequencer.is_some()).collect();
            for w in sequenced.windows(2) {
                prop_assert_ne!(
                    sequencer_cmp(g[w[0]].sequencer.unwrap(), g[w[1]].sequencer.unwrap()),
                    Ordering::Less
                );
            }
            // ... and which does not depend on the order the events came in.
            let mut reversed: Vec<Evidence<'_>> = g.clone();
            reversed.reverse();
            let back: Vec<usize> = newest_first(&reversed).into_iter().map(|i| g.len() - 1 - i).collect();
            prop_assert_eq!(back, order);
        }
    }
}
