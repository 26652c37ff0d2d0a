//! China's working days as data (`schemas/calendar/cn.json`, format in its README): weekdays,
//! minus public holidays, plus weekend days declared working days (调休).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Deserialize;

use crate::error::{Error, Result};

/// The calendar file shipped with the app.
pub const EMBEDDED: &str = include_str!("../../schemas/calendar/cn.json");

/// Working days.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
    years: BTreeSet<i32>,
    provisional: BTreeSet<i32>,
}

/// How far a year's working days can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum YearStatus {
    /// The State Council's arrangement for the year is in the file.
    Official,
    /// Only the statutory holidays (and the weekday 补假 for those on a weekend) are in the
    /// file, without the swapped weekends, until the notice is out.
    Provisional,
    /// Nothing for the year: plain Monday-to-Friday weeks.
    Unknown,
}

#[derive(Deserialize)]
struct File {
    format: String,
    years: BTreeMap<String, Year>,
}

#[derive(Deserialize)]
struct Year {
    #[serde(default)]
    holidays: Vec<Range>,
    #[serde(default)]
    workdays: Vec<Day>,
    #[serde(default)]
    provisional: bool,
}

#[derive(Deserialize)]
struct Range {
    from: NaiveDate,
    to: NaiveDate,
}

#[derive(Deserialize)]
struct Day {
    date: NaiveDate,
}

impl WorkCalendar {
    /// The calendar embedded in this build.
    pub fn builtin() -> &'static WorkCalendar {
        static BUILTIN: std::sync::OnceLock<WorkCalendar> = std::sync::OnceLock::new();
        // Checked by the tests; an unreadable embedded file would be a build defect.
        BUILTIN.get_or_init(|| WorkCalendar::from_json(EMBEDDED).unwrap_or_default())
    }

    /// Reads a calendar file, checking it.
    pub fn from_json(text: &str) -> Result<WorkCalendar> {
        let bad = |m: String| Error::invalid("calendar", m);
        let file: File = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if file.format != "xuncha-calendar/1" {
            return Err(bad(format!("unknown format {:?}", file.format)));
        }
        let mut cal = WorkCalendar::default();
        for (year, y) in file.years {
            let year: i32 = year
                .parse()
                .map_err(|_| bad(format!("{year:?} is not a year")))?;
            cal.years.insert(year);
            if y.provisional {
                cal.provisional.insert(year);
            }
            for r in y.holidays {
                if r.to < r.from || r.from.year() != year {
                    return Err(bad(format!(
                        "holiday {}..{} is not within {year} in order",
                        r.from, r.to
                    )));
                }
                let mut d = r.from;
                while d <= r.to {
                    cal.holidays.insert(d);
                    d = d + Days::new(1);
                }
            }
            for w in y.workdays {
                if cal.holidays.contains(&w.date) {
                    return Err(bad(format!(
                        "{} is both a holiday and a working day",
                        w.date
                    )));
                }
                cal.workdays.insert(w.date);
            }
        }
        Ok(cal)
    }

    /// Whether the calendar has the official arrangement for `year`.
    pub fn covers(&self, year: i32) -> bool {
        self.status(year) == YearStatus::Official
    }

    /// Whether `year` is official, provisional or missing (for the app to say so).
    pub fn status(&self, year: i32) -> YearStatus {
        if self.provisional.contains(&year) {
            YearStatus::Provisional
        } else if self.years.contains(&year) {
            YearStatus::Official
        } else {
            YearStatus::Unknown
        }
    }

    /// Whether `d` is a working day.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.workdays.contains(&d) {
            return true;
        }
        !self.holidays.contains(&d) && !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// `d` if it is a working day, else the next one.
    pub fn on_or_after(&self, d: NaiveDate) -> NaiveDate {
        let mut day = d;
        while !self.is_working_day(day) {
            day = day + Days::new(1);
        }
        day
    }

    /// The date `n` working days after `d` (`n = 0`: `d` itself).
    pub fn add_working_days(&self, d: NaiveDate, n: u64) -> NaiveDate {
        let mut day = d;
        let mut left = n;
        while left > 0 {
            day = day + Days::new(1);
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }
}
