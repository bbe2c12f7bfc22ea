#![no_main]
//! Any webhook delivery (signature header and body): never a panic, a forged
//! signature never verifies, and any body either parses and validates or is
//! refused with an error.

use chrono::TimeZone;
use libfuzzer_sys::fuzz_target;
use revisit_shared::error::parse_json;
use revisit_shared::event::Event;
use revisit_shared::signing::verify_webhook;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (header, body) = data.split_at(split);
    let now = chrono::Utc.timestamp_opt(1_800_000_000, 0).unwrap();
    if let Ok(header) = std::str::from_utf8(header) {
        assert!(verify_webhook("fuzz-secret", Some(header), body, now).is_err(), "a forged signature verified");
    }
    if let Ok(event) = parse_json::<Event>(body) {
        let _ = event.validate();
    }
});
