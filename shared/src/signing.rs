//! Signatures and credentials: webhook signatures, survey-link tokens, bearer
//! tokens, and the ids derived from inputs (so that retries name the same thing).
//!
//! All comparisons of secrets are constant-time (`hmac`'s `verify_*`, `subtle`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
pub use crate::model::derive_id;
use crate::model::Channel;

type HmacSha256 = Hmac<Sha256>;

/// The fewest bytes a secret may have (`webhook_secret`, `link_secret`, `admin_token`).
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a secret is refused, in words that say how to make a good one.
pub fn check_secret(name: &str, value: &str) -> Result<(), String> {
    if value.len() >= MIN_SECRET_BYTES {
        return Ok(());
    }
    let what = if value.is_empty() {
        "is empty".to_string()
    } else {
        format!("has only {} bytes", value.len())
    };
    Err(format!(
        "the `{name}` secret {what}; it needs at least {MIN_SECRET_BYTES} random bytes: make one with \
         `openssl rand -hex 32` and set SPIN_VARIABLE_{}",
        name.to_ascii_uppercase()
    ))
}

/// A key for one purpose derived from a secret (HKDF-SHA256, the purpose as
/// `info`): one secret never signs two kinds of thing with the same key, so
/// a session can never pass for a link token. Hex, to stand where a secret does.
pub fn purpose_key(secret: &str, purpose: &str) -> String {
    PurposeKeys::from_secret(secret).key(purpose)
}

/// The purpose keys of one secret ([`purpose_key`]), for a request that
/// needs more than one: the secret is taken in once (HKDF's extract step),
/// and each key is drawn from it (its expand step).
pub struct PurposeKeys(hkdf::Hkdf<Sha256>);

impl PurposeKeys {
    pub fn from_secret(secret: &str) -> PurposeKeys {
        PurposeKeys(hkdf::Hkdf::new(Some(b"revisit-v1"), secret.as_bytes()))
    }

    /// The key for `purpose`: the same as `purpose_key(secret, purpose)`.
    pub fn key(&self, purpose: &str) -> String {
        let mut key = [0u8; 32];
        self.0
            .expand(purpose.as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        hex::encode(key)
    }
}

/// The purposes keys are derived for.
pub mod purpose {
    pub const LINK_TOKEN: &str = "link-token";
    pub const SESSION: &str = "session";
    pub const DEVICE: &str = "device-fingerprint";
}

/// How far a webhook's `t=` may be from now (SPEC 3.1).
pub const WEBHOOK_TOLERANCE_SECS: i64 = 5 * 60;

/// The `X-Revisit-Signature` header value for `body` signed at `t`.
pub fn sign_webhook(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Check `X-Revisit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn verify_webhook(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let header = header.ok_or_else(|| {
        ApiError::unauthorized("missing X-Revisit-Signature header; sign the body as t=<unix seconds>,v1=<hex HMAC-SHA256>")
    })?;
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.push(v),
            _ => {}
        }
    }
    let t = t.ok_or_else(|| {
        ApiError::unauthorized("X-Revisit-Signature has no valid t=<unix seconds>")
    })?;
    if (now.timestamp() - t).abs() > WEBHOOK_TOLERANCE_SECS {
        return Err(ApiError::unauthorized(
            "the signature timestamp is more than 5 minutes from now; sign each delivery when you send it and check your clock",
        ));
    }
    for candidate in candidates {
        let Ok(given) = hex::decode(candidate) else {
            continue;
        };
        let mut mac =
            HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        if mac.verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err(ApiError::unauthorized(
        "the webhook signature does not match the body; check the webhook secret",
    ))
}

/// What a survey link stands for: one survey, one channel. Nothing personal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkToken {
    pub survey_id: String,
    pub channel: Channel,
}

const LINK_CONTEXT: &[u8] = b"revisit-link-v1";
const SURVEY_ID_BYTES: usize = 8;
const LINK_MAC_BYTES: usize = 16;

impl LinkToken {
    /// The URL-safe token (34 characters): survey id, channel, truncated HMAC.
    pub fn encode(&self, secret: &str) -> String {
        let mut payload =
            hex::decode(&self.survey_id[self.survey_id.len() - SURVEY_ID_BYTES * 2..])
                .expect("survey ids end in 16 hex digits");
        payload.push(self.channel.code());
        let mac = link_mac(secret, &payload);
        payload.extend_from_slice(&mac[..LINK_MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// `None` for anything not made by [`LinkToken::encode`] with this secret.
    pub fn decode(token: &str, secret: &str) -> Option<LinkToken> {
        if token.len() > 40 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != SURVEY_ID_BYTES + 1 + LINK_MAC_BYTES {
            return None;
        }
        let (payload, mac) = bytes.split_at(SURVEY_ID_BYTES + 1);
        let mut m =
            HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        m.update(LINK_CONTEXT);
        m.update(payload);
        m.verify_truncated_left(mac).ok()?;
        Some(LinkToken {
            survey_id: format!("sv_{}", hex::encode(&payload[..SURVEY_ID_BYTES])),
            channel: Channel::from_code(payload[SURVEY_ID_BYTES])?,
        })
    }
}

fn link_mac(secret: &str, payload: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    m.update(LINK_CONTEXT);
    m.update(payload);
    m.finalize().into_bytes().to_vec()
}

/// A signed browser session for the agent's page: who (an agent id, or
/// `supervisor`) until when. The key is derived from the admin token, so
/// rotating that token ends every session.
pub struct Session;

const SESSION_CONTEXT: &[u8] = b"revisit-session-v1";

impl Session {
    pub fn issue(secret: &str, who: &str, expires: DateTime<Utc>) -> String {
        let payload = format!("{}.{}", URL_SAFE_NO_PAD.encode(who), expires.timestamp());
        let mut m =
            HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        m.update(SESSION_CONTEXT);
        m.update(payload.as_bytes());
        format!(
            "{payload}.{}",
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        )
    }

    /// Who the session is for, if it is genuine and not expired.
    pub fn verify(secret: &str, value: &str, now: DateTime<Utc>) -> Option<String> {
        let (payload, mac) = value.rsplit_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let mut m =
            HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        m.update(SESSION_CONTEXT);
        m.update(payload.as_bytes());
        m.verify_slice(&mac).ok()?;
        let (who, expires) = payload.split_once('.')?;
        if now.timestamp() >= expires.parse::<i64>().ok()? {
            return None;
        }
        String::from_utf8(URL_SAFE_NO_PAD.decode(who).ok()?).ok()
    }
}

/// A Standard Webhooks `webhook-signature` value: `v1,` and the base64 of
/// HMAC-SHA256(key, "<id>.<timestamp>.<body>") (key: the bytes of a `whsec_`
/// secret, see `webhooks::secret_key`).
pub fn standard_webhook_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD;
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether an `Authorization` header carries `Bearer <expected>` (constant time).
/// An empty expected token never matches.
pub fn bearer_matches(header: Option<&str>, expected: &str) -> bool {
    let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    !expected.is_empty() && bool::from(given.trim().as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(t: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(t, 0).unwrap()
    }

    #[test]
    fn webhook_roundtrip_and_failures() {
        let body = br#"{"a":1}"#;
        let h = sign_webhook("s3cret", 1_700_000_000, body);
        assert!(verify_webhook("s3cret", Some(&h), body, at(1_700_000_100)).is_ok());
        assert_eq!(
            verify_webhook("other", Some(&h), body, at(1_700_000_100))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            verify_webhook("s3cret", Some(&h), b"{}", at(1_700_000_100))
                .unwrap_err()
                .status,
            401
        );
        let stale = verify_webhook("s3cret", Some(&h), body, at(1_700_000_301)).unwrap_err();
        assert!(stale.message.contains("5 minutes"));
        assert!(verify_webhook("s3cret", None, body, at(1_700_000_000)).is_err());
        assert!(verify_webhook("s3cret", Some("t=x,v1=00"), body, at(1_700_000_000)).is_err());
    }

    #[test]
    fn link_tokens_are_short_signed_and_channel_bound() {
        let id = derive_id("sv", &["event-1", "product"]);
        let tok = LinkToken {
            survey_id: id.clone(),
            channel: Channel::Email,
        };
        let s = tok.encode("k");
        assert!(s.len() <= 40, "{}", s.len());
        assert!(s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(LinkToken::decode(&s, "k"), Some(tok));
        assert_eq!(LinkToken::decode(&s, "other-key"), None);
        let mut tampered = s.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            LinkToken::decode(std::str::from_utf8(&tampered).unwrap(), "k"),
            None
        );
    }

    #[test]
    fn bearer_compare() {
        assert!(bearer_matches(Some("Bearer abc"), "abc"));
        assert!(!bearer_matches(Some("Bearer abd"), "abc"));
        assert!(!bearer_matches(Some("abc"), "abc"));
        assert!(!bearer_matches(Some("Bearer "), ""));
        assert!(!bearer_matches(None, "abc"));
    }

    #[test]
    fn sessions_are_signed_and_expire() {
        let now = at(1_800_000_000);
        let s = Session::issue("k", "agent-7", at(1_800_003_600));
        assert_eq!(Session::verify("k", &s, now).as_deref(), Some("agent-7"));
        assert_eq!(Session::verify("other", &s, now), None);
        assert_eq!(Session::verify("k", &s, at(1_800_003_600)), None);
        let forged = s.replacen(
            &URL_SAFE_NO_PAD.encode("agent-7"),
            &URL_SAFE_NO_PAD.encode("supervisor"),
            1,
        );
        assert_eq!(Session::verify("k", &forged, now), None);
    }

    // The fuzz targets' properties (`./run fuzz` searches deeper, guided by
    // coverage), as property tests in every `cargo test`.
    proptest! {
        #[test]
        fn any_string_decodes_to_nothing_or_a_valid_link(s in ".{0,60}") {
            // Never panics; only tokens made with the key decode.
            prop_assert!(LinkToken::decode(&s, "k").is_none());
        }

        #[test]
        fn a_genuine_link_survives_and_any_change_breaks_it(
            hex in "[0-9a-f]{16}", place in 0usize..40, c in any::<char>(),
        ) {
            let link = LinkToken { survey_id: format!("sv_{hex}"), channel: Channel::Sms };
            let token = link.encode("k");
            let back = LinkToken::decode(&token, "k").expect("a genuine token decodes");
            prop_assert_eq!(&back.survey_id, &link.survey_id);
            prop_assert_eq!(back.encode("k"), token.clone());
            let mut changed: Vec<char> = token.chars().collect();
            let i = place % changed.len();
            if changed[i] != c {
                changed[i] = c;
                let changed: String = changed.into_iter().collect();
                prop_assert!(LinkToken::decode(&changed, "k").is_none());
            }
        }

        #[test]
        fn a_forged_webhook_never_verifies_and_any_body_parses_or_is_refused(
            header in ".{0,120}", body in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let now = at(1_800_000_000);
            prop_assert!(verify_webhook("fuzz-secret", Some(&header), &body, now).is_err());
            if let Ok(event) = crate::error::parse_json::<crate::event::Event>(&body) {
                let _ = event.validate();
            }
        }
    }

    #[test]
    fn secrets_are_long_and_keys_are_per_purpose() {
        assert!(check_secret("link_secret", "")
            .unwrap_err()
            .contains("is empty"));
        let short = check_secret("webhook_secret", "hunter2").unwrap_err();
        assert!(
            short.contains("7 bytes")
                && short.contains("openssl rand -hex 32")
                && short.contains("SPIN_VARIABLE_WEBHOOK_SECRET"),
            "{short}"
        );
        assert!(check_secret("x", &"k".repeat(32)).is_ok());
        let secret = "0123456789abcdef0123456789abcdef";
        let (a, b) = (
            purpose_key(secret, purpose::LINK_TOKEN),
            purpose_key(secret, purpose::SESSION),
        );
        assert_ne!(a, b);
        assert_eq!(a, purpose_key(secret, purpose::LINK_TOKEN));
        assert_eq!(a.len(), 64);
        assert_ne!(
            a,
            purpose_key("another secret, also 32 bytes!!!", purpose::LINK_TOKEN)
        );
    }

    /// Issued links and logged device ids depend on these keys: HKDF-SHA256
    /// (salt `revisit-v1`, the purpose as info), as computed apart with
    /// Python's `hmac` module.
    #[test]
    fn purpose_keys_are_hkdf_sha256_and_drawing_several_changes_none() {
        let secret = "0123456789abcdef0123456789abcdef";
        let link = "3b3845bd1b75dfe02dda0d4685721f3246e2433aa08914241f41c221dc7d3c32";
        let device = "771332bae9347d89174954be3f9a0ddc0b1e7f1bab65879ee1f8265691b344f1";
        assert_eq!(purpose_key(secret, purpose::LINK_TOKEN), link);
        let keys = PurposeKeys::from_secret(secret);
        assert_eq!(keys.key(purpose::DEVICE), device);
        assert_eq!(keys.key(purpose::LINK_TOKEN), link);
    }
}
