//! Calling hours in the customer's own time zone: when a survey may be sent or a
//! callback made, and deadlines counted so they never land at night.
//!
//! Every local time goes through the IANA zone database (`zone::Zone`), so
//! daylight-saving changes and half-hour zones are handled by the data, not by
//! offsets we guess.

use crate::zone::Zone;
use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Daily calling window `[start, end)` in local time (default 09:00–21:30).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallingHours {
    #[serde(with = "hhmm")]
    pub start: NaiveTime,
    #[serde(with = "hhmm")]
    pub end: NaiveTime,
    /// No contact at all on Sundays.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed_sundays: bool,
    /// No contact on the public holidays of this country's calendar (e.g. "FR").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holidays: Option<String>,
}

impl Default for CallingHours {
    fn default() -> CallingHours {
        CallingHours {
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(21, 30, 0).unwrap(),
            closed_sundays: false,
            holidays: None,
        }
    }
}

/// A window of time, as `{"start", "end"}` in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl CallingHours {
    pub fn is_open(&self, at: DateTime<Utc>, tz: &Zone) -> bool {
        let local = tz.local(at);
        let time = local.time();
        !self.closed_on(local.date_naive()) && time >= self.start && time < self.end
    }

    /// `at` itself when open, else the next opening.
    pub fn next_opening(&self, at: DateTime<Utc>, tz: &Zone) -> DateTime<Utc> {
        if self.is_open(at, tz) {
            return at;
        }
        let local = tz.local(at);
        let mut day = if local.time() < self.start {
            local.date_naive()
        } else {
            local.date_naive() + Duration::days(1)
        };
        // Skip closed days (Sundays, public holidays): a fortnight is more than any calendar needs.
        for _ in 0..14 {
            if !self.closed_on(day) {
                break;
            }
            day += Duration::days(1);
        }
        local_instant(tz, day, self.start)
    }

    /// The window that is open now, or the next one: `[start, end)`.
    pub fn window_from(&self, at: DateTime<Utc>, tz: &Zone) -> Window {
        let start = self.next_opening(at, tz);
        let day = tz.local(start).date_naive();
        Window {
            start,
            end: local_instant(tz, day, self.end),
        }
    }

    /// A deadline `hours` after `arrival`, counted in calling hours: the clock
    /// starts at arrival, or at the next opening when it arrives outside the
    /// window, and a deadline that falls outside the window moves to the next
    /// opening.
    pub fn deadline(&self, arrival: DateTime<Utc>, hours: i64, tz: &Zone) -> DateTime<Utc> {
        let start = self.next_opening(arrival, tz);
        self.next_opening(start + Duration::hours(hours), tz)
    }
}

/// The instant of local `time` on `day` in `tz`. In a daylight-saving gap (the
/// time does not exist that day) the first instant after the gap is used; in an
/// overlap, the earlier one.
fn local_instant(tz: &Zone, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let mut naive: NaiveDateTime = day.and_time(time);
    for _ in 0..4 {
        match tz.from_local(naive) {
            LocalResult::Single(t) => return t,
            LocalResult::Ambiguous(a, _) => return a,
            LocalResult::None => naive += Duration::minutes(30),
        }
    }
    Utc.from_utc_datetime(&naive)
}

/// Where a customer's time zone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneSource {
    /// The customer record names the zone.
    Customer,
    /// Inferred from the phone number's country.
    PhoneCountry,
    /// Neither told us: the seller's default zone.
    SellerDefault,
}

mod hhmm {
    use super::*;

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::date_text::hour_minute(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let s = String::deserialize(d)?;
        crate::date_text::parse_hour_minute(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("expected a local time as HH:MM, got {s:?}"))
        })
    }
}

impl CallingHours {
    /// Whether a local date is closed for contact under these hours.
    pub fn closed_on(&self, date: NaiveDate) -> bool {
        (self.closed_sundays && date.weekday() == Weekday::Sun)
            || self
                .holidays
                .as_deref()
                .is_some_and(|c| crate::holidays::is_public_holiday(c, date))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn tz(name: &str) -> Zone {
        name.parse().unwrap()
    }

    #[test]
    fn open_and_closed_in_local_time() {
        let h = CallingHours::default();
        let berlin = tz("Europe/Berlin");
        assert!(h.is_open(utc("2026-12-04T10:00:00+01:00"), &berlin));
        assert!(!h.is_open(utc("2026-12-04T22:30:00+01:00"), &berlin));
        assert!(!h.is_open(utc("2026-12-04T21:30:00+01:00"), &berlin));
        assert!(!h.is_open(utc("2026-12-04T08:59:00+01:00"), &berlin));
        assert_eq!(
            h.next_opening(utc("2026-12-04T22:30:00+01:00"), &berlin),
            utc("2026-12-05T09:00:00+01:00")
        );
        assert_eq!(
            h.next_opening(utc("2026-12-05T03:00:00+01:00"), &berlin),
            utc("2026-12-05T09:00:00+01:00")
        );
    }

    #[test]
    fn missed_call_at_2140_is_due_at_ten_next_morning() {
        let h = CallingHours::default();
        let shanghai = tz("Asia/Shanghai");
        let due = h.deadline(utc("2026-12-04T21:40:00+08:00"), 1, &shanghai);
        assert_eq!(due, utc("2026-12-05T10:00:00+08:00"));
    }

    #[test]
    fn low_score_deadline_is_48h_when_both_ends_are_open() {
        let h = CallingHours::default();
        let berlin = tz("Europe/Berlin");
        let due = h.deadline(utc("2026-12-04T10:00:00+01:00"), 48, &berlin);
        assert_eq!(due, utc("2026-12-06T10:00:00+01:00"));
        // Arriving at 20:00, 48 h later is 20:00, still open.
        assert_eq!(
            h.deadline(utc("2026-12-04T20:00:00+01:00"), 48, &berlin),
            utc("2026-12-06T20:00:00+01:00")
        );
    }

    #[test]
    fn daylight_saving_and_half_hour_zones() {
        let h = CallingHours::default();
        let ny = tz("America/New_York");
        // 1 Nov 2026: clocks go back at 02:00. 22:00 EDT on 31 Oct → opens 09:00 EST.
        let next = h.next_opening(utc("2026-10-31T22:00:00-04:00"), &ny);
        assert_eq!(next, utc("2026-11-01T09:00:00-05:00"));
        let kolkata = tz("Asia/Kolkata");
        assert!(h.is_open(utc("2026-12-04T03:30:00Z"), &kolkata)); // 09:00 IST
        assert!(!h.is_open(utc("2026-12-04T03:29:00Z"), &kolkata));
        // A start time that falls in a spring-forward gap moves past the gap.
        let odd = CallingHours {
            start: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            end: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
            ..CallingHours::default()
        };
        let t = odd.next_opening(utc("2026-03-08T01:00:00-05:00"), &ny);
        assert_eq!(t, utc("2026-03-08T03:00:00-04:00"));
    }

    #[test]
    fn closed_days_are_skipped() {
        let fr = crate::market::effective_hours(&CallingHours::default(), Some("FR"));
        let paris = tz("Europe/Paris");
        // Saturday 12 Dec 2026, 22:30 → Sunday closed → Monday 09:00.
        assert_eq!(
            fr.next_opening(utc("2026-12-12T22:30:00+01:00"), &paris),
            utc("2026-12-14T09:00:00+01:00")
        );
        assert!(
            !fr.is_open(utc("2026-12-13T12:00:00+01:00"), &paris),
            "no contact on a Sunday"
        );
        // 24 Dec (Thu) 22:00 → 25 Dec holiday → 26 Dec (Sat) 09:00.
        assert_eq!(
            fr.next_opening(utc("2026-12-24T22:00:00+01:00"), &paris),
            utc("2026-12-26T09:00:00+01:00")
        );
    }

    #[test]
    fn window_from_gives_today_or_next() {
        let h = CallingHours::default();
        let berlin = tz("Europe/Berlin");
        let w = h.window_from(utc("2026-12-04T22:30:00+01:00"), &berlin);
        assert_eq!(w.start, utc("2026-12-05T09:00:00+01:00"));
        assert_eq!(w.end, utc("2026-12-05T21:30:00+01:00"));
    }
}
