//! The catalogue of every checklist version, embedded at build time and checked on load.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use super::{AnswerSpec, Checklist, ChecklistKind, Cond, Expr, ExprOp, Literal};
use crate::error::{Error, Result};

/// The checklist files shipped in this build: (file name, contents). Append new versions;
/// never edit or remove a released one (old inspections are read with it).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "fire_extinguisher.v1.json",
        include_str!("../../../schemas/checklists/fire_extinguisher.v1.json"),
    ),
    (
        "gas_alarm.v1.json",
        include_str!("../../../schemas/checklists/gas_alarm.v1.json"),
    ),
    (
        "e_bike.v1.json",
        include_str!("../../../schemas/checklists/e_bike.v1.json"),
    ),
    (
        "exits.v1.json",
        include_str!("../../../schemas/checklists/exits.v1.json"),
    ),
];

/// Premises facts conditions may use.
const PREMISES_FACTS: &[&str] = &[
    "kind",
    "floor_area_m2",
    "storeys",
    "gas_use",
    "sleeps_on_site",
    "max_occupants",
];

/// All checklist versions, by type and version.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    lists: BTreeMap<(ChecklistKind, u32), Checklist>,
}

impl Catalog {
    /// The checklists embedded in this build.
    pub fn builtin() -> &'static Catalog {
        static BUILTIN: OnceLock<Catalog> = OnceLock::new();
        BUILTIN.get_or_init(|| match Catalog::from_files(EMBEDDED) {
            Ok(c) => c,
            // The embedded files are tested in CI; a failure here is a build defect.
            Err(e) => panic!("embedded checklists are broken: {e}"),
        })
    }

    /// Loads and checks checklist files (name, JSON text).
    pub fn from_files(files: &[(&str, &str)]) -> Result<Catalog> {
        let mut catalog = Catalog::default();
        for (name, text) in files {
            let list: Checklist = serde_json::from_str(text).map_err(|e| Error::Checklist {
                file: (*name).into(),
                message: e.to_string(),
            })?;
            check(&list).map_err(|message| Error::Checklist {
                file: (*name).into(),
                message,
            })?;
            if catalog
                .lists
                .insert((list.kind, list.version), list)
                .is_some()
            {
                return Err(Error::Checklist {
                    file: (*name).into(),
                    message: "duplicate type and version".into(),
                });
            }
        }
        Ok(catalog)
    }

    /// A checklist at a version.
    pub fn get(&self, kind: ChecklistKind, version: u32) -> Option<&Checklist> {
        self.lists.get(&(kind, version))
    }

    /// The newest version of a checklist.
    pub fn latest(&self, kind: ChecklistKind) -> Option<&Checklist> {
        self.lists
            .range((kind, 0)..=(kind, u32::MAX))
            .next_back()
            .map(|(_, l)| l)
    }

    /// Every checklist version.
    pub fn all(&self) -> impl Iterator<Item = &Checklist> {
        self.lists.values()
    }
}

/// Checks what the JSON Schema cannot: codes and references, choice values, evaluation order.
fn check(list: &Checklist) -> std::result::Result<(), String> {
    let mut seen = HashSet::new();
    for (index, item) in list.items.iter().enumerate() {
        let code = &item.code;
        if !code.starts_with(list.kind.code_prefix()) {
            return Err(format!(
                "{code} does not start with {}",
                list.kind.code_prefix()
            ));
        }
        if !seen.insert(code.as_str()) {
            return Err(format!("{code} appears twice"));
        }
        if let AnswerSpec::Choice { options } = &item.answer {
            let values: HashSet<_> = options.iter().map(|o| &o.value).collect();
            if values.len() != options.len() {
                return Err(format!("{code} has duplicate options"));
            }
        }
        let earlier: Vec<&str> = list.items[..index]
            .iter()
            .map(|i| i.code.as_str())
            .collect();
        if let Some(c) = &item.applies_when {
            // Applicability may only look back, so answers are evaluated in one pass.
            check_cond(list, c, code, Some(&earlier))?;
        }
        if let Some(d) = &item.detail {
            check_cond(list, &d.required_when, code, None)?;
        }
        if let Some(rule) = &item.hazard {
            check_cond(list, &rule.when, code, None)?;
            for o in &rule.overrides {
                check_cond(list, &o.when, code, None)?;
            }
        }
    }
    Ok(())
}

fn check_cond(
    list: &Checklist,
    cond: &Cond,
    at: &str,
    only: Option<&[&str]>,
) -> std::result::Result<(), String> {
    let mut problem = None;
    cond.visit_exprs(&mut |e| {
        let Expr::Op(op) = e else { return };
        match op {
            ExprOp::Answer(c) | ExprOp::Detail(c) => {
                if list.item(c).is_none() {
                    problem.get_or_insert(format!("{at} refers to unknown item {c}"));
                } else if only.is_some_and(|o| !o.contains(&c.as_str())) {
                    problem.get_or_insert(format!(
                        "{at} applies_when may only refer to earlier items, not {c}"
                    ));
                }
            }
            ExprOp::Premises(name) if !PREMISES_FACTS.contains(&name.as_str()) => {
                problem.get_or_insert(format!("{at} refers to unknown premises fact {name}"));
            }
            ExprOp::Lookup { key, table } => {
                if let Some(opts) = choice_options(list, key) {
                    for k in table.keys().filter(|k| !opts.contains(k)) {
                        problem.get_or_insert(format!("{at} looks up {k}, which is not an option"));
                    }
                }
            }
            _ => {}
        }
    });
    check_choice_literals(list, cond, at, &mut problem);
    problem.map_or(Ok(()), Err)
}

/// The options of the choice item an expression reads, if it reads one.
fn choice_options<'a>(list: &'a Checklist, e: &Expr) -> Option<Vec<&'a String>> {
    let Expr::Op(ExprOp::Answer(code)) = e else {
        return None;
    };
    match &list.item(code)?.answer {
        AnswerSpec::Choice { options } => Some(options.iter().map(|o| &o.value).collect()),
        _ => None,
    }
}

/// A string compared with a choice answer must be one of its options (catches typos).
fn check_choice_literals(list: &Checklist, cond: &Cond, at: &str, problem: &mut Option<String>) {
    let mut check = |e: &Expr, lit: &Literal| {
        if let (Some(opts), Literal::Str(s)) = (choice_options(list, e), lit)
            && !opts.contains(&s)
        {
            problem.get_or_insert(format!("{at} compares with {s:?}, which is not an option"));
        }
    };
    match cond {
        Cond::All(l) | Cond::Any(l) => l
            .iter()
            .for_each(|c| check_choice_literals(list, c, at, problem)),
        Cond::Not(c) => check_choice_literals(list, c, at, problem),
        Cond::Eq(a) | Cond::Ne(a) => {
            if let Expr::Lit(l) = &a[1] {
                check(&a[0], l);
            }
        }
        Cond::In(e, lits) => lits.iter().for_each(|l| check(e, l)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_every_item_of_the_domain() {
        let c = Catalog::builtin();
        let codes = |k| -> Vec<String> {
            c.latest(k)
                .unwrap()
                .items
                .iter()
                .map(|i| i.code.clone())
                .collect()
        };
        let expect = |p: &str, r: std::ops::RangeInclusive<u32>| -> Vec<String> {
            r.map(|n| format!("{p}-{n:02}")).collect()
        };
        assert_eq!(codes(ChecklistKind::FireExtinguisher), expect("FE", 1..=9));
        assert_eq!(codes(ChecklistKind::GasAlarm), expect("GA", 0..=8));
        assert_eq!(codes(ChecklistKind::EBike), expect("EB", 1..=7));
        assert_eq!(codes(ChecklistKind::Exits), expect("EX", 1..=7));
    }

    #[test]
    fn semantic_checks_catch_bad_references() {
        let good = EMBEDDED[0].1;
        let bad_ref = good.replacen(
            "{ \"gt\": [ { \"answer\": \"FE-01\" }, 0 ] }",
            "{ \"gt\": [ { \"answer\": \"FE-05\" }, 0 ] }",
            1,
        );
        let e = Catalog::from_files(&[("x.json", &bad_ref)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("earlier items"), "{e}");
        let bad_choice = good.replace(
            "\"bc_powder\", \"co2\", \"other\"",
            "\"bc_powdr\", \"co2\", \"other\"",
        );
        let e = Catalog::from_files(&[("x.json", &bad_choice)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("bc_powdr"), "{e}");
        let e = Catalog::from_files(&[("x.json", good), ("y.json", good)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate"), "{e}");
    }
}
