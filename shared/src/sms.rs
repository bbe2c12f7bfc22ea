//! SMS size: which encoding a text needs and how many segments it takes.
//!
//! GSM-7 (3GPP TS 23.038 default alphabet) carries 160 characters in one
//! segment, 153 per part when split; characters of its extension table count
//! twice. Anything outside it needs UCS-2: 70 UTF-16 units in one segment, 67
//! per part. We report this honestly rather than pretend a text fits.

use serde::Serialize;

/// The GSM 03.38 default alphabet.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table (each takes an escape plus the character).
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SmsSize {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    pub segments: usize,
}

pub fn size(text: &str) -> SmsSize {
    let gsm: Option<usize> = text
        .chars()
        .map(|c| {
            if GSM7_BASIC.contains(c) {
                Some(1)
            } else if GSM7_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum();
    let (encoding, units, single, part) = match gsm {
        Some(septets) => (Encoding::Gsm7, septets, 160, 153),
        None => (Encoding::Ucs2, text.encode_utf16().count(), 70, 67),
    };
    let segments = if units <= single {
        1
    } else {
        units.div_ceil(part)
    };
    SmsSize {
        encoding,
        units,
        segments,
    }
}

/// The SMS for `link` in one segment if at all possible: the merchant's name is
/// shortened (or left out) until it fits; if even the bare text and link do
/// not fit, the honest size is returned with it.
pub fn fit(lang: crate::i18n::Lang, merchant: &str, link: &str) -> (String, SmsSize) {
    let texts = crate::i18n::texts(lang);
    let names: Vec<String> = {
        let chars: Vec<char> = merchant.chars().collect();
        let mut v: Vec<String> = (1..=chars.len())
            .rev()
            .map(|n| chars[..n].iter().collect::<String>().trim_end().to_string())
            .collect();
        v.dedup();
        v
    };
    for name in names.iter().map(String::as_str).chain([""]) {
        let lead = texts.sms.replace("{m}", name);
        let lead = lead.trim_start_matches([':', '：', ' ']).trim();
        let text = format!("{lead} {link}");
        let sz = size(&text);
        if sz.segments == 1 {
            return (text, sz);
        }
    }
    let text = format!("{} {link}", texts.sms.replace("{m}", ""));
    let sz = size(&text);
    (text, sz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{texts, ALL_LANGS};

    #[test]
    fn encodings_and_segments() {
        assert_eq!(
            size("Hello"),
            SmsSize {
                encoding: Encoding::Gsm7,
                units: 5,
                segments: 1
            }
        );
        assert_eq!(size(&"a".repeat(160)).segments, 1);
        assert_eq!(size(&"a".repeat(161)).segments, 2);
        assert_eq!(size("€").units, 2, "extension characters count twice");
        assert_eq!(size("回访").encoding, Encoding::Ucs2);
        assert_eq!(size(&"回".repeat(70)).segments, 1);
        assert_eq!(size(&"回".repeat(71)).segments, 2);
        assert_eq!(size("😀").units, 2, "a surrogate pair is two units");
    }

    #[test]
    fn every_locales_sms_with_its_link_fits_one_segment() {
        let link = "https://rv.example.com/s/EIrdhCzm6bEBHL_obz3kUcutWjO41E2fPQ";
        for lang in ALL_LANGS {
            let (text, s) = fit(lang, "Acme Appliances", link);
            assert_eq!(s.segments, 1, "{lang:?}: {text:?} is {s:?}");
            assert_eq!(s, size(&text), "the reported size is the text's");
            assert!(text.ends_with(link));
            assert!(!texts(lang).sms.is_empty());
        }
        // A very long link cannot fit: the size says so honestly.
        let long = format!("https://{}/s/x", "a".repeat(200));
        let (text, s) = fit(crate::i18n::Lang::ZhHans, "Acme", &long);
        assert!(s.segments > 1 && s == size(&text));
    }
}
