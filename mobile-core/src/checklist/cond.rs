//! The small condition language checklists use for `applies_when` and hazard rules.
//!
//! A condition compares expressions over the answers, the premises facts and the inspection
//! date. A comparison with a missing value (unanswered, not applicable, unknown fact) is
//! false, so `not` of it is true: rules are written so that missing data does not raise a
//! hazard by accident.

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// A condition, as written in a checklist file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cond {
    /// Every condition holds.
    All(Vec<Cond>),
    /// At least one condition holds.
    Any(Vec<Cond>),
    /// The condition does not hold.
    Not(Box<Cond>),
    /// The item has an answer other than "not applicable".
    Answered(String),
    /// Equal.
    Eq(Box<[Expr; 2]>),
    /// Both present and different.
    Ne(Box<[Expr; 2]>),
    /// Less than (numbers or dates).
    Lt(Box<[Expr; 2]>),
    /// Less than or equal.
    Le(Box<[Expr; 2]>),
    /// Greater than.
    Gt(Box<[Expr; 2]>),
    /// Greater than or equal.
    Ge(Box<[Expr; 2]>),
    /// The value is one of the listed literals.
    In(Box<Expr>, Vec<Literal>),
}

/// A literal in a condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Literal {
    /// true / false.
    Bool(bool),
    /// A number.
    Num(f64),
    /// A string (choice values, premises kinds).
    Str(String),
}

/// An expression: a literal or an operator object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expr {
    /// A literal.
    Lit(Literal),
    /// An operator.
    Op(ExprOp),
}

/// `{}`: the argument of `today`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Operators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExprOp {
    /// The answer given to an item.
    Answer(String),
    /// The item's second value (a count).
    Detail(String),
    /// A fact from the premises record.
    Premises(String),
    /// The inspection date.
    Today(Empty),
    /// A date plus a number of years (calendar years; fractions in whole months).
    AddYears(Box<[Expr; 2]>),
    /// Product.
    Mul(Box<[Expr; 2]>),
    /// Quotient (missing when dividing by zero).
    Div(Box<[Expr; 2]>),
    /// The first present value.
    Coalesce(Vec<Expr>),
    /// A number looked up by a string key (e.g. scrap age by extinguisher type).
    Lookup {
        /// The key.
        key: Box<Expr>,
        /// Key to number.
        table: BTreeMap<String, f64>,
    },
}

/// A value during evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// Boolean.
    Bool(bool),
    /// Number.
    Num(f64),
    /// String.
    Str(String),
    /// Date.
    Date(NaiveDate),
}

/// What conditions can see. Implemented by the evaluator over one inspection.
pub trait Facts {
    /// The answer to an item, `None` when unanswered or not applicable.
    fn answer(&self, code: &str) -> Option<Val>;
    /// The item's detail count.
    fn detail(&self, code: &str) -> Option<Val>;
    /// A premises fact.
    fn premises(&self, name: &str) -> Option<Val>;
    /// The inspection date.
    fn today(&self) -> NaiveDate;
}

impl Literal {
    fn to_val(&self) -> Val {
        match self {
            Literal::Bool(b) => Val::Bool(*b),
            Literal::Num(n) => Val::Num(*n),
            Literal::Str(s) => Val::Str(s.clone()),
        }
    }
}

impl Expr {
    /// Evaluates to a value, or `None` when something it needs is missing.
    pub fn eval(&self, f: &dyn Facts) -> Option<Val> {
        match self {
            Expr::Lit(l) => Some(l.to_val()),
            Expr::Op(op) => op.eval(f),
        }
    }
}

impl ExprOp {
    fn eval(&self, f: &dyn Facts) -> Option<Val> {
        let num = |e: &Expr| match e.eval(f)? {
            Val::Num(n) => Some(n),
            _ => None,
        };
        match self {
            ExprOp::Answer(code) => f.answer(code),
            ExprOp::Detail(code) => f.detail(code),
            ExprOp::Premises(name) => f.premises(name),
            ExprOp::Today(_) => Some(Val::Date(f.today())),
            ExprOp::AddYears(args) => {
                let Val::Date(d) = args[0].eval(f)? else {
                    return None;
                };
                let months = (num(&args[1])? * 12.0).round();
                if !(0.0..=1200.0).contains(&months) {
                    return None;
                }
                d.checked_add_months(Months::new(months as u32))
                    .map(Val::Date)
            }
            ExprOp::Mul(args) => Some(Val::Num(num(&args[0])? * num(&args[1])?)),
            ExprOp::Div(args) => {
                let d = num(&args[1])?;
                (d != 0.0)
                    .then(|| num(&args[0]).map(|n| Val::Num(n / d)))
                    .flatten()
            }
            ExprOp::Coalesce(list) => list.iter().find_map(|e| e.eval(f)),
            ExprOp::Lookup { key, table } => match key.eval(f)? {
                Val::Str(k) => table.get(&k).map(|n| Val::Num(*n)),
                _ => None,
            },
        }
    }
}

impl Cond {
    /// Whether the condition holds.
    pub fn holds(&self, f: &dyn Facts) -> bool {
        use std::cmp::Ordering::*;
        let cmp = |args: &[Expr; 2]| -> Option<std::cmp::Ordering> {
            match (args[0].eval(f)?, args[1].eval(f)?) {
                (Val::Num(a), Val::Num(b)) => a.partial_cmp(&b),
                (Val::Date(a), Val::Date(b)) => Some(a.cmp(&b)),
                _ => None,
            }
        };
        let both = |args: &[Expr; 2]| Some((args[0].eval(f)?, args[1].eval(f)?));
        match self {
            Cond::All(list) => list.iter().all(|c| c.holds(f)),
            Cond::Any(list) => list.iter().any(|c| c.holds(f)),
            Cond::Not(c) => !c.holds(f),
            Cond::Answered(code) => f.answer(code).is_some(),
            Cond::Eq(args) => both(args).is_some_and(|(a, b)| a == b),
            Cond::Ne(args) => both(args).is_some_and(|(a, b)| a != b),
            Cond::Lt(args) => cmp(args) == Some(Less),
            Cond::Le(args) => matches!(cmp(args), Some(Less | Equal)),
            Cond::Gt(args) => cmp(args) == Some(Greater),
            Cond::Ge(args) => matches!(cmp(args), Some(Greater | Equal)),
            Cond::In(e, list) => e
                .eval(f)
                .is_some_and(|v| list.iter().any(|l| l.to_val() == v)),
        }
    }

    /// Calls `visit` on every expression in the condition, depth first.
    pub fn visit_exprs(&self, visit: &mut dyn FnMut(&Expr)) {
        match self {
            Cond::All(list) | Cond::Any(list) => list.iter().for_each(|c| c.visit_exprs(visit)),
            Cond::Not(c) => c.visit_exprs(visit),
            Cond::Answered(code) => visit(&Expr::Op(ExprOp::Answer(code.clone()))),
            Cond::Eq(a) | Cond::Ne(a) | Cond::Lt(a) | Cond::Le(a) | Cond::Gt(a) | Cond::Ge(a) => {
                a.iter().for_each(|e| e.visit(visit))
            }
            Cond::In(e, _) => e.visit(visit),
        }
    }
}

impl Expr {
    fn visit(&self, visit: &mut dyn FnMut(&Expr)) {
        visit(self);
        if let Expr::Op(op) = self {
            match op {
                ExprOp::AddYears(a) | ExprOp::Mul(a) | ExprOp::Div(a) => {
                    a.iter().for_each(|e| e.visit(visit))
                }
                ExprOp::Coalesce(list) => list.iter().for_each(|e| e.visit(visit)),
                ExprOp::Lookup { key, .. } => key.visit(visit),
                ExprOp::Answer(_) | ExprOp::Detail(_) | ExprOp::Premises(_) | ExprOp::Today(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct F;
    impl Facts for F {
        fn answer(&self, code: &str) -> Option<Val> {
            match code {
                "D" => Some(Val::Date(NaiveDate::from_ymd_opt(2016, 2, 29)?)),
                "T" => Some(Val::Str("co2".into())),
                "N" => Some(Val::Num(3.0)),
                _ => None,
            }
        }
        fn detail(&self, _: &str) -> Option<Val> {
            None
        }
        fn premises(&self, name: &str) -> Option<Val> {
            (name == "floor_area_m2").then_some(Val::Num(120.0))
        }
        fn today(&self) -> NaiveDate {
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
        }
    }

    fn cond(json: &str) -> Cond {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn comparisons_with_missing_values_are_false() {
        assert!(!cond(r#"{"lt":[{"answer":"missing"},2]}"#).holds(&F));
        assert!(!cond(r#"{"ne":[{"answer":"missing"},2]}"#).holds(&F));
        assert!(cond(r#"{"not":{"eq":[{"answer":"missing"},2]}}"#).holds(&F));
        assert!(
            cond(r#"{"lt":[{"answer":"N"},{"div":[{"premises":"floor_area_m2"},30]}]}"#).holds(&F)
        );
        assert!(
            !cond(r#"{"lt":[{"answer":"N"},{"div":[{"premises":"floor_area_m2"},0]}]}"#).holds(&F)
        );
    }

    #[test]
    fn add_years_is_calendar_exact_and_lookup_picks_by_choice() {
        // 29 Feb 2016 + 10 years = 28 Feb 2026: older than 10 years on 1 March 2026.
        let older = r#"{"gt":[{"today":{}},{"add_years":[{"answer":"D"},
            {"lookup":{"key":{"answer":"T"},"table":{"co2":12,"abc_powder":10}}}]}]}"#;
        assert!(!cond(older).holds(&F), "CO2 lasts 12 years");
        let powder = older.replace("\"co2\":12", "\"co2\":10");
        assert!(cond(&powder).holds(&F));
        let no_key = older.replace("\"co2\":12,", "");
        assert!(
            !cond(&no_key).holds(&F),
            "missing lookup key is missing, not a hazard"
        );
    }

    #[test]
    fn in_and_coalesce() {
        assert!(cond(r#"{"in":[{"answer":"T"},["bc_powder","co2"]]}"#).holds(&F));
        assert!(cond(r#"{"eq":[{"coalesce":[{"answer":"x"},{"answer":"N"}]},3]}"#).holds(&F));
        assert!(serde_json::from_str::<Cond>(r#"{"eq":[{"answr":"x"},3]}"#).is_err());
    }
}
