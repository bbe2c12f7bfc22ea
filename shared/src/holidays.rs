//! Public holiday calendars, for markets whose law closes them to contact.

use chrono::{Datelike, Duration, NaiveDate};

/// Public holidays of a country's calendar (France's, for its contact rules).
pub fn is_public_holiday(country: &str, date: NaiveDate) -> bool {
    match country {
        "FR" => {
            let fixed = [
                (1, 1),
                (5, 1),
                (5, 8),
                (7, 14),
                (8, 15),
                (11, 1),
                (11, 11),
                (12, 25),
            ];
            if fixed.contains(&(date.month(), date.day())) {
                return true;
            }
            let easter = easter_sunday(date.year());
            // Easter Monday, Ascension Thursday, Whit Monday.
            [1, 39, 50]
                .iter()
                .any(|d| easter + Duration::days(*d) == date)
        }
        _ => false,
    }
}

/// Gregorian Easter Sunday (the anonymous Meeus/Jones/Butcher algorithm).
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("a valid Easter date")
}
