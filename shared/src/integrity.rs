//! Score-integrity signals (SPEC 7): one device answering for many customers,
//! a member of staff whose answers are top scores without a word far more often
//! than their peers', answers arriving while the technician may still be on
//! site. Signals are surfaced in a report; an answer is never dropped for them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::model::derive_id;
use crate::report::Tally;

/// A device answering for this many customers is flagged.
pub const DEVICE_CUSTOMERS: usize = 3;
/// A device's record keeps at most this many customers: enough to show how
/// widely it was used, and the record stops growing (and being rewritten)
/// however many more answers come from it — a kiosk, a shop's tablet.
pub const DEVICE_CUSTOMERS_KEPT: usize = 20;
/// Staff are judged once they have this many answers.
pub const STAFF_MIN_ANSWERS: i64 = 20;
/// Flag staff whose share of silent top scores is this many points above their peers'.
pub const STAFF_MARGIN_PCT: f64 = 25.0;
/// Staff are judged on their answers of the last this many days.
pub const STAFF_WINDOW_DAYS: i64 = 90;
/// An answer this soon after the work was completed may be given in front of the technician.
pub const ON_SITE_MINUTES: i64 = 15;

/// A salted hash of the answering network and user agent: it tells devices
/// apart without keeping either.
pub fn device_id(salt: &str, client_addr: &str, user_agent: &str) -> String {
    let ip = client_addr
        .rsplit_once(':')
        .map(|(ip, _)| ip)
        .unwrap_or(client_addr);
    derive_id("dev", &[salt, ip.trim_matches(['[', ']']), user_agent])
}

/// What one answer says about integrity, besides its tally (which carries the
/// agent and whether it was a silent top score: see [`staff_stats`]).
pub struct AnswerSignals<'a> {
    pub survey_id: &'a str,
    /// The customer's pseudonym (`keys::pseudonym`).
    pub customer: &'a str,
    pub device: &'a str,
    pub agent: Option<&'a str>,
    pub completed_at: Option<DateTime<Utc>>,
    pub answered_at: DateTime<Utc>,
}

/// `(agent, answers, silent top scores)` from the days' tallies.
pub fn staff_stats(tallies: &[(NaiveDate, Tally, i64)]) -> Vec<(String, i64, i64)> {
    let mut stats: Vec<(String, i64, i64)> = Vec::new();
    for (_, t, n) in tallies.iter().filter(|(_, t, _)| t.agent != "none") {
        let i = match stats.iter().position(|(a, _, _)| *a == t.agent) {
            Some(i) => i,
            None => {
                stats.push((t.agent.clone(), 0, 0));
                stats.len() - 1
            }
        };
        stats[i].1 += n;
        if t.silent_top {
            stats[i].2 += n;
        }
    }
    stats.sort();
    stats
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceFlag {
    pub device: String,
    /// Customers it answered for (counted up to [`DEVICE_CUSTOMERS_KEPT`]).
    pub customers: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaffFlag {
    pub agent: String,
    pub answers: i64,
    pub top_silent_pct: f64,
    pub peers_top_silent_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnSiteFlag {
    pub survey_id: String,
    pub agent: String,
    pub minutes_after_completion: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IntegrityReport {
    pub devices: Vec<DeviceFlag>,
    pub staff: Vec<StaffFlag>,
    pub on_site: Vec<OnSiteFlag>,
}

fn pct(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

/// Staff whose silent-top share is far above the rest: `(agent, answers, top_silent)`.
pub fn flag_staff(stats: &[(String, i64, i64)]) -> Vec<StaffFlag> {
    let mut flags = Vec::new();
    for (agent, answers, top) in stats {
        if *answers < STAFF_MIN_ANSWERS {
            continue;
        }
        let (peer_answers, peer_top) = stats
            .iter()
            .filter(|(a, _, _)| a != agent)
            .fold((0, 0), |(n, t), (_, an, at)| (n + an, t + at));
        if peer_answers == 0 {
            continue;
        }
        let (mine, peers) = (pct(*top, *answers), pct(peer_top, peer_answers));
        if mine >= peers + STAFF_MARGIN_PCT {
            flags.push(StaffFlag {
                agent: agent.clone(),
                answers: *answers,
                top_silent_pct: mine,
                peers_top_silent_pct: peers,
            });
        }
    }
    flags
}
