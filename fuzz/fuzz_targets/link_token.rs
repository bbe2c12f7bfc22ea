#![no_main]
//! Any string given as a survey-link token: never a panic, and only genuine
//! tokens decode (then they re-encode to themselves).

use libfuzzer_sys::fuzz_target;
use revisit_shared::signing::LinkToken;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(token) = LinkToken::decode(s, "fuzz-secret") {
            assert_eq!(token.encode("fuzz-secret"), s);
        }
    }
});
