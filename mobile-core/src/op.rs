//! Ops: every change a phone, the server or the dashboard makes, as an immutable record.
//!
//! An op is identified by `(device, seq)`, with `seq` contiguous per device from 1, and
//! ordered by [`OpKey`] `(hlc, device, seq)`. Ops are idempotent: applying one twice is
//! applying it once. An op of a type this version does not know, or written by a newer schema
//! version, is kept as it came (and re-sent), but not applied until an upgrade understands it.

use serde::de::Error as _;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::campaign::Campaign;
use crate::clock::Hlc;
use crate::error::{Error, Result};
use crate::hazard::HazardEvent;
use crate::model::{DeviceId, HazardId, Inspection, PhotoRef, PremisesId, UserId};

/// The newest op schema this build understands. Each op is stamped with the oldest schema
/// that understands it ([`OpBody::schema`]), so a phone of an older build applies every op
/// it can and keeps the rest unapplied (as [`OpBody::Unknown`]) until it is updated.
///
/// 2: hazard events may be `urged` (催办).
/// 3: `campaign` ops (专项行动).
pub const SCHEMA_VERSION: u32 = 3;

/// The total order of ops: HLC first, then device id, then seq.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpKey {
    /// Clock stamp.
    pub hlc: Hlc,
    /// Device that wrote the op.
    pub device: DeviceId,
    /// Its sequence number on that device.
    pub seq: u64,
}

/// One change.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// Device that wrote it.
    pub device: DeviceId,
    /// Sequence number on that device, from 1, without gaps.
    pub seq: u64,
    /// Clock stamp.
    pub hlc: Hlc,
    /// Signed-in user who made the change.
    pub author: UserId,
    /// Schema version it was written with.
    pub schema: u32,
    /// Device wall time (evidence only; the HLC orders).
    pub wall_ms: i64,
    /// What changed.
    pub body: OpBody,
}

/// The change an op carries.
#[derive(Clone, Debug, PartialEq)]
pub enum OpBody {
    /// Sets some fields of a premises (each field is a last-writer-wins register).
    PremisesPatch(PremisesPatch),
    /// Records an inspection (and so the hazards it found).
    Inspection(Box<Inspection>),
    /// Moves a hazard along its lifecycle.
    HazardEvent(HazardEvent),
    /// Sets (or ends) one grid's part of a campaign.
    Campaign(Campaign),
    /// A type this version does not know, or any op of a newer schema: kept verbatim.
    Unknown {
        /// Its type name.
        kind: String,
        /// Its payload.
        data: Value,
    },
}

/// Fields set on a premises.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PremisesPatch {
    /// The premises.
    pub premises_id: PremisesId,
    /// Field name to new value (`null` clears an optional field).
    pub fields: Map<String, Value>,
}

impl OpBody {
    /// The oldest op schema that understands this body.
    pub fn schema(&self) -> u32 {
        match self {
            OpBody::HazardEvent(e) if matches!(e.action, crate::hazard::HazardAction::Urged) => 2,
            OpBody::Campaign(_) => 3,
            _ => 1,
        }
    }

    /// The wire name of the op type.
    pub fn kind(&self) -> &str {
        match self {
            OpBody::PremisesPatch(_) => "premises_patch",
            OpBody::Inspection(_) => "inspection",
            OpBody::HazardEvent(_) => "hazard_event",
            OpBody::Campaign(_) => "campaign",
            OpBody::Unknown { kind, .. } => kind,
        }
    }

    /// Decodes a payload; types this version does not know, and any newer schema, stay raw.
    pub fn decode(kind: &str, schema: u32, data: &str) -> serde_json::Result<OpBody> {
        if schema > SCHEMA_VERSION {
            return Ok(OpBody::Unknown {
                kind: kind.to_owned(),
                data: serde_json::from_str(data)?,
            });
        }
        Ok(match kind {
            "premises_patch" => OpBody::PremisesPatch(serde_json::from_str(data)?),
            "inspection" => OpBody::Inspection(serde_json::from_str(data)?),
            "hazard_event" => OpBody::HazardEvent(serde_json::from_str(data)?),
            "campaign" => OpBody::Campaign(serde_json::from_str(data)?),
            other => OpBody::Unknown {
                kind: other.to_owned(),
                data: serde_json::from_str(data)?,
            },
        })
    }

    /// Photos the op refers to (they travel apart from it, through the upload queue).
    pub fn photos(&self) -> Vec<&PhotoRef> {
        match self {
            OpBody::Inspection(i) => i.answers.iter().flat_map(|a| &a.photos).collect(),
            OpBody::HazardEvent(e) => e.action.photos().iter().collect(),
            OpBody::PremisesPatch(_) | OpBody::Campaign(_) | OpBody::Unknown { .. } => Vec::new(),
        }
    }

    /// The payload as JSON text (deterministic: the same op always encodes the same way).
    pub fn encode_data(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.clear();
        match self {
            OpBody::PremisesPatch(p) => serde_json::to_writer(out, p),
            OpBody::Inspection(i) => serde_json::to_writer(out, i),
            OpBody::HazardEvent(e) => serde_json::to_writer(out, e),
            OpBody::Campaign(c) => serde_json::to_writer(out, c),
            OpBody::Unknown { data, .. } => serde_json::to_writer(out, data),
        }
    }
}

impl Op {
    /// Its identity and position in the total order.
    pub fn key(&self) -> OpKey {
        OpKey {
            hlc: self.hlc,
            device: self.device.clone(),
            seq: self.seq,
        }
    }

    /// Whether this build applies it (known type, schema not newer).
    pub fn is_understood(&self) -> bool {
        self.schema <= SCHEMA_VERSION && !matches!(self.body, OpBody::Unknown { .. })
    }

    /// Checks what can be checked without other state: ids present, values in range, and
    /// that the hazards an inspection claims are the ones derived from it.
    pub fn validate(&self) -> Result<()> {
        let at = |e: Error| Error::Batch(format!("op {}/{}: {e}", self.device, self.seq));
        if self.device.0.is_empty() || self.device.0.len() > 64 {
            return Err(at(Error::invalid("device", "must be 1 to 64 characters")));
        }
        if self.seq == 0 || self.seq > i64::MAX as u64 {
            return Err(at(Error::invalid("seq", "must start at 1")));
        }
        if self.author.0.is_empty() {
            return Err(at(Error::invalid("author", "is required")));
        }
        if self.hlc.physical_ms() >= crate::clock::MAX_PHYSICAL_MS {
            return Err(at(Error::invalid("hlc", "is out of range")));
        }
        match &self.body {
            OpBody::PremisesPatch(p) => {
                if p.premises_id.0.is_empty() || p.fields.is_empty() {
                    return Err(at(Error::invalid(
                        "premises_patch",
                        "needs a premises id and at least one field",
                    )));
                }
                for (field, value) in &p.fields {
                    crate::model::premises_validate_field(field, value).map_err(at)?;
                }
            }
            OpBody::Inspection(i) => {
                if let Some(g) = &i.geotag {
                    g.validate().map_err(at)?;
                }
                for f in &i.findings {
                    if f.hazard_id != HazardId::derive(&i.root, &f.code) {
                        return Err(at(Error::invalid(
                            "findings",
                            format!("hazard id of {} is not derived from the inspection", f.code),
                        )));
                    }
                }
            }
            OpBody::HazardEvent(e) => {
                if let Some(g) = &e.geotag {
                    g.validate().map_err(at)?;
                }
            }
            OpBody::Campaign(c) => c.validate().map_err(at)?,
            OpBody::Unknown { .. } => {}
        }
        Ok(())
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Op", 8)?;
        st.serialize_field("device", &self.device)?;
        st.serialize_field("seq", &self.seq)?;
        st.serialize_field("hlc", &self.hlc)?;
        st.serialize_field("author", &self.author)?;
        st.serialize_field("schema", &self.schema)?;
        st.serialize_field("wall_ms", &self.wall_ms)?;
        st.serialize_field("type", self.body.kind())?;
        match &self.body {
            OpBody::PremisesPatch(p) => st.serialize_field("data", p)?,
            OpBody::Inspection(i) => st.serialize_field("data", i)?,
            OpBody::HazardEvent(e) => st.serialize_field("data", e)?,
            OpBody::Campaign(c) => st.serialize_field("data", c)?,
            OpBody::Unknown { data, .. } => st.serialize_field("data", data)?,
        }
        st.end()
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            device: DeviceId,
            seq: u64,
            hlc: Hlc,
            author: UserId,
            schema: u32,
            wall_ms: i64,
            #[serde(rename = "type")]
            kind: String,
            data: Box<RawValue>,
        }
        let w = Wire::deserialize(d)?;
        let body = OpBody::decode(&w.kind, w.schema, w.data.get()).map_err(|e| {
            D::Error::custom(format!("op {}/{} ({}): {e}", w.device, w.seq, w.kind))
        })?;
        Ok(Op {
            device: w.device,
            seq: w.seq,
            hlc: w.hlc,
            author: w.author,
            schema: w.schema,
            wall_ms: w.wall_ms,
            body,
        })
    }
}
