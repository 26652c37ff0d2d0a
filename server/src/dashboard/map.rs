//! The hazard map's index: every hazard as a small fixed-size point in memory, so a bounding
//! box with filters is answered by one scan (about 1 ms per 100,000 hazards) instead of a
//! query per pan. Kept up to date incrementally: after new ops, only the hazards they touch
//! are read again.
//!
//! The pure part ([`MapIndex::query`], [`MapIndex::overdue`], [`MapIndex::figures`]) works on
//! the points; [`MapIndex::refresh`] does the reading.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use xuncha_core::checklist::ChecklistKind;
use xuncha_core::hazard::HazardStatus;
use xuncha_core::model::Severity;

use crate::accounts::Scope;

/// No date.
const NONE: i32 = i32::MAX;

/// One hazard on the map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HazardPoint {
    /// WGS-84 latitude (f32: about 1 m, plenty for a marker).
    pub lat: f32,
    /// WGS-84 longitude.
    pub lon: f32,
    /// Status.
    pub status: HazardStatus,
    /// Severity.
    pub severity: Severity,
    /// Checklist the finding belongs to.
    pub kind: ChecklistKind,
    /// Grid number (index into the grid names).
    pub grid: u32,
    /// Day it was found (days since 1970-01-01).
    pub found_on: i32,
    /// Deadline, or [`NONE`].
    pub deadline: i32,
    /// Day it was closed, or [`NONE`].
    pub closed_on: i32,
    /// Escalation level.
    pub escalation: u8,
    /// Premises has a position (hazards of premises without one are listed, not drawn).
    pub located: bool,
}

impl HazardPoint {
    /// Days past the deadline on `today` (0 when not overdue or no longer open).
    pub fn overdue_days(&self, today: i32) -> i32 {
        if self.status.is_open() && self.deadline != NONE && today > self.deadline {
            today - self.deadline
        } else {
            0
        }
    }
}

/// What the overdue list is sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverdueSort {
    /// Days past the deadline.
    #[default]
    DaysOverdue,
    /// The deadline.
    Deadline,
    /// The grid's id.
    Grid,
    /// Suspected major or general.
    Severity,
    /// Escalation level.
    Escalation,
}

/// A sort key and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverdueOrder {
    /// Key.
    pub by: OverdueSort,
    /// Largest first.
    pub descending: bool,
}

impl Default for OverdueOrder {
    /// Most days overdue first.
    fn default() -> Self {
        OverdueOrder {
            by: OverdueSort::DaysOverdue,
            descending: true,
        }
    }
}

/// What the map shows.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Filter {
    /// Checklists (`fire_extinguisher`, `gas_alarm`, `e_bike`, `exits`); empty: all.
    #[serde(default)]
    pub kinds: Vec<ChecklistKind>,
    /// Statuses; empty: all open ones.
    #[serde(default)]
    pub statuses: Vec<HazardStatus>,
    /// Grids; empty: all the caller sees.
    #[serde(default)]
    pub grids: Vec<String>,
    /// Only overdue ones.
    #[serde(default)]
    pub overdue: bool,
    /// Found on or after.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Found on or before.
    #[serde(default)]
    pub to: Option<NaiveDate>,
}

/// A bounding box (south, west, north, east).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BBox {
    /// Southern edge.
    pub south: f64,
    /// Western edge.
    pub west: f64,
    /// Northern edge.
    pub north: f64,
    /// Eastern edge.
    pub east: f64,
}

impl BBox {
    /// Parses `west,south,east,north` (the order Leaflet's `toBBoxString` gives).
    pub fn parse(s: &str) -> Option<BBox> {
        let v: Vec<f64> = s
            .split(',')
            .map(|p| p.trim().parse().ok())
            .collect::<Option<_>>()?;
        let [west, south, east, north] = v[..] else {
            return None;
        };
        (v.iter().all(|x| x.is_finite()) && south <= north && west <= east).then_some(BBox {
            south,
            west,
            north,
            east,
        })
    }

    /// Whether the point lies in the box.
    pub fn contains(&self, p: &HazardPoint) -> bool {
        let (lat, lon) = (f64::from(p.lat), f64::from(p.lon));
        lat >= self.south && lat <= self.north && lon >= self.west && lon <= self.east
    }
}

/// A hazard drawn as its own marker.
#[derive(Clone, Debug, Serialize)]
pub struct Marker {
    /// Hazard id.
    pub id: String,
    /// Latitude.
    pub lat: f32,
    /// Longitude.
    pub lon: f32,
    /// Status.
    pub status: HazardStatus,
    /// Severity.
    pub severity: Severity,
    /// Checklist.
    pub kind: ChecklistKind,
    /// Days overdue.
    pub overdue_days: i32,
}

/// Many hazards drawn as one circle with a count.
#[derive(Clone, Debug, Serialize)]
pub struct Cluster {
    /// Mean latitude.
    pub lat: f64,
    /// Mean longitude.
    pub lon: f64,
    /// Hazards.
    pub count: u32,
    /// Of those overdue.
    pub overdue: u32,
    /// Of those suspected major.
    pub major: u32,
}

/// The map's answer for a bounding box.
#[derive(Clone, Debug, Serialize)]
pub struct MapAnswer {
    /// Hazards matching in the box.
    pub total: usize,
    /// Individual markers (when at most the limit match).
    pub markers: Vec<Marker>,
    /// Server-side clusters (when more match).
    pub clusters: Vec<Cluster>,
}

/// Hazards per checklist.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ByKind {
    /// 灭火器.
    pub fire_extinguisher: u32,
    /// 燃气报警.
    pub gas_alarm: u32,
    /// 电动自行车.
    pub e_bike: u32,
    /// 安全出口.
    pub exits: u32,
}

impl ByKind {
    fn add(&mut self, k: ChecklistKind) {
        match k {
            ChecklistKind::FireExtinguisher => self.fire_extinguisher += 1,
            ChecklistKind::GasAlarm => self.gas_alarm += 1,
            ChecklistKind::EBike => self.e_bike += 1,
            ChecklistKind::Exits => self.exits += 1,
        }
    }
}

/// Hazard figures of one grid over a period.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HazardFigures {
    /// Open now, by checklist.
    pub open_by_kind: ByKind,
    /// Open and past the deadline now.
    pub overdue: u32,
    /// Found in the period.
    pub found: u32,
    /// Of those, closed by now.
    pub closed: u32,
    /// Median days from found to closed, of hazards closed in the period.
    pub median_days_to_close: Option<f64>,
    /// Hazards closed in the period.
    pub closed_in_period: u32,
    /// Of those, closed by their deadline (or without one: fixed on the spot).
    pub closed_on_time: u32,
    /// Of those, by days from found to closed: at most 3, 4 to 7, 8 to 30, more.
    pub days_to_close: [u32; 4],
}

/// Upper bounds of the [`HazardFigures::days_to_close`] buckets (the last is open).
pub const CLOSE_DAY_BUCKETS: [i32; 3] = [3, 7, 30];

/// New, closed and overdue hazards of one week.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WeekFigures {
    /// Its Monday.
    pub week_of: String,
    /// Found in the week.
    pub found: u32,
    /// Closed in the week.
    pub closed: u32,
    /// Overdue at the week's end (by the deadline it has now).
    pub overdue: u32,
}

/// All hazards, in memory.
#[derive(Debug, Default)]
pub struct MapIndex {
    points: Vec<HazardPoint>,
    ids: Vec<String>,
    by_id: HashMap<String, u32>,
    grid_names: Vec<String>,
    grid_no: HashMap<String, u32>,
    /// Highest op id reflected.
    pub op_mark: i64,
}

/// Days since 1970-01-01 of a date.
pub fn day_number(d: NaiveDate) -> i32 {
    (d - NaiveDate::default()).num_days() as i32
}

/// The date of a day number.
pub fn date_of(day: i32) -> Option<NaiveDate> {
    (day != NONE)
        .then(|| NaiveDate::default().checked_add_signed(chrono::Duration::days(i64::from(day))))
        .flatten()
}

impl MapIndex {
    /// How many hazards it holds.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The grid of a point.
    pub fn grid_name(&self, p: &HazardPoint) -> &str {
        self.grid_names
            .get(p.grid as usize)
            .map_or("", String::as_str)
    }

    fn intern(&mut self, grid: &str) -> u32 {
        if let Some(n) = self.grid_no.get(grid) {
            return *n;
        }
        let n = self.grid_names.len() as u32;
        self.grid_names.push(grid.to_owned());
        self.grid_no.insert(grid.to_owned(), n);
        n
    }

    /// Adds or replaces a hazard.
    pub fn upsert(&mut self, id: &str, grid: &str, point: HazardPoint) {
        let point = HazardPoint {
            grid: self.intern(grid),
            ..point
        };
        match self.by_id.get(id) {
            Some(&i) => self.points[i as usize] = point,
            None => {
                self.by_id.insert(id.to_owned(), self.points.len() as u32);
                self.ids.push(id.to_owned());
                self.points.push(point);
            }
        }
    }

    /// The grid numbers a scope and filter allow (`None`: all).
    fn allowed_grids(&self, scope: &Scope, filter: &Filter) -> Option<Vec<bool>> {
        if matches!(scope, Scope::All) && filter.grids.is_empty() {
            return None;
        }
        Some(
            self.grid_names
                .iter()
                .map(|g| scope.covers(g) && (filter.grids.is_empty() || filter.grids.contains(g)))
                .collect(),
        )
    }

    /// Every hazard the scope and filter allow, as (id, point).
    pub fn matching<'a>(
        &'a self,
        scope: &Scope,
        filter: &Filter,
        today: i32,
    ) -> impl Iterator<Item = (&'a str, &'a HazardPoint)> + 'a {
        let grids = self.allowed_grids(scope, filter);
        let filter = filter.clone();
        let (from, to) = (
            filter.from.map_or(i32::MIN, day_number),
            filter.to.map_or(i32::MAX, day_number),
        );
        self.points
            .iter()
            .enumerate()
            .filter(move |(_, p)| {
                let filter = &filter;
                grids.as_ref().is_none_or(|g| g[p.grid as usize])
                    && (filter.kinds.is_empty() || filter.kinds.contains(&p.kind))
                    && (if filter.statuses.is_empty() {
                        p.status.is_open()
                    } else {
                        filter.statuses.contains(&p.status)
                    })
                    && (!filter.overdue || p.overdue_days(today) > 0)
                    && p.found_on >= from
                    && p.found_on <= to
            })
            .map(|(i, p)| (self.ids[i].as_str(), p))
    }

    /// The hazards in `bbox`: markers when at most `max_markers` match, else clusters on a
    /// `cells` x `cells` grid over the box.
    pub fn query(
        &self,
        scope: &Scope,
        filter: &Filter,
        bbox: BBox,
        today: i32,
        max_markers: usize,
        cells: u32,
    ) -> MapAnswer {
        let mut markers = Vec::new();
        let mut total = 0;
        // Cell sums: (lat sum, lon sum, count, overdue, major).
        let mut sums: HashMap<u32, (f64, f64, u32, u32, u32)> = HashMap::new();
        let cells = cells.max(1);
        let (h, w) = (
            (bbox.north - bbox.south).max(1e-9),
            (bbox.east - bbox.west).max(1e-9),
        );
        for (id, p) in self.matching(scope, filter, today) {
            if !p.located || !bbox.contains(p) {
                continue;
            }
            total += 1;
            if markers.len() < max_markers {
                markers.push(Marker {
                    id: id.to_owned(),
                    lat: p.lat,
                    lon: p.lon,
                    status: p.status,
                    severity: p.severity,
                    kind: p.kind,
                    overdue_days: p.overdue_days(today),
                });
            }
            let row =
                (((f64::from(p.lat) - bbox.south) / h * f64::from(cells)) as u32).min(cells - 1);
            let col =
                (((f64::from(p.lon) - bbox.west) / w * f64::from(cells)) as u32).min(cells - 1);
            let cell = sums.entry(row * cells + col).or_default();
            cell.0 += f64::from(p.lat);
            cell.1 += f64::from(p.lon);
            cell.2 += 1;
            cell.3 += u32::from(p.overdue_days(today) > 0);
            cell.4 += u32::from(p.severity == Severity::SuspectedMajor);
        }
        if total <= max_markers {
            return MapAnswer {
                total,
                markers,
                clusters: Vec::new(),
            };
        }
        let mut clusters: Vec<Cluster> = sums
            .into_values()
            .map(|(lat, lon, count, overdue, major)| Cluster {
                lat: lat / f64::from(count),
                lon: lon / f64::from(count),
                count,
                overdue,
                major,
            })
            .collect();
        clusters.sort_by_key(|c| std::cmp::Reverse(c.count));
        MapAnswer {
            total,
            markers: Vec::new(),
            clusters,
        }
    }

    /// One page of the overdue hazards in the order asked (ties: most days overdue, majors,
    /// id), and how many there are in all.
    pub fn overdue_page(
        &self,
        scope: &Scope,
        filter: &Filter,
        today: i32,
        order: OverdueOrder,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<(&str, &HazardPoint)>) {
        if order == OverdueOrder::default() {
            let (total, mut top) = self.overdue(scope, filter, today, offset + limit);
            return (total, top.split_off(offset.min(top.len())));
        }
        let mut all: Vec<(&str, &HazardPoint)> = self
            .matching(scope, filter, today)
            .filter(|(_, p)| p.overdue_days(today) > 0)
            .collect();
        let total = all.len();
        let ties = |p: &HazardPoint| {
            (
                std::cmp::Reverse(p.overdue_days(today)),
                p.severity != Severity::SuspectedMajor,
            )
        };
        all.sort_by(|(ia, a), (ib, b)| {
            let first = match order.by {
                OverdueSort::DaysOverdue => a.overdue_days(today).cmp(&b.overdue_days(today)),
                OverdueSort::Deadline => a.deadline.cmp(&b.deadline),
                OverdueSort::Grid => self.grid_name(a).cmp(self.grid_name(b)),
                OverdueSort::Severity => (a.severity == Severity::SuspectedMajor)
                    .cmp(&(b.severity == Severity::SuspectedMajor)),
                OverdueSort::Escalation => a.escalation.cmp(&b.escalation),
            };
            let first = if order.descending {
                first.reverse()
            } else {
                first
            };
            first.then(ties(a).cmp(&ties(b))).then(ia.cmp(ib))
        });
        let page = all.into_iter().skip(offset).take(limit).collect();
        (total, page)
    }

    /// Overdue hazards, most days overdue first (majors first among equals), at most `limit`,
    /// and how many there are in all.
    pub fn overdue(
        &self,
        scope: &Scope,
        filter: &Filter,
        today: i32,
        limit: usize,
    ) -> (usize, Vec<(&str, &HazardPoint)>) {
        let mut all: Vec<(&str, &HazardPoint)> = self
            .matching(scope, filter, today)
            .filter(|(_, p)| p.overdue_days(today) > 0)
            .collect();
        let total = all.len();
        let key = |p: &HazardPoint| {
            (
                std::cmp::Reverse(p.overdue_days(today)),
                p.severity != Severity::SuspectedMajor,
            )
        };
        if all.len() > limit {
            all.select_nth_unstable_by_key(limit, |(_, p)| key(p));
            all.truncate(limit);
        }
        all.sort_by_key(|(id, p)| (key(p), *id));
        (total, all)
    }

    /// Hazard figures for hazards found in `[from, to]`, grouped by `group_of(grid)` (the
    /// grid itself, or its community).
    pub fn figures(
        &self,
        scope: &Scope,
        from: NaiveDate,
        to: NaiveDate,
        today: i32,
        group_of: &dyn Fn(&str) -> String,
    ) -> BTreeMap<String, HazardFigures> {
        let (from, to) = (day_number(from), day_number(to));
        let everything = Filter {
            statuses: vec![
                HazardStatus::Found,
                HazardStatus::Rectifying,
                HazardStatus::AwaitingRecheck,
                HazardStatus::AwaitingApproval,
                HazardStatus::Closed,
            ],
            ..Filter::default()
        };
        let mut out: BTreeMap<String, HazardFigures> = BTreeMap::new();
        let mut close_days: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (_, p) in self.matching(scope, &everything, today) {
            let grid = group_of(self.grid_name(p));
            let f = out.entry(grid.clone()).or_default();
            if p.status.is_open() {
                f.open_by_kind.add(p.kind);
                f.overdue += u32::from(p.overdue_days(today) > 0);
            }
            if (from..=to).contains(&p.found_on) {
                f.found += 1;
                f.closed += u32::from(p.status == HazardStatus::Closed);
            }
            if p.status == HazardStatus::Closed && (from..=to).contains(&p.closed_on) {
                let days = p.closed_on - p.found_on;
                f.closed_in_period += 1;
                f.closed_on_time += u32::from(p.deadline == NONE || p.closed_on <= p.deadline);
                let bucket = CLOSE_DAY_BUCKETS
                    .iter()
                    .position(|max| days <= *max)
                    .unwrap_or(CLOSE_DAY_BUCKETS.len());
                f.days_to_close[bucket] += 1;
                close_days.entry(grid).or_default().push(days);
            }
        }
        for (grid, mut days) in close_days {
            days.sort_unstable();
            let n = days.len();
            let median = if n % 2 == 1 {
                f64::from(days[n / 2])
            } else {
                f64::from(days[n / 2 - 1] + days[n / 2]) / 2.0
            };
            if let Some(f) = out.get_mut(&grid) {
                f.median_days_to_close = Some(median);
            }
        }
        out
    }

    /// New, closed and overdue hazards per week (Monday to Sunday), for the `weeks` weeks up
    /// to the one holding `last_day`, oldest first. Withdrawn hazards do not count.
    pub fn weekly(&self, scope: &Scope, last_day: NaiveDate, weeks: u32) -> Vec<WeekFigures> {
        use chrono::Datelike;
        let weeks = weeks.clamp(1, 104) as i32;
        let last_monday = day_number(last_day) - last_day.weekday().num_days_from_monday() as i32;
        let first = last_monday - 7 * (weeks - 1);
        let mut out: Vec<WeekFigures> = (0..weeks)
            .map(|w| WeekFigures {
                week_of: date_of(first + 7 * w)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                ..WeekFigures::default()
            })
            .collect();
        let week_of = |day: i32| {
            (day != NONE && day >= first && day < first + 7 * weeks)
                .then(|| ((day - first) / 7) as usize)
        };
        let everything = Filter {
            statuses: vec![
                HazardStatus::Found,
                HazardStatus::Rectifying,
                HazardStatus::AwaitingRecheck,
                HazardStatus::AwaitingApproval,
                HazardStatus::Closed,
            ],
            ..Filter::default()
        };
        for (_, p) in self.matching(scope, &everything, i32::MIN) {
            if let Some(w) = week_of(p.found_on) {
                out[w].found += 1;
            }
            if p.status == HazardStatus::Closed
                && let Some(w) = week_of(p.closed_on)
            {
                out[w].closed += 1;
            }
            if p.deadline == NONE {
                continue;
            }
            // Overdue at a week's end: found by then, past its deadline, not yet closed.
            for (w, week) in out.iter_mut().enumerate() {
                let end = first + 7 * w as i32 + 6;
                let open_then = p.status != HazardStatus::Closed || p.closed_on > end;
                week.overdue += u32::from(p.found_on <= end && p.deadline < end && open_then);
            }
        }
        out
    }

    /// Reads the hazards touched by ops after [`MapIndex::op_mark`] (all of them the first
    /// time) and moves the mark to the newest op.
    pub fn refresh(&mut self, conn: &Connection) -> rusqlite::Result<usize> {
        let newest: i64 = conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM ops")?
            .query_row([], |r| r.get(0))?;
        if newest == self.op_mark {
            return Ok(0);
        }
        let select = "SELECT h.id, h.status, h.severity, h.deadline,
                    json_extract(h.state, '$.origin.finding.code'),
                    json_extract(h.state, '$.origin.found_on'),
                    json_extract(h.state, '$.escalation'),
                    json_extract(h.state, '$.closed_by.hlc'),
                    json_extract(loc.value, '$.lat'), json_extract(loc.value, '$.lon'),
                    json_extract(g.value, '$')
             FROM hazards h
             LEFT JOIN premises_fields loc ON loc.premises_id = h.premises_id AND loc.field = 'location'
             LEFT JOIN premises_fields g ON g.premises_id = h.premises_id AND g.field = 'grid_id'";
        let sql = if self.op_mark == 0 {
            select.to_owned()
        } else {
            format!(
                "{select} WHERE h.id IN (
                    SELECT json_extract(o.data, '$.hazard_id') FROM ops o
                    WHERE o.id > ?1 AND o.kind = 'hazard_event'
                    UNION
                    SELECT h2.id FROM hazards h2 WHERE h2.premises_id IN (
                        SELECT json_extract(o.data, '$.premises_id') FROM ops o
                        WHERE o.id > ?1 AND o.kind IN ('inspection', 'premises_patch')))"
            )
        };
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = if self.op_mark == 0 {
            stmt.query([])?
        } else {
            stmt.query([self.op_mark])?
        };
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let status: String = r.get(1)?;
            let severity: String = r.get(2)?;
            let deadline: Option<String> = r.get(3)?;
            let code: Option<String> = r.get(4)?;
            let found_on: Option<String> = r.get(5)?;
            let escalation: Option<i64> = r.get(6)?;
            let closed_hlc: Option<String> = r.get(7)?;
            let lat: Option<f64> = r.get(8)?;
            let lon: Option<f64> = r.get(9)?;
            let grid: Option<String> = r.get(10)?;
            let parse_day = |s: Option<&str>| {
                s.and_then(|s| s.parse::<NaiveDate>().ok())
                    .map_or(NONE, day_number)
            };
            let closed_on = closed_hlc
                .and_then(|h| u64::from_str_radix(&h, 16).ok())
                .map(xuncha_core::clock::Hlc::from_u64)
                .map_or(NONE, |h| {
                    day_number(xuncha_core::clock::china_date(h.physical_ms() as i64))
                });
            let point = HazardPoint {
                lat: lat.unwrap_or(0.0) as f32,
                lon: lon.unwrap_or(0.0) as f32,
                status: serde_json::from_value(serde_json::Value::String(status))
                    .unwrap_or(HazardStatus::Found),
                severity: serde_json::from_value(serde_json::Value::String(severity))
                    .unwrap_or(Severity::General),
                kind: kind_of(code.as_deref().unwrap_or("")),
                grid: 0,
                found_on: parse_day(found_on.as_deref()),
                deadline: parse_day(deadline.as_deref()),
                closed_on,
                escalation: escalation.unwrap_or(0).clamp(0, 255) as u8,
                located: lat.is_some() && lon.is_some(),
            };
            self.upsert(&id, grid.as_deref().unwrap_or(""), point);
            n += 1;
        }
        self.op_mark = newest;
        Ok(n)
    }
}

/// The checklist of an item code.
pub fn kind_of(code: &str) -> ChecklistKind {
    ChecklistKind::ALL
        .into_iter()
        .find(|k| code.starts_with(k.code_prefix()))
        .unwrap_or(ChecklistKind::FireExtinguisher)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(lat: f32, lon: f32, status: HazardStatus, deadline: i32) -> HazardPoint {
        HazardPoint {
            lat,
            lon,
            status,
            severity: Severity::General,
            kind: ChecklistKind::Exits,
            grid: 0,
            found_on: 100,
            deadline,
            closed_on: NONE,
            escalation: 0,
            located: true,
        }
    }

    fn index(n: usize) -> MapIndex {
        let mut idx = MapIndex::default();
        for i in 0..n {
            let lat = 31.0 + (i % 100) as f32 * 0.001;
            let lon = 121.0 + (i / 100) as f32 * 0.001;
            idx.upsert(
                &format!("h{i}"),
                if i % 2 == 0 { "g1" } else { "g2" },
                point(lat, lon, HazardStatus::Rectifying, 100 + (i % 30) as i32),
            );
        }
        idx
    }

    const WORLD: BBox = BBox {
        south: -90.0,
        west: -180.0,
        north: 90.0,
        east: 180.0,
    };

    #[test]
    fn few_hazards_come_as_markers_and_many_as_clusters_that_add_up() {
        let idx = index(5_000);
        let all = Filter::default();
        let few = idx.query(
            &Scope::All,
            &all,
            BBox {
                south: 31.0,
                west: 121.0,
                north: 31.0095,
                east: 121.0005,
            },
            0,
            100,
            8,
        );
        assert_eq!(
            (few.total, few.markers.len(), few.clusters.len()),
            (10, 10, 0)
        );
        let area = BBox {
            south: 30.99,
            west: 120.99,
            north: 31.11,
            east: 121.06,
        };
        let many = idx.query(&Scope::All, &all, area, 0, 100, 8);
        assert_eq!((many.total, many.markers.len()), (5_000, 0));
        assert!(many.clusters.len() <= 64 && many.clusters.len() > 1);
        assert_eq!(
            many.clusters
                .iter()
                .map(|c| c.count as usize)
                .sum::<usize>(),
            5_000
        );
        // A scope of one grid halves it.
        let g1 = Scope::Grids(["g1".to_owned()].into());
        assert_eq!(idx.query(&g1, &all, WORLD, 0, 100, 8).total, 2_500);
    }

    #[test]
    fn overdue_lists_the_latest_first_and_counts_all() {
        let idx = index(300);
        let today = 120;
        let (total, top) = idx.overdue(&Scope::All, &Filter::default(), today, 5);
        // Deadlines 100..=129: those before 120 are overdue, ten of each per 30.
        assert_eq!(total, 200);
        assert_eq!(top.len(), 5);
        assert!(top.iter().all(|(_, p)| p.overdue_days(today) == 20));
        // Updating a hazard replaces it.
        let mut idx = idx;
        idx.upsert("h0", "g1", point(31.0, 121.0, HazardStatus::Closed, 100));
        assert_eq!(
            idx.overdue(&Scope::All, &Filter::default(), today, 5).0,
            199
        );
        assert_eq!(idx.len(), 300);
    }

    #[test]
    fn figures_give_rates_and_median_days_to_close() {
        let mut idx = MapIndex::default();
        for (i, days) in [2, 4, 9].iter().enumerate() {
            let mut p = point(31.0, 121.0, HazardStatus::Closed, NONE);
            p.closed_on = p.found_on + days;
            idx.upsert(&format!("c{i}"), "g1", p);
        }
        idx.upsert(
            "open",
            "g1",
            point(31.0, 121.0, HazardStatus::Rectifying, 90),
        );
        let from = date_of(90).unwrap();
        let to = date_of(130).unwrap();
        let f = idx.figures(&Scope::All, from, to, 120, &|g| g.to_owned());
        let g1 = &f["g1"];
        assert_eq!((g1.found, g1.closed, g1.overdue), (4, 3, 1));
        assert_eq!(g1.median_days_to_close, Some(4.0));
        assert_eq!(g1.open_by_kind.exits, 1);
        // No deadlines (fixed on the spot): on time; by days: 2 | 4 | 9.
        assert_eq!((g1.closed_in_period, g1.closed_on_time), (3, 3));
        assert_eq!(g1.days_to_close, [1, 1, 1, 0]);
    }

    #[test]
    fn the_overdue_list_sorts_and_pages_by_any_key_the_same_as_its_first_page() {
        let idx = index(300);
        let today = 200;
        let default = idx.overdue(&Scope::All, &Filter::default(), today, 300).1;
        let paged: Vec<&str> = (0..6)
            .flat_map(|page| {
                idx.overdue_page(
                    &Scope::All,
                    &Filter::default(),
                    today,
                    OverdueOrder::default(),
                    page * 50,
                    50,
                )
                .1
            })
            .map(|(id, _)| id)
            .collect();
        assert_eq!(paged, default.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        for by in [
            OverdueSort::Deadline,
            OverdueSort::Escalation,
            OverdueSort::DaysOverdue,
        ] {
            for descending in [false, true] {
                let order = OverdueOrder { by, descending };
                let (total, all) =
                    idx.overdue_page(&Scope::All, &Filter::default(), today, order, 0, 1000);
                assert_eq!(total, all.len());
                let keys: Vec<i32> = all
                    .iter()
                    .map(|(_, p)| match by {
                        OverdueSort::Deadline => p.deadline,
                        OverdueSort::Escalation => i32::from(p.escalation),
                        _ => p.overdue_days(today),
                    })
                    .collect();
                let mut sorted = keys.clone();
                sorted.sort_unstable();
                if descending {
                    sorted.reverse();
                }
                assert_eq!(keys, sorted, "{order:?}");
                let (_, second) =
                    idx.overdue_page(&Scope::All, &Filter::default(), today, order, 50, 50);
                assert_eq!(second, all[50..100.min(all.len())].to_vec());
            }
        }
    }

    #[test]
    fn closed_late_is_not_on_time() {
        let mut idx = MapIndex::default();
        let mut p = point(31.0, 121.0, HazardStatus::Closed, 105);
        p.closed_on = 140;
        idx.upsert("late", "g1", p);
        let f = idx.figures(
            &Scope::All,
            date_of(90).unwrap(),
            date_of(150).unwrap(),
            150,
            &|g| g.to_owned(),
        );
        assert_eq!((f["g1"].closed_in_period, f["g1"].closed_on_time), (1, 0));
        assert_eq!(f["g1"].days_to_close, [0, 0, 0, 1]);
    }

    #[test]
    fn weekly_figures_count_new_closed_and_overdue_at_each_weeks_end() {
        // Day 0 (1970-01-01) was a Thursday: day 4 a Monday.
        let monday = 4 + 7 * 20;
        let mut idx = MapIndex::default();
        // Found in week 0 with its deadline in week 1, closed in week 3: overdue at the end
        // of weeks 1 and 2.
        let mut late = point(31.0, 121.0, HazardStatus::Closed, monday + 8);
        late.found_on = monday + 1;
        late.closed_on = monday + 7 * 3 + 2;
        idx.upsert("late", "g1", late);
        // Found in week 2, still open, deadline in week 3: overdue at the end of week 3.
        let mut open = point(31.0, 121.0, HazardStatus::Rectifying, monday + 7 * 3);
        open.found_on = monday + 7 * 2;
        idx.upsert("open", "g1", open);
        // Withdrawn: never counted.
        let mut gone = point(31.0, 121.0, HazardStatus::Withdrawn, monday + 2);
        gone.found_on = monday;
        idx.upsert("gone", "g1", gone);
        let weeks = idx.weekly(&Scope::All, date_of(monday + 7 * 3 + 4).unwrap(), 4);
        let found: Vec<u32> = weeks.iter().map(|w| w.found).collect();
        let closed: Vec<u32> = weeks.iter().map(|w| w.closed).collect();
        let overdue: Vec<u32> = weeks.iter().map(|w| w.overdue).collect();
        assert_eq!(found, [1, 0, 1, 0]);
        assert_eq!(closed, [0, 0, 0, 1]);
        assert_eq!(overdue, [0, 1, 1, 1]);
        assert_eq!(weeks[0].week_of, date_of(monday).unwrap().to_string());
    }

    #[test]
    fn a_bbox_parses_from_leaflet_order_and_bad_ones_are_refused() {
        assert_eq!(
            BBox::parse("121.4,31.2,121.5,31.3"),
            Some(BBox {
                south: 31.2,
                west: 121.4,
                north: 31.3,
                east: 121.5
            })
        );
        for bad in ["", "1,2,3", "121.5,31.2,121.4,31.3", "a,b,c,d", "NaN,1,2,3"] {
            assert_eq!(BBox::parse(bad), None, "{bad}");
        }
    }
}
