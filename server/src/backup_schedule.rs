//! Scheduled backups (`--backup-dir`): a copy every `--backup-every` (24 h by default, at
//! `--backup-at`, China time), named by when it was taken (`xuncha-20261201-0200`); the
//! newest of each of the last `--backup-keep-daily` days and of each of the last
//! `--backup-keep-weekly` weeks are kept, the rest removed. Photos that a previous copy
//! already holds are hard-linked (they never change), so a daily copy costs the database and
//! the day's new photos. A failed backup is kept in the database and shown on `/status` and
//! in `/metrics`. Pure parts ([`next_run`], [`to_remove`]) apart from the job.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDateTime, NaiveTime, TimeZone};
use xuncha_core::clock::china_offset;

/// How backups are taken and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Where the copies go.
    pub dir: PathBuf,
    /// Time between copies.
    pub every: Duration,
    /// For daily or longer periods: the local time of day they are taken at.
    pub at: NaiveTime,
    /// Days whose newest copy is kept.
    pub keep_daily: usize,
    /// Weeks whose newest copy is kept.
    pub keep_weekly: usize,
}

/// Copies are named so.
const PREFIX: &str = "xuncha-";
const STAMP: &str = "%Y%m%d-%H%M%S";

/// Parses `90s`, `30m`, `6h`, `1d` (a number and a unit).
pub fn parse_every(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, e.g. 24h, 30m"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    if secs == 0 {
        return Err(format!("{s:?}: must be more than nothing"));
    }
    Ok(Duration::from_secs(secs))
}

/// When the next copy is due after `now_ms`: periods of a day or more fall on `at` (China
/// time); shorter ones are counted from midnight.
pub fn next_run(now_ms: i64, every: Duration, at: NaiveTime) -> i64 {
    let tz = china_offset();
    let now = DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .with_timezone(&tz);
    let every_ms = every.as_millis().max(1000) as i64;
    let anchor_time = if every_ms >= 86_400_000 {
        at
    } else {
        NaiveTime::MIN
    };
    let anchor = tz
        .from_local_datetime(&now.date_naive().and_time(anchor_time))
        .single()
        .map_or(now_ms, |t| t.timestamp_millis());
    // The first anchor + k * every after now (the anchor of today may lie ahead).
    let mut next = anchor;
    if next > now_ms {
        // Go back whole periods while still ahead of now.
        next -= ((next - now_ms - 1) / every_ms) * every_ms;
    } else {
        next += ((now_ms - next) / every_ms + 1) * every_ms;
    }
    next
}

/// The name of a copy taken at `ms`.
pub fn name_at(ms: i64) -> String {
    let t = DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&china_offset());
    format!("{PREFIX}{}", t.format(STAMP))
}

/// When a copy of this name was taken (China local time), if it is one of ours.
fn taken(name: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(name.strip_prefix(PREFIX)?, STAMP).ok()
}

/// Which copies to remove: all but the newest of each of the `keep_daily` newest days and of
/// each of the `keep_weekly` newest ISO weeks. Names that are not copies are never touched.
pub fn to_remove(names: &[String], keep_daily: usize, keep_weekly: usize) -> Vec<String> {
    let mut copies: Vec<(NaiveDateTime, &String)> = names
        .iter()
        .filter_map(|n| taken(n).map(|t| (t, n)))
        .collect();
    copies.sort_by_key(|c| std::cmp::Reverse(c.0)); // newest first
    let mut keep: BTreeSet<&String> = BTreeSet::new();
    let mut days = BTreeSet::new();
    let mut weeks = BTreeSet::new();
    for (t, name) in &copies {
        let day = t.date();
        if days.len() < keep_daily && days.insert(day) {
            keep.insert(name);
        }
        let week = (day.iso_week().year(), day.iso_week().week());
        if weeks.len() < keep_weekly && weeks.insert(week) {
            keep.insert(name);
        }
    }
    copies
        .into_iter()
        .filter(|(_, n)| !keep.contains(n))
        .map(|(_, n)| n.clone())
        .collect()
}

/// The newest complete copy in `dir`, if any.
pub fn latest(dir: &Path) -> Option<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| taken(n).is_some() && dir.join(n).join("xuncha.sqlite3").is_file())
        .collect();
    names.sort();
    names.pop().map(|n| dir.join(n))
}

/// Takes one copy now and prunes the old ones. Returns the copy's directory.
pub fn run_once(
    data: &Path,
    schedule: &Schedule,
    now_ms: i64,
) -> Result<PathBuf, crate::ServerError> {
    std::fs::create_dir_all(&schedule.dir).map_err(|source| crate::ServerError::DataDir {
        path: schedule.dir.display().to_string(),
        source,
    })?;
    let previous = latest(&schedule.dir);
    let dest = schedule.dir.join(name_at(now_ms));
    crate::backup::backup_linking(data, &dest, previous.as_deref())?;
    let names: Vec<String> = std::fs::read_dir(&schedule.dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    for old in to_remove(&names, schedule.keep_daily, schedule.keep_weekly) {
        let _ = std::fs::remove_dir_all(schedule.dir.join(old));
    }
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ms of a China local time.
    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        china_offset()
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn periods_parse_with_their_units_and_nonsense_is_refused() {
        assert_eq!(parse_every("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_every("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_every("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_every("90s"), Ok(Duration::from_secs(90)));
        for bad in ["", "h", "24", "24x", "0h", "-1h"] {
            assert!(parse_every(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn daily_copies_fall_at_the_set_time_and_shorter_periods_from_midnight() {
        let two = NaiveTime::from_hms_opt(2, 0, 0).unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(
            next_run(at(2026, 12, 1, 1, 0), day, two),
            at(2026, 12, 1, 2, 0)
        );
        assert_eq!(
            next_run(at(2026, 12, 1, 2, 0), day, two),
            at(2026, 12, 2, 2, 0)
        );
        assert_eq!(
            next_run(at(2026, 12, 1, 15, 30), day, two),
            at(2026, 12, 2, 2, 0)
        );
        let six = Duration::from_secs(6 * 3600);
        assert_eq!(
            next_run(at(2026, 12, 1, 7, 0), six, two),
            at(2026, 12, 1, 12, 0)
        );
        assert_eq!(
            next_run(at(2026, 12, 1, 23, 0), six, two),
            at(2026, 12, 2, 0, 0)
        );
    }

    #[test]
    fn the_newest_of_each_recent_day_and_week_is_kept() {
        // Two copies a day for 30 days, the newest at 2026-12-30 (a Wednesday).
        let mut names = Vec::new();
        for d in 1..=30 {
            names.push(name_at(at(2026, 12, d, 2, 0)));
            names.push(name_at(at(2026, 12, d, 14, 0)));
        }
        names.push("notes.txt".to_owned());
        let removed = to_remove(&names, 7, 4);
        let kept: Vec<&String> = names.iter().filter(|n| !removed.contains(n)).collect();
        // The last seven days' afternoon copies, plus the newest of the weeks before, up to
        // four weeks (28-30 and 21-27 are among the days; then Sundays 20 and 13 December),
        // plus the file that is no copy.
        let expected: Vec<String> = [30, 29, 28, 27, 26, 25, 24, 20, 13]
            .iter()
            .map(|d| name_at(at(2026, 12, *d, 14, 0)))
            .chain(["notes.txt".to_owned()])
            .collect();
        let mut kept_sorted: Vec<String> = kept.into_iter().cloned().collect();
        kept_sorted.sort();
        let mut expected_sorted = expected;
        expected_sorted.sort();
        assert_eq!(kept_sorted, expected_sorted);
    }
}
