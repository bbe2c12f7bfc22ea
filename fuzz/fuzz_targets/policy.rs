#![no_main]
//! Any text given as a survey policy or contact rules: never a panic, and what
//! parses plans surveys for any event without panicking.

use libfuzzer_sys::fuzz_target;
use revisit_shared::contact::ContactRules;
use revisit_shared::policy::SurveyPolicy;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(policy) = SurveyPolicy::from_json(text) {
            let again = serde_json_roundtrip(&policy);
            assert_eq!(again.plans, policy.plans);
        }
        let _ = ContactRules::from_json(text);
    }
});

fn serde_json_roundtrip(p: &SurveyPolicy) -> SurveyPolicy {
    SurveyPolicy::from_json(&revisit_shared::policy::to_json(p)).expect("a parsed policy re-parses")
}
