//! The country of a phone number, as libphonenumber would say, from a table
//! that `build.rs` generates out of libphonenumber's metadata (calling codes,
//! and for shared calling codes the first national digits that decide the
//! country, such as the North American area codes): a few KB, no regular
//! expressions at run time.

mod table {
    include!(concat!(env!("OUT_DIR"), "/phone_regions.rs"));
}

/// The ISO 3166 country of an international (E.164) number such as
/// `+1 204 555 0100`; `None` when it is not one, or its calling code is not a
/// country's (`+800`, …). Spaces, dashes, dots and brackets are ignored.
pub fn phone_country(phone: &str) -> Option<&'static str> {
    let rest = phone.trim().strip_prefix('+')?;
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
    {
        return None;
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    // Calling codes are prefix-free: at most one of the first 1–3 digits is one.
    let (code, main) = (1..=3.min(digits.len())).find_map(|n| {
        let code: u16 = digits[..n].parse().ok()?;
        let i = table::CALLING_CODES
            .binary_search_by_key(&code, |(c, _)| *c)
            .ok()?;
        Some((code, table::CALLING_CODES[i].1))
    })?;
    let national = &digits[code.to_string().len()..];
    if national.len() < 4 || national.len() > 14 {
        return None;
    }
    let shared = table::SHARED_PREFIXES
        .iter()
        .filter(|(c, prefix, _)| *c == code && national.starts_with(prefix))
        .max_by_key(|(_, prefix, _)| prefix.len())
        .map(|(_, _, region)| *region);
    let region = shared.unwrap_or(main);
    (region != "001").then_some(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_of_known_numbers() {
        assert_eq!(phone_country("+49 30 1234567"), Some("DE"));
        assert_eq!(phone_country("+12025550123"), Some("US"));
        assert_eq!(phone_country("+1 204 555 0100"), Some("CA"));
        assert_eq!(phone_country("+1 (268) 464-1234"), Some("AG"));
        assert_eq!(phone_country("+7 701 123 4567"), Some("KZ"));
        assert_eq!(phone_country("+7 912 345 6789"), Some("RU"));
        assert_eq!(phone_country("+86 138 0013 8000"), Some("CN"));
        assert_eq!(phone_country("+44 1481 256789"), Some("GG"));
        assert_eq!(phone_country("+44 20 7946 0958"), Some("GB"));
    }

    #[test]
    fn not_international_numbers() {
        assert_eq!(phone_country("030 1234567"), None);
        assert_eq!(phone_country("+800 1234 5678"), None);
        assert_eq!(phone_country("+49 30 abc"), None);
        assert_eq!(phone_country("+"), None);
        assert_eq!(phone_country("+999 1234567"), None);
    }

    /// The table against the whole library: numbers built from every region's
    /// patterns' example numbers with their last digits varied, kept when the
    /// library calls them valid, must get the library's country.
    #[test]
    fn the_table_agrees_with_libphonenumber() {
        let mut checked = 0;
        let mut disagree = Vec::new();
        let mut seed: u64 = 0x5eed;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for code in 1..1000u16 {
            for len in 4..=12usize {
                for _ in 0..300 {
                    let national: String = (0..len)
                        .map(|_| char::from(b'0' + (next() % 10) as u8))
                        .collect();
                    let e164 = format!("+{code}{national}");
                    let Ok(parsed) = phonenumber::parse(None, &e164) else {
                        continue;
                    };
                    if !phonenumber::is_valid(&parsed) || parsed.code().value() != code {
                        continue;
                    }
                    // The library calls some Italian numbers with a leading
                    // zero valid yet names no country for them (it drops the
                    // zero when it looks the country up): nothing to compare.
                    let Some(theirs) = parsed.country().id().map(|id| id.as_ref().to_string())
                    else {
                        continue;
                    };
                    let theirs = Some(theirs);
                    checked += 1;
                    if phone_country(&e164).map(str::to_string) != theirs {
                        disagree.push((e164, theirs));
                    }
                }
            }
        }
        assert!(
            checked > 20_000,
            "only {checked} valid numbers in the sample"
        );
        assert!(
            disagree.len() * 1000 <= checked,
            "{} of {checked} disagree, e.g. {:?}",
            disagree.len(),
            &disagree[..disagree.len().min(20)]
        );
    }
}
