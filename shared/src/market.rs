//! Where a customer is: their time zone (their own, else inferred from the
//! phone number's country, else the seller's default), their market (country),
//! and the legal contact hours there, which no seller setting can loosen.
//!
//! Phone → country comes from libphonenumber's metadata (the `phonenumber`
//! crate, behind the `phone` feature: about 2 MB of wasm, so only the issuer
//! has it, and stores the country on the contact at intake); country → zones
//! from the IANA tz database's `zone.tab` (public domain, read at run time
//! beside the zone files: [`crate::zone::zone_tab`]), whose first zone per
//! country is the principal one.

use crate::zone::Zone;
use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calling_hours::{CallingHours, ZoneSource};
pub use crate::holidays::{easter_sunday, is_public_holiday};

/// `(country, zone)` pairs in zone.tab order, read from its text in place
/// (no copy per instance: a few hundred lines, scanned a few times a request).
fn zone_table() -> impl Iterator<Item = (&'static str, &'static str)> {
    crate::zone::zone_tab()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let country = cols.next()?;
            let _coords = cols.next()?;
            let zone = cols.next()?;
            Some((country, zone))
        })
}

/// The ISO 3166 country of an E.164 number ([`crate::phone`]).
pub fn phone_country(phone: &str) -> Option<String> {
    crate::phone::phone_country(phone).map(str::to_string)
}

/// The country a zone belongs to (zone.tab): the zone's own column found by
/// one substring search, then its line's first column (splitting every line
/// on the way cost more than the rest of a callback's planning together).
pub fn zone_country(zone: &str) -> Option<String> {
    let text = crate::zone::zone_tab();
    let needle = format!("\t{zone}");
    text.match_indices(&needle).find_map(|(at, _)| {
        let after = &text[at + needle.len()..];
        if !(after.is_empty() || after.starts_with(['\t', '\n'])) {
            return None; // a longer zone's name (`America/Indiana/…`)
        }
        let line = &text[text[..at].rfind('\n').map_or(0, |n| n + 1)..at];
        let (country, _coordinates) = line.split_once('\t')?;
        (!country.starts_with('#')).then(|| country.to_string())
    })
}

/// How far apart (in hours) a country's zones may be for its principal zone to
/// stand for all of it. Germany (Berlin, Busingen) or China (Shanghai, Urumqi)
/// qualify; the United States, Canada or Russia do not, and a guess there could
/// mean a call at 6 a.m., so those fall back to the seller's default.
const MAX_ZONE_SPREAD_HOURS: i32 = 2;

/// The principal zone of a country, when it can stand for the whole country.
pub fn country_zone(country: &str, at: DateTime<Utc>) -> Option<Zone> {
    let zones: Vec<Zone> = zone_table()
        .filter(|(c, _)| *c == country)
        .filter_map(|(_, z)| z.parse::<Zone>().ok())
        .collect();
    let offsets: Vec<i32> = zones
        .iter()
        .map(|tz| tz.offset_at(at).local_minus_utc())
        .collect();
    let spread = offsets.iter().max()? - offsets.iter().min()?;
    (spread <= MAX_ZONE_SPREAD_HOURS * 3600).then(|| zones[0].clone())
}

/// Where a customer is, and how we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub tz: Zone,
    pub source: ZoneSource,
    /// ISO 3166 country, from the phone number or else the zone.
    pub country: Option<String>,
}

/// Where a customer is, from their own zone, their phone's country (see
/// [`phone_country`]) and the seller's default zone.
pub fn locate(
    time_zone: Option<&str>,
    phone_country: Option<&str>,
    default_zone: &str,
    at: DateTime<Utc>,
) -> Location {
    let from_phone = phone_country.map(str::to_string);
    if let Some(tz) = time_zone.and_then(|z| z.parse::<Zone>().ok()) {
        let country = from_phone.or_else(|| zone_country(tz.name()));
        return Location {
            tz,
            source: ZoneSource::Customer,
            country,
        };
    }
    if let Some(country) = &from_phone {
        if let Some(tz) = country_zone(country, at) {
            return Location {
                tz,
                source: ZoneSource::PhoneCountry,
                country: from_phone,
            };
        }
    }
    let tz = default_zone.parse().unwrap_or_else(|_| Zone::utc());
    let country = from_phone.or_else(|| zone_country(tz.name()));
    Location {
        tz,
        source: ZoneSource::SellerDefault,
        country,
    }
}

/// The law's contact hours in a market, if it sets any we know of.
pub fn legal_hours(country: &str) -> Option<CallingHours> {
    let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("valid time");
    match country {
        // US TCPA: only 08:00–21:00 local time.
        "US" => Some(CallingHours {
            start: hm(8, 0),
            end: hm(21, 0),
            closed_sundays: false,
            holidays: None,
        }),
        // France: no marketing messages before 08:00, after 22:00, on Sundays or public holidays.
        "FR" => Some(CallingHours {
            start: hm(8, 0),
            end: hm(22, 0),
            closed_sundays: true,
            holidays: Some("FR".into()),
        }),
        _ => None,
    }
}

/// The hours that hold in a market: the seller's, narrowed by the law. A seller
/// setting can make them stricter, never looser.
pub fn effective_hours(seller: &CallingHours, country: Option<&str>) -> CallingHours {
    match country.and_then(legal_hours) {
        None => seller.clone(),
        Some(law) => CallingHours {
            start: seller.start.max(law.start),
            end: seller.end.min(law.end),
            closed_sundays: seller.closed_sundays || law.closed_sundays,
            holidays: seller.holidays.clone().or(law.holidays),
        },
    }
}

/// Seller-configured hours per market, stricter than the default (serde helper type).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MarketHours(pub std::collections::BTreeMap<String, CallingHours>);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_zone_in_zone_tab_has_its_lines_country() {
        let mut seen = 0;
        for (country, zone) in zone_table() {
            // zone.tab names a zone once: its line's country is the answer.
            assert_eq!(zone_country(zone).as_deref(), Some(country), "{zone}");
            seen += 1;
        }
        assert!(seen > 300, "zone.tab read: {seen} zones");
        assert_eq!(zone_country("America/Indiana"), None, "a prefix of zones");
        assert_eq!(zone_country("Europe/Berli"), None);
        assert_eq!(zone_country("Berlin"), None);
        assert_eq!(zone_country(""), None);
        assert_eq!(zone_country("Europe/Berlin").as_deref(), Some("DE"));
    }

    #[test]
    fn a_german_number_means_berlin() {
        let at = utc("2026-12-04T10:00:00Z");
        let l = locate(
            None,
            phone_country("+4915112345678").as_deref(),
            "Asia/Shanghai",
            at,
        );
        assert_eq!(l.tz.name(), "Europe/Berlin");
        assert_eq!(l.source, ZoneSource::PhoneCountry);
        assert_eq!(l.country.as_deref(), Some("DE"));
        assert_eq!(
            locate(None, phone_country("+8613812345678").as_deref(), "UTC", at)
                .tz
                .name(),
            "Asia/Shanghai"
        );
        assert_eq!(
            locate(None, phone_country("+919812345678").as_deref(), "UTC", at)
                .tz
                .name(),
            "Asia/Kolkata"
        );
    }

    #[test]
    fn wide_countries_fall_back_to_the_seller_default() {
        let at = utc("2026-12-04T10:00:00Z");
        let l = locate(
            None,
            phone_country("+14155550123").as_deref(),
            "Europe/Paris",
            at,
        );
        assert_eq!(l.tz.name(), "Europe/Paris");
        assert_eq!(l.source, ZoneSource::SellerDefault);
        assert_eq!(
            l.country.as_deref(),
            Some("US"),
            "the market is still known"
        );
    }

    #[test]
    fn an_invalid_or_missing_zone_falls_back_to_the_seller_default() {
        let at = utc("2026-12-04T10:00:00Z");
        let own = locate(Some("Asia/Tokyo"), None, "UTC", at);
        assert_eq!(
            (own.tz.name(), own.source),
            ("Asia/Tokyo", ZoneSource::Customer)
        );
        let bogus = locate(Some("bogus"), None, "Europe/Paris", at);
        assert_eq!(
            (bogus.tz.name(), bogus.source),
            ("Europe/Paris", ZoneSource::SellerDefault)
        );
        assert_eq!(
            locate(None, None, "Europe/Paris", at).source,
            ZoneSource::SellerDefault
        );
    }

    #[test]
    fn the_customers_own_zone_wins() {
        let l = locate(
            Some("America/New_York"),
            None,
            "UTC",
            utc("2026-12-04T10:00:00Z"),
        );
        assert_eq!(
            (l.tz.name(), l.source, l.country.as_deref()),
            ("America/New_York", ZoneSource::Customer, Some("US"))
        );
    }

    #[test]
    fn law_narrows_never_widens() {
        let loose = CallingHours {
            start: NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(23, 0, 0).unwrap(),
            closed_sundays: false,
            holidays: None,
        };
        let us = effective_hours(&loose, Some("US"));
        assert_eq!(
            (us.start.to_string(), us.end.to_string()),
            ("08:00:00".into(), "21:00:00".into())
        );
        let strict = effective_hours(&CallingHours::default(), Some("US"));
        assert_eq!(
            (strict.start.to_string(), strict.end.to_string()),
            ("09:00:00".into(), "21:00:00".into())
        );
        let fr = effective_hours(&loose, Some("FR"));
        assert!(fr.closed_sundays);
        assert_eq!(effective_hours(&loose, Some("DE")), loose);
    }

    #[test]
    fn easter_and_french_holidays() {
        assert_eq!(
            easter_sunday(2026),
            NaiveDate::from_ymd_opt(2026, 4, 5).unwrap()
        );
        assert_eq!(
            easter_sunday(2027),
            NaiveDate::from_ymd_opt(2027, 3, 28).unwrap()
        );
        assert_eq!(
            easter_sunday(2000),
            NaiveDate::from_ymd_opt(2000, 4, 23).unwrap()
        );
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        assert!(is_public_holiday("FR", d(7, 14)));
        assert!(is_public_holiday("FR", d(4, 6)), "Easter Monday 2026");
        assert!(is_public_holiday("FR", d(5, 14)), "Ascension 2026");
        assert!(is_public_holiday("FR", d(5, 25)), "Whit Monday 2026");
        assert!(!is_public_holiday("FR", d(7, 15)));
        assert!(!is_public_holiday("DE", d(7, 14)));
    }
}
