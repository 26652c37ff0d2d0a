//! Hybrid logical clock (HLC) for ordering ops across devices whose wall clocks disagree.
//!
//! An [`Hlc`] packs 48 bits of milliseconds (47 used) since the Unix epoch and a 16-bit counter into a
//! `u64`, so comparing two stamps is comparing two integers. Ties between devices are broken
//! by device id where ops are ordered (see [`crate::op::OpKey`]). The HLC orders events only;
//! the device's own wall time is kept beside it as evidence.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A hybrid logical clock stamp: `physical_ms << 16 | counter`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc(u64);

const COUNTER_BITS: u32 = 16;
const COUNTER_MASK: u64 = (1 << COUNTER_BITS) - 1;
/// Largest physical time an HLC carries: 47 bits of milliseconds (about the year 6429), so a
/// stamp always fits a positive SQLite INTEGER and sorts there as it does here.
pub const MAX_PHYSICAL_MS: u64 = (1 << 47) - 1;

impl Hlc {
    /// Builds a stamp from its parts; `physical_ms` is clamped to [`MAX_PHYSICAL_MS`].
    pub fn new(physical_ms: u64, counter: u16) -> Self {
        Hlc((physical_ms.min(MAX_PHYSICAL_MS) << COUNTER_BITS) | u64::from(counter))
    }
    /// The stamp as one integer (its total order).
    pub fn as_u64(self) -> u64 {
        self.0
    }
    /// Rebuilds a stamp from [`Hlc::as_u64`].
    pub fn from_u64(raw: u64) -> Self {
        Hlc(raw)
    }
    /// Milliseconds since the Unix epoch.
    pub fn physical_ms(self) -> u64 {
        self.0 >> COUNTER_BITS
    }
    /// Logical counter within one millisecond.
    pub fn counter(self) -> u16 {
        (self.0 & COUNTER_MASK) as u16
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// On the wire an HLC is 16 lowercase hex digits: it sorts as text and survives JavaScript,
/// whose numbers lose precision above 2^53.
impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if text.len() != 16 {
            return Err(serde::de::Error::custom("an HLC is 16 hex digits"));
        }
        u64::from_str_radix(&text, 16)
            .map(Hlc)
            .map_err(|_| serde::de::Error::custom("an HLC is 16 hex digits"))
    }
}

/// The clock state of one replica. Pure: the caller passes the wall time in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HlcClock {
    last: Hlc,
}

impl HlcClock {
    /// Resumes a clock from the last stamp it issued or observed (kept in the store).
    pub fn resume(last: Hlc) -> Self {
        HlcClock { last }
    }

    /// The newest stamp issued or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// Stamps a local event. Never goes backwards, even when the wall clock does.
    pub fn tick(&mut self, wall_ms: u64) -> Hlc {
        let wall = wall_ms.min(MAX_PHYSICAL_MS);
        let last_ms = self.last.physical_ms();
        self.last = if wall > last_ms {
            Hlc::new(wall, 0)
        } else {
            bump(self.last)
        };
        self.last
    }

    /// Takes in a stamp seen from elsewhere so that later local events order after it.
    pub fn observe(&mut self, remote: Hlc) {
        if remote > self.last {
            self.last = remote;
        }
    }

    /// [`HlcClock::observe`], but never past `limit_ms`: a stamp from a clock far ahead (a
    /// phone set days forward, released from quarantine) must not drag this clock with it,
    /// or every op stamped here afterwards would be as far ahead and quarantined in turn.
    /// Ops stamped later here may then order before that one op; that is the price of its
    /// wrong clock, paid by it alone.
    pub fn observe_within(&mut self, remote: Hlc, limit_ms: u64) {
        self.observe(remote.min(Hlc::new(limit_ms, 0)));
    }
}

/// How far ahead of the wall clock a stamp may be before it is treated as wrong: the
/// server quarantines ops stamped further ahead, and no clock adopts a stamp beyond it.
pub const DEFAULT_MAX_CLOCK_AHEAD_MS: i64 = 12 * 3_600_000;

/// The latest stamp a clock showing `wall_ms` may adopt with `max_ahead_ms` of tolerance.
pub fn adoption_limit(wall_ms: i64, max_ahead_ms: i64) -> u64 {
    wall_ms.saturating_add(max_ahead_ms).max(0) as u64
}

/// The next stamp after `h`: counter + 1, carrying into the milliseconds when it is full.
fn bump(h: Hlc) -> Hlc {
    if h.counter() == u16::MAX {
        Hlc::new(h.physical_ms() + 1, 0)
    } else {
        Hlc(h.0 + 1)
    }
}

/// Where the wall time comes from; tests use a manual clock to simulate skew.
pub trait WallClock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis()
    }
}

/// A clock that shows what it is told; for tests, simulations and benchmarks.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// A clock showing `ms`.
    pub fn new(ms: i64) -> Self {
        ManualClock(std::sync::atomic::AtomicI64::new(ms))
    }
    /// Sets the time shown.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
    /// Moves the time shown by `delta_ms` (negative to go back).
    pub fn advance(&self, delta_ms: i64) {
        self.0
            .fetch_add(delta_ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl WallClock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// China Standard Time (UTC+8, no daylight saving): inspection dates and deadlines are local dates.
pub fn china_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("+8 h is a valid offset"))
}

/// The calendar date in China at `ms` since the Unix epoch.
pub fn china_date(ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&china_offset())
        .date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_is_monotonic_when_the_wall_clock_goes_back() {
        let mut c = HlcClock::default();
        let a = c.tick(10_000);
        let b = c.tick(5_000);
        let d = c.tick(10_000);
        assert!(a < b && b < d);
        assert_eq!(b.physical_ms(), 10_000);
        assert_eq!(d.counter(), 2);
    }

    #[test]
    fn observe_moves_past_a_remote_stamp() {
        let mut c = HlcClock::default();
        c.tick(1_000);
        let remote = Hlc::new(9_000, 3);
        c.observe(remote);
        assert!(c.tick(2_000) > remote);
    }

    #[test]
    fn a_stamp_far_ahead_is_adopted_only_up_to_the_limit() {
        let mut c = HlcClock::default();
        c.tick(1_000);
        c.observe_within(Hlc::new(500_000, 7), 10_000);
        assert_eq!(c.last(), Hlc::new(10_000, 0));
        // Within the limit a stamp is adopted as it is.
        c.observe_within(Hlc::new(9_000, 3), 20_000);
        assert_eq!(c.last(), Hlc::new(10_000, 0));
        c.observe_within(Hlc::new(15_000, 3), 20_000);
        assert_eq!(c.last(), Hlc::new(15_000, 3));
    }

    #[test]
    fn counter_overflow_carries_into_milliseconds() {
        let mut c = HlcClock::resume(Hlc::new(7, u16::MAX));
        let next = c.tick(0);
        assert_eq!((next.physical_ms(), next.counter()), (8, 0));
    }

    #[test]
    fn wire_form_round_trips_and_sorts_as_text() {
        let a = Hlc::new(1_700_000_000_000, 1);
        let b = Hlc::new(1_700_000_000_001, 0);
        let ja = serde_json::to_string(&a).unwrap();
        let jb = serde_json::to_string(&b).unwrap();
        assert!(ja < jb);
        assert_eq!(serde_json::from_str::<Hlc>(&ja).unwrap(), a);
        assert!(serde_json::from_str::<Hlc>("\"12\"").is_err());
        assert!(serde_json::from_str::<Hlc>("\"zzzzzzzzzzzzzzzz\"").is_err());
    }

    #[test]
    fn china_date_is_utc_plus_8() {
        // 2026-03-01 17:00 UTC is already 2 March in Beijing.
        let ms = 1_772_384_400_000;
        assert_eq!(china_date(ms), NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
    }
}
