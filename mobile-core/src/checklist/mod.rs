//! Checklists as data: the four inspection types, loaded from the versioned JSON files in
//! `schemas/checklists/` and embedded in the binary so a phone works offline.
//!
//! Every version ever released stays in the catalogue: an inspection records the versions it
//! was answered against, and is read and re-evaluated with exactly those.

mod catalog;
pub mod cond;
mod evaluate;
pub mod sample;

use serde::{Deserialize, Serialize};

pub use catalog::{Catalog, EMBEDDED as catalog_files_embedded};

/// The checklist files embedded in this build: (file name, JSON text).
pub fn catalog_files() -> &'static [(&'static str, &'static str)] {
    catalog_files_embedded
}
pub use cond::{Cond, Expr, ExprOp, Literal};
pub use evaluate::{applicable_items, evaluate};

use crate::model::{Severity, Text};

/// The inspection types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ChecklistKind {
    /// 灭火器.
    FireExtinguisher,
    /// 燃气泄漏报警.
    GasAlarm,
    /// 电动自行车.
    EBike,
    /// 安全出口、疏散通道.
    Exits,
}

impl ChecklistKind {
    /// All types, in the order a visit walks through them.
    pub const ALL: [ChecklistKind; 4] = [
        ChecklistKind::FireExtinguisher,
        ChecklistKind::GasAlarm,
        ChecklistKind::EBike,
        ChecklistKind::Exits,
    ];

    /// The prefix of this type's item codes.
    pub fn code_prefix(self) -> &'static str {
        match self {
            ChecklistKind::FireExtinguisher => "FE-",
            ChecklistKind::GasAlarm => "GA-",
            ChecklistKind::EBike => "EB-",
            ChecklistKind::Exits => "EX-",
        }
    }
}

/// One checklist file: an inspection type at one version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checklist {
    /// Inspection type.
    pub kind: ChecklistKind,
    /// Version, from 1.
    pub version: u32,
    /// Title.
    pub title: Text,
    /// Laws and standards it rests on.
    pub basis: Vec<String>,
    /// Items in the order they are asked.
    pub items: Vec<Item>,
}

impl Checklist {
    /// How an inspection refers to this checklist and version.
    pub fn reference(&self) -> crate::model::ChecklistRef {
        crate::model::ChecklistRef {
            kind: self.kind,
            version: self.version,
        }
    }

    /// The item with this code.
    pub fn item(&self, code: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.code == code)
    }
}

/// One checklist item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Code, e.g. `FE-03`.
    pub code: String,
    /// Question.
    pub label: Text,
    /// Guidance for the worker.
    #[serde(default)]
    pub help: Option<Text>,
    /// What kind of answer it takes.
    pub answer: AnswerSpec,
    /// A second value (a count) recorded with the answer.
    #[serde(default)]
    pub detail: Option<DetailSpec>,
    /// An applicable item must be answered (possibly "not applicable").
    pub required: bool,
    /// When the item applies; absent means always.
    #[serde(default)]
    pub applies_when: Option<Cond>,
    /// The rule that makes an answer a hazard; absent means information only.
    #[serde(default)]
    pub hazard: Option<HazardRule>,
    /// The required fix, printed on the rectification notice.
    #[serde(default)]
    pub fix: Option<Text>,
    /// A hazard on this item must carry a photo.
    pub photo_on_hazard: bool,
    /// Legal or standard basis.
    pub basis: String,
}

impl Item {
    /// How an answer to this item reads to people (是, a choice's label, 不适用, a number
    /// with its unit), in Chinese and English: for the dashboard, exports and notices.
    pub fn answer_text(&self, value: &crate::model::AnswerValue) -> Text {
        use crate::model::AnswerValue as V;
        let same = |s: String| Text {
            zh: s.clone(),
            en: s,
        };
        match value {
            V::YesNo(true) => Text {
                zh: "是".into(),
                en: "Yes".into(),
            },
            V::YesNo(false) => Text {
                zh: "否".into(),
                en: "No".into(),
            },
            V::NotApplicable => Text {
                zh: "不适用".into(),
                en: "Not applicable".into(),
            },
            V::Count(n) => same(n.to_string()),
            V::Number(x) => match &self.answer {
                AnswerSpec::Number {
                    unit: Some(unit), ..
                } => same(format!("{x} {unit}")),
                _ => same(x.to_string()),
            },
            V::Date(d) => same(d.to_string()),
            V::Choice(v) => match &self.answer {
                AnswerSpec::Choice { options } => options
                    .iter()
                    .find(|o| &o.value == v)
                    .map_or_else(|| same(v.clone()), |o| o.label.clone()),
                _ => same(v.clone()),
            },
        }
    }
}

/// The kind of answer an item takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnswerSpec {
    /// Yes or no.
    YesNo,
    /// A whole count, at most `max`.
    Count {
        /// Upper bound.
        #[serde(default)]
        max: Option<u32>,
    },
    /// A measurement.
    Number {
        /// Lower bound.
        #[serde(default)]
        min: Option<f64>,
        /// Upper bound.
        #[serde(default)]
        max: Option<f64>,
        /// Unit shown to the worker.
        #[serde(default)]
        unit: Option<String>,
    },
    /// A date, not after the inspection date.
    Date,
    /// One of the options.
    Choice {
        /// The options.
        options: Vec<ChoiceOption>,
    },
}

/// An option of a choice item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChoiceOption {
    /// Stored value.
    pub value: String,
    /// Shown label.
    pub label: Text,
}

/// The second value of an item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetailSpec {
    /// Label, e.g. "how many".
    pub label: Text,
    /// When it must be given.
    pub required_when: Cond,
}

/// When an answer is a hazard, and how serious.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HazardRule {
    /// The answer is a hazard when this holds.
    pub when: Cond,
    /// Default severity.
    pub severity: Severity,
    /// Default rectification period in days; 0 = fix on the spot.
    pub rectify_days: u32,
    /// Shown first in lists.
    #[serde(default)]
    pub high_priority: bool,
    /// The first override whose condition holds replaces severity and period.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// A severity/period override.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// Applies when this holds.
    pub when: Cond,
    /// Severity.
    pub severity: Severity,
    /// Period in days.
    pub rectify_days: u32,
}
