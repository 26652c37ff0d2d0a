//! Plausible answer sets for tests, benchmarks, simulations and demo data.
//!
//! Walks the items in order and picks, for each applicable one, the first candidate value
//! that is (for the codes asked to be hazards) or is not a hazard, so the result always
//! passes [`super::evaluate`] and finds exactly the hazards asked for where they can arise.
//! Optional items are left blank unless asked to be hazards.

use std::collections::HashMap;

use chrono::{Days, NaiveDate};
use sha2::{Digest, Sha256};

use super::evaluate::Ctx;
use super::{AnswerSpec, Checklist, Item};
use crate::model::{Answer, AnswerValue, InspectionDraft, PhotoRef, Premises, PremisesFields};

/// Answers to every applicable item of `lists`: hazards at `hazard_codes` (where some value
/// makes one), none elsewhere; `fixed` answers are used as given.
pub fn sample_answers(
    lists: &[&Checklist],
    premises: &PremisesFields,
    today: NaiveDate,
    hazard_codes: &[&str],
    fixed: &[Answer],
) -> Vec<Answer> {
    let mut answers: Vec<Answer> = Vec::new();
    for item in lists.iter().flat_map(|l| l.items.iter()) {
        let applies = {
            let ctx = ctx(&answers, premises, today);
            item.applies_when.as_ref().is_none_or(|c| c.holds(&ctx))
        };
        if !applies {
            continue;
        }
        if let Some(f) = fixed.iter().find(|a| a.code == item.code) {
            answers.push(f.clone());
            continue;
        }
        let want_hazard = hazard_codes.contains(&item.code.as_str());
        if !item.required && !want_hazard {
            continue; // optional items stay blank (FE-08 blank means "never serviced")
        }
        let mut chosen = None;
        for value in candidates(item, today) {
            let mut a = Answer::new(item.code.clone(), value);
            answers.push(a.clone());
            let ctx = ctx(&answers, premises, today);
            let hazard = item.hazard.as_ref().is_some_and(|h| h.when.holds(&ctx));
            let needs_detail = item
                .detail
                .as_ref()
                .is_some_and(|d| d.required_when.holds(&ctx));
            answers.pop();
            if hazard == want_hazard || (chosen.is_none() && !hazard) {
                if needs_detail {
                    a.detail = Some(2);
                }
                if hazard && item.photo_on_hazard {
                    a.photos.push(photo_for(&item.code));
                }
                let exact = hazard == want_hazard;
                chosen = Some(a);
                if exact {
                    break;
                }
            }
        }
        if let Some(a) = chosen {
            answers.push(a);
        }
    }
    answers
}

/// A routine visit to `premises` on `today` covering its default checklists, with hazards
/// at `hazard_codes`: what a simulated phone records.
pub fn sample_visit(
    catalog: &super::Catalog,
    premises: &Premises,
    today: NaiveDate,
    hazard_codes: &[&str],
) -> InspectionDraft {
    let kinds = crate::store::Store::default_kinds(&premises.fields);
    let lists: Vec<&Checklist> = kinds.iter().filter_map(|k| catalog.latest(*k)).collect();
    let gas = match premises.fields.gas_use {
        crate::model::GasUse::None => "none",
        _ => "lpg",
    };
    let fixed = [Answer::new("GA-00", AnswerValue::Choice(gas.into()))];
    let mut answers = sample_answers(&lists, &premises.fields, today, hazard_codes, &fixed);
    // Each shop's photos are its own, as a camera's would be.
    for a in &mut answers {
        for p in &mut a.photos {
            *p = photo_for(&format!("{}:{}", premises.id, a.code));
        }
    }
    InspectionDraft {
        premises_id: premises.id.clone(),
        answers,
        kinds,
        geotag: None,
        note: None,
        supersedes: None,
    }
}

/// A stand-in photo reference (content hash of the item code).
pub fn photo_for(code: &str) -> PhotoRef {
    PhotoRef {
        sha256: hex::encode(Sha256::digest(code.as_bytes())),
        bytes: 180_000,
        width: 1600,
        height: 1200,
    }
}

fn ctx<'a>(answers: &'a [Answer], premises: &'a PremisesFields, today: NaiveDate) -> Ctx<'a> {
    let map: HashMap<&str, &Answer> = answers.iter().map(|a| (a.code.as_str(), a)).collect();
    Ctx {
        answers: map,
        premises,
        today,
    }
}

fn candidates(item: &Item, today: NaiveDate) -> Vec<AnswerValue> {
    let ago = |days: u64| today.checked_sub_days(Days::new(days)).unwrap_or(today);
    match &item.answer {
        AnswerSpec::YesNo => vec![AnswerValue::YesNo(true), AnswerValue::YesNo(false)],
        AnswerSpec::Count { max } => [2u32, 4, 10, 20, 50, 1, 0]
            .into_iter()
            .filter(|n| max.is_none_or(|m| *n <= m))
            .map(AnswerValue::Count)
            .collect(),
        AnswerSpec::Number { min, max, .. } => [min.unwrap_or(0.0), max.unwrap_or(100.0)]
            .into_iter()
            .map(AnswerValue::Number)
            .collect(),
        AnswerSpec::Date => vec![
            AnswerValue::Date(ago(200)),
            AnswerValue::Date(ago(365 * 20)),
        ],
        AnswerSpec::Choice { options } => options
            .iter()
            .map(|o| AnswerValue::Choice(o.value.clone()))
            .collect(),
    }
}
