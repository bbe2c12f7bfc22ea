//! Dates and times as the app writes them (keys, pages, reports): each a
//! fixed pattern written from its numbers, so no component carries chrono's
//! format-string interpreter (about 25 KB of every `.wasm`, against the
//! 1 MiB budget). The tests check each against chrono's own formatting.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Timelike};

/// `20261201`: a day as keys name it.
pub fn compact_day(d: NaiveDate) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

/// `2026120109`: an hour as keys name it.
pub fn compact_hour<Tz: TimeZone>(t: &DateTime<Tz>) -> String {
    format!("{}{:02}", compact_day(t.date_naive()), t.hour())
}

/// `202612010930`: a minute as keys name it.
pub fn compact_minute<Tz: TimeZone>(t: &DateTime<Tz>) -> String {
    format!(
        "{}{:02}{:02}",
        compact_day(t.date_naive()),
        t.hour(),
        t.minute()
    )
}

/// `2026-12-01`.
pub fn day(d: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// `2026-12-01 09:30`, in the time's own zone.
pub fn minute<Tz: TimeZone>(t: &DateTime<Tz>) -> String {
    format!("{} {}", day(t.date_naive()), hour_minute(t.time()))
}

/// `12-01 09:30`, in the time's own zone.
pub fn month_day_minute<Tz: TimeZone>(t: &DateTime<Tz>) -> String {
    format!("{:02}-{:02} {}", t.month(), t.day(), hour_minute(t.time()))
}

/// `09:30`.
pub fn hour_minute(t: NaiveTime) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// A local time written `HH:MM` (`9:30` too), as policies give calling
/// hours; `None` for anything else.
pub fn parse_hour_minute(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.split_once(':')?;
    let digits = |x: &str, len: std::ops::RangeInclusive<usize>| {
        (len.contains(&x.len()) && x.bytes().all(|b| b.is_ascii_digit())).then(|| x.parse().ok())?
    };
    NaiveTime::from_hms_opt(digits(h, 1..=2)?, digits(m, 2..=2)?, 0)
}

/// `2026-W49`: the ISO week (and its year, which may differ from the day's).
pub fn iso_week(d: NaiveDate) -> String {
    let w = d.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, Utc};

    #[test]
    fn each_pattern_writes_what_chrono_writes() {
        let times: Vec<DateTime<Utc>> = [
            "2026-12-01T09:05:00Z",
            "2026-01-01T00:00:00Z",
            "2027-01-03T23:59:00Z",
            "2024-12-30T12:30:00Z",
            "2020-02-29T07:08:00Z",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let tokyo = FixedOffset::east_opt(9 * 3600).unwrap();
        for t in &times {
            let d = t.date_naive();
            assert_eq!(compact_day(d), d.format("%Y%m%d").to_string());
            assert_eq!(compact_hour(t), t.format("%Y%m%d%H").to_string());
            assert_eq!(compact_minute(t), t.format("%Y%m%d%H%M").to_string());
            assert_eq!(day(d), d.format("%Y-%m-%d").to_string());
            assert_eq!(minute(t), t.format("%Y-%m-%d %H:%M").to_string());
            let local = t.with_timezone(&tokyo);
            assert_eq!(minute(&local), local.format("%Y-%m-%d %H:%M").to_string());
            assert_eq!(
                month_day_minute(&local),
                local.format("%m-%d %H:%M").to_string()
            );
            assert_eq!(hour_minute(t.time()), t.format("%H:%M").to_string());
            assert_eq!(iso_week(d), d.format("%G-W%V").to_string());
        }
    }

    #[test]
    fn hours_and_minutes_are_read_as_chrono_reads_them() {
        for s in ["09:30", "9:30", "00:00", "23:59", "21:30"] {
            let chrono = NaiveTime::parse_from_str(s, "%H:%M").ok();
            assert_eq!(parse_hour_minute(s), chrono, "{s}");
            assert!(chrono.is_some());
        }
        for s in [
            "24:00", "12:60", "12", "12:5", "ab:cd", "", "12:30:00", "+1:30", " 9:30",
        ] {
            assert_eq!(parse_hour_minute(s), None, "{s}");
        }
    }
}
