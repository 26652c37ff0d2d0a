//! Checklist evaluation: answers in, findings out, or an error that names the item.
//!
//! Pure: takes the checklists, the premises record, the answers and the inspection date.

use std::collections::HashMap;

use chrono::{Days, NaiveDate};

use super::cond::{Facts, Val};
use super::{AnswerSpec, Checklist, Item};
use crate::error::{Error, Result};
use crate::model::{Answer, AnswerValue, Finding, HazardId, InspectionId, PremisesFields};

/// Dates before this are typing mistakes, not extinguisher ages.
const EARLIEST_DATE: (i32, u32, u32) = (1950, 1, 1);

pub(super) struct Ctx<'a> {
    pub(super) answers: HashMap<&'a str, &'a Answer>,
    pub(super) premises: &'a PremisesFields,
    pub(super) today: NaiveDate,
}

impl Facts for Ctx<'_> {
    fn answer(&self, code: &str) -> Option<Val> {
        Some(match &self.answers.get(code)?.value {
            AnswerValue::YesNo(b) => Val::Bool(*b),
            AnswerValue::Count(n) => Val::Num(f64::from(*n)),
            AnswerValue::Number(n) => Val::Num(*n),
            AnswerValue::Date(d) => Val::Date(*d),
            AnswerValue::Choice(c) => Val::Str(c.clone()),
            AnswerValue::NotApplicable => return None,
        })
    }
    fn detail(&self, code: &str) -> Option<Val> {
        self.answers
            .get(code)?
            .detail
            .map(|n| Val::Num(f64::from(n)))
    }
    fn premises(&self, name: &str) -> Option<Val> {
        Some(match self.premises.fact(name)? {
            serde_json::Value::Bool(b) => Val::Bool(b),
            serde_json::Value::Number(n) => Val::Num(n.as_f64()?),
            serde_json::Value::String(s) => Val::Str(s),
            _ => return None,
        })
    }
    fn today(&self) -> NaiveDate {
        self.today
    }
}

/// The codes of the items that apply on these premises given the answers so far, in order:
/// what an inspection screen shows as the worker answers (an answer can bring items in or
/// take them out). The same conditions [`evaluate`] checks the finished answers against.
pub fn applicable_items(
    lists: &[&Checklist],
    premises: &PremisesFields,
    answers: &[Answer],
    today: NaiveDate,
) -> Vec<String> {
    let ctx = Ctx {
        answers: answers.iter().map(|a| (a.code.as_str(), a)).collect(),
        premises,
        today,
    };
    lists
        .iter()
        .flat_map(|l| l.items.iter())
        .filter(|item| item.applies_when.as_ref().is_none_or(|c| c.holds(&ctx)))
        .map(|item| item.code.clone())
        .collect()
}

/// Checks the answers of one visit against its checklists and returns the hazards found.
///
/// Errors name the item: an answer to an item not on these checklists, answered twice, of the
/// wrong type or out of range, a date after the inspection date, a required answer missing, an
/// answer to an item that does not apply, a missing detail count, or a hazard without the photo
/// its item requires.
pub fn evaluate(
    lists: &[&Checklist],
    premises: &PremisesFields,
    answers: &[Answer],
    today: NaiveDate,
    root: &InspectionId,
) -> Result<Vec<Finding>> {
    let mut by_code: HashMap<&str, &Answer> = HashMap::with_capacity(answers.len());
    for a in answers {
        if by_code.insert(a.code.as_str(), a).is_some() {
            return Err(Error::answer(&a.code, "is answered twice"));
        }
        if !lists.iter().any(|l| l.item(&a.code).is_some()) {
            let kinds: Vec<_> = lists.iter().map(|l| format!("{:?}", l.kind)).collect();
            return Err(Error::answer(
                &a.code,
                format!(
                    "is not an item of the checklists used ({})",
                    kinds.join(", ")
                ),
            ));
        }
    }
    let ctx = Ctx {
        answers: by_code,
        premises,
        today,
    };
    let mut findings = Vec::new();
    for item in lists.iter().flat_map(|l| l.items.iter()) {
        let applies = item.applies_when.as_ref().is_none_or(|c| c.holds(&ctx));
        let answer = ctx.answers.get(item.code.as_str()).copied();
        match answer {
            None if applies && item.required => {
                return Err(Error::answer(
                    &item.code,
                    format!("a required answer is missing ({})", item.label.zh),
                ));
            }
            // A blank optional item can still be a hazard: FE-08 blank means "never serviced".
            None => {
                if applies && let Some(f) = rule_finding(item, &ctx, root) {
                    findings.push(f);
                }
            }
            Some(a) if !applies && a.value != AnswerValue::NotApplicable => {
                return Err(Error::answer(
                    &item.code,
                    "does not apply to these premises given the other answers; leave it out or mark it not applicable",
                ));
            }
            Some(a) => {
                check_answer(item, a, today)?;
                if let Some(d) = &item.detail {
                    if a.detail.is_none() && d.required_when.holds(&ctx) {
                        return Err(Error::answer(
                            &item.code,
                            format!("needs the detail \"{}\"", d.label.zh),
                        ));
                    }
                } else if a.detail.is_some() {
                    return Err(Error::answer(&item.code, "takes no detail count"));
                }
                if let Some(f) = finding(item, a, &ctx, root)? {
                    findings.push(f);
                }
            }
        }
    }
    Ok(findings)
}

fn check_answer(item: &Item, a: &Answer, today: NaiveDate) -> Result<()> {
    let code = &item.code;
    for p in &a.photos {
        p.validate()
            .map_err(|e| Error::answer(code, e.to_string()))?;
    }
    match (&item.answer, &a.value) {
        (_, AnswerValue::NotApplicable) | (AnswerSpec::YesNo, AnswerValue::YesNo(_)) => Ok(()),
        (AnswerSpec::Count { max }, AnswerValue::Count(n)) => match max {
            Some(m) if n > m => Err(Error::answer(
                code,
                format!("{n} is more than the most allowed ({m})"),
            )),
            _ => Ok(()),
        },
        (AnswerSpec::Number { min, max, .. }, AnswerValue::Number(n)) => {
            if !n.is_finite() || min.is_some_and(|m| *n < m) || max.is_some_and(|m| *n > m) {
                Err(Error::answer(code, format!("{n} is out of range")))
            } else {
                Ok(())
            }
        }
        (AnswerSpec::Date, AnswerValue::Date(d)) => {
            let (y, m, dd) = EARLIEST_DATE;
            if *d > today {
                Err(Error::answer(
                    code,
                    format!("{d} is after the inspection date {today}"),
                ))
            } else if NaiveDate::from_ymd_opt(y, m, dd).is_some_and(|earliest| *d < earliest) {
                Err(Error::answer(code, format!("{d} is implausibly early")))
            } else {
                Ok(())
            }
        }
        (AnswerSpec::Choice { options }, AnswerValue::Choice(c)) => {
            if options.iter().any(|o| &o.value == c) {
                Ok(())
            } else {
                let valid: Vec<_> = options.iter().map(|o| o.value.as_str()).collect();
                Err(Error::answer(
                    code,
                    format!("{c:?} is not one of {}", valid.join(", ")),
                ))
            }
        }
        (spec, value) => Err(Error::answer(
            code,
            format!("expects {} but got {}", spec_name(spec), value_name(value)),
        )),
    }
}

fn finding(item: &Item, a: &Answer, ctx: &Ctx<'_>, root: &InspectionId) -> Result<Option<Finding>> {
    if a.value == AnswerValue::NotApplicable {
        return Ok(None);
    }
    let found = rule_finding(item, ctx, root);
    if found.is_some() && item.photo_on_hazard && a.photos.is_empty() {
        return Err(Error::answer(
            &item.code,
            "is a hazard and needs at least one photo",
        ));
    }
    Ok(found)
}

/// The finding the item's rule makes from the answers in `ctx`, if any.
fn rule_finding(item: &Item, ctx: &Ctx<'_>, root: &InspectionId) -> Option<Finding> {
    let rule = item.hazard.as_ref()?;
    if !rule.when.holds(ctx) {
        return None;
    }
    let (severity, days) = rule
        .overrides
        .iter()
        .find(|o| o.when.holds(ctx))
        .map_or((rule.severity, rule.rectify_days), |o| {
            (o.severity, o.rectify_days)
        });
    Some(Finding {
        hazard_id: HazardId::derive(root, &item.code),
        code: item.code.clone(),
        severity,
        rectify_days: days,
        deadline: ctx
            .today
            .checked_add_days(Days::new(u64::from(days)))
            .unwrap_or(ctx.today),
        high_priority: rule.high_priority,
    })
}

fn spec_name(spec: &AnswerSpec) -> &'static str {
    match spec {
        AnswerSpec::YesNo => "yes/no",
        AnswerSpec::Count { .. } => "a count",
        AnswerSpec::Number { .. } => "a number",
        AnswerSpec::Date => "a date",
        AnswerSpec::Choice { .. } => "a choice",
    }
}

fn value_name(value: &AnswerValue) -> &'static str {
    match value {
        AnswerValue::YesNo(_) => "yes/no",
        AnswerValue::Count(_) => "a count",
        AnswerValue::Number(_) => "a number",
        AnswerValue::Date(_) => "a date",
        AnswerValue::Choice(_) => "a choice",
        AnswerValue::NotApplicable => "not applicable",
    }
}
