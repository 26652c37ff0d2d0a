//! Merge rules for premises: one last-writer-wins register per field, ordered by [`OpKey`].
//!
//! Pure: the store feeds it the patches of a batch and writes back only the winners, so a
//! batch of many edits to the same field costs one write.

use std::collections::HashMap;

use serde_json::Value;

use crate::model::PremisesId;
use crate::op::OpKey;

/// Whether a write stamped `new` replaces the register's current write stamped `current`.
/// The later `(hlc, device, seq)` wins; equal keys are the same op, so nothing changes.
pub fn wins(new: &OpKey, current: &OpKey) -> bool {
    new > current
}

/// A register write that won within a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldWrite {
    /// Key of the op that wrote it.
    pub key: OpKey,
    /// The value written.
    pub value: Value,
}

/// Collects the winning write per (premises, field) over a batch of ops.
#[derive(Debug, Default)]
pub struct LwwBatch {
    winners: HashMap<(PremisesId, String), FieldWrite>,
}

impl LwwBatch {
    /// Offers one field write; keeps it if it beats the batch's current winner.
    pub fn offer(&mut self, premises: &PremisesId, field: &str, key: &OpKey, value: &Value) {
        match self.winners.get_mut(&(premises.clone(), field.to_owned())) {
            Some(w) if !wins(key, &w.key) => {}
            Some(w) => {
                *w = FieldWrite {
                    key: key.clone(),
                    value: value.clone(),
                }
            }
            None => {
                self.winners.insert(
                    (premises.clone(), field.to_owned()),
                    FieldWrite {
                        key: key.clone(),
                        value: value.clone(),
                    },
                );
            }
        }
    }

    /// The winners, in no particular order.
    pub fn into_writes(self) -> impl Iterator<Item = ((PremisesId, String), FieldWrite)> {
        self.winners.into_iter()
    }

    /// Nothing offered.
    pub fn is_empty(&self) -> bool {
        self.winners.is_empty()
    }
}
