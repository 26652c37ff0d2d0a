//! Merge rules for premises: one last-writer-wins register per field, ordered by [`OpKey`].
//!
//! Pure: the store feeds it the patches of a batch and writes back only the winners, so a
//! batch of many edits to the same field costs one write. The store's final write is guarded
//! by the same order in SQL (`(hlc, device_id, seq) >` the stored register's), so a register
//! only ever moves to a later write; the convergence tests check that both agree.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde_json::Value;

use crate::clock::Hlc;
use crate::model::DeviceId;
use crate::op::OpKey;

/// Whether a write stamped `new` replaces the register's current write stamped `current`.
/// The later `(hlc, device, seq)` wins; equal keys are the same op, so nothing changes.
pub fn wins(new: &OpKey, current: &OpKey) -> bool {
    new > current
}

/// A register write, borrowed from the op that makes it. Ordered exactly as [`OpKey`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldWrite<'a> {
    /// Clock stamp of the op.
    pub hlc: Hlc,
    /// Device of the op.
    pub device: &'a DeviceId,
    /// Seq of the op.
    pub seq: u64,
    /// The value written.
    pub value: &'a Value,
}

impl FieldWrite<'_> {
    fn order(&self) -> (Hlc, &DeviceId, u64) {
        (self.hlc, self.device, self.seq)
    }
}

/// Collects the winning write per (premises, field) over a batch of ops.
#[derive(Debug, Default)]
pub struct LwwBatch<'a> {
    winners: HashMap<(&'a str, &'a str), FieldWrite<'a>>,
}

impl<'a> LwwBatch<'a> {
    /// Offers one field write; keeps it if it beats the batch's current winner.
    pub fn offer(&mut self, premises: &'a str, field: &'a str, write: FieldWrite<'a>) {
        match self.winners.entry((premises, field)) {
            Entry::Occupied(mut e) => {
                if write.order() > e.get().order() {
                    e.insert(write);
                }
            }
            Entry::Vacant(e) => {
                e.insert(write);
            }
        }
    }

    /// The winners, in no particular order: ((premises, field), write).
    pub fn into_writes(self) -> impl Iterator<Item = ((&'a str, &'a str), FieldWrite<'a>)> {
        self.winners.into_iter()
    }

    /// Nothing offered.
    pub fn is_empty(&self) -> bool {
        self.winners.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_write_wins_in_any_offer_order() {
        let (a, b) = (DeviceId::from("a"), DeviceId::from("b"));
        let (v1, v2, v3) = (Value::from(1), Value::from(2), Value::from(3));
        let writes = [
            FieldWrite {
                hlc: Hlc::new(5, 0),
                device: &b,
                seq: 1,
                value: &v1,
            },
            FieldWrite {
                hlc: Hlc::new(5, 0),
                device: &a,
                seq: 9,
                value: &v2,
            },
            FieldWrite {
                hlc: Hlc::new(4, 7),
                device: &b,
                seq: 2,
                value: &v3,
            },
        ];
        for perm in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let mut batch = LwwBatch::default();
            for i in perm {
                batch.offer("p", "name", writes[i]);
            }
            let (_, w) = batch.into_writes().next().unwrap();
            assert_eq!(w.value, &v1, "same HLC: the larger device id wins");
        }
        let k = |h, d: &str, s| OpKey {
            hlc: Hlc::new(h, 0),
            device: DeviceId::from(d),
            seq: s,
        };
        assert!(wins(&k(5, "b", 1), &k(5, "a", 9)) && !wins(&k(5, "a", 9), &k(5, "b", 1)));
    }
}
