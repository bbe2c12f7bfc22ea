//! Score-integrity signals (SPEC 7): one device answering for many customers,
//! a member of staff whose answers are top scores without a word far more often
//! than their peers', answers arriving while the technician may still be on
//! site. Signals are surfaced in a report; an answer is never dropped for them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::model::derive_id;
use crate::report::Tally;
use crate::storage::{Storage, StorageExt, StoreResult, Update};

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
    pub customer_id: &'a str,
    pub device: &'a str,
    pub agent: Option<&'a str>,
    pub completed_at: Option<DateTime<Utc>>,
    pub answered_at: DateTime<Utc>,
}

const FLAGGED_DEVICES: &str = "ix/integrity/devices";
const ON_SITE: &str = "ix/integrity/on-site";

fn device_key(device: &str) -> String {
    format!("ig/dev/{device}")
}

/// Record an answer's signals: the customers a device answered for (one
/// compare-and-swap, idempotent, so it can run before the answer is recorded
/// and again on a retry) and an answer given right after the work was done.
pub fn record<S: Storage + ?Sized>(store: &S, s: &AnswerSignals) -> StoreResult<()> {
    let customers = store
        .update_json::<Vec<String>, _>(&device_key(s.device), |cur| {
            let mut ids = cur.unwrap_or_default();
            if ids.len() >= DEVICE_CUSTOMERS_KEPT || ids.iter().any(|i| i == s.customer_id) {
                return Update::Keep;
            }
            ids.push(s.customer_id.to_string());
            Update::Write(ids)
        })?
        .unwrap_or_default();
    if customers.len() >= DEVICE_CUSTOMERS {
        store.add_to_list(FLAGGED_DEVICES, s.device)?;
    }
    if let Some(done) = s.completed_at {
        let minutes = (s.answered_at - done).num_minutes();
        if (0..ON_SITE_MINUTES).contains(&minutes) {
            let entry = format!("{}|{}|{minutes}", s.survey_id, s.agent.unwrap_or("-"));
            store.add_to_list(ON_SITE, &entry)?;
        }
    }
    Ok(())
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

/// The report; staff are judged on `tallies` (the receiver passes the last
/// [`STAFF_WINDOW_DAYS`] days).
pub fn report<S: Storage + ?Sized>(
    store: &S,
    tallies: &[(NaiveDate, Tally, i64)],
) -> StoreResult<IntegrityReport> {
    let devices: Vec<String> = store.get_json(FLAGGED_DEVICES)?.unwrap_or_default();
    let lists = store.get_many(&devices.iter().map(|d| device_key(d)).collect::<Vec<_>>())?;
    let devices = devices
        .into_iter()
        .zip(lists)
        .map(|(device, l)| {
            let customers = l
                .and_then(|v| serde_json::from_slice::<Vec<String>>(&v).ok())
                .map(|c| c.len())
                .unwrap_or(0);
            DeviceFlag { device, customers }
        })
        .collect();
    let stats = staff_stats(tallies);
    let on_site: Vec<String> = store.get_json(ON_SITE)?.unwrap_or_default();
    let on_site = on_site
        .iter()
        .filter_map(|e| {
            let mut p = e.split('|');
            Some(OnSiteFlag {
                survey_id: p.next()?.to_string(),
                agent: p.next()?.to_string(),
                minutes_after_completion: p.next()?.parse().ok()?,
            })
        })
        .collect();
    Ok(IntegrityReport {
        devices,
        staff: flag_staff(&stats),
        on_site,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    /// In every store mode: like the embedded host and like each of Spin's stores.
    #[test]
    fn flags_a_shared_device_a_too_perfect_agent_and_on_site_answers() {
        for mode in crate::storage::KvMode::ALL {
            flags_a_shared_device_a_too_perfect_agent_and_on_site_answers_in(mode);
        }
    }

    fn flags_a_shared_device_a_too_perfect_agent_and_on_site_answers_in(
        mode: crate::storage::KvMode,
    ) {
        use crate::model::{Channel, Scale, SurveyKind};
        let s = MemoryStorage::in_memory_like(mode);
        let t0: DateTime<Utc> = "2026-12-04T10:00:00Z".parse().unwrap();
        fn signals<'a>(
            survey_id: &'a str,
            customer_id: &'a str,
            device: &'a str,
            agent: Option<&'a str>,
            completed_at: Option<DateTime<Utc>>,
        ) -> AnswerSignals<'a> {
            AnswerSignals {
                survey_id,
                customer_id,
                device,
                agent,
                completed_at,
                answered_at: "2026-12-04T10:00:00Z".parse().unwrap(),
            }
        }
        let shared = device_id("salt", "10.0.0.1:5555", "phone");
        for i in 0..5 {
            let c = format!("c{i}");
            record(&s, &signals("s", &c, &shared, None, None)).unwrap();
            record(&s, &signals("s", &c, &shared, None, None)).unwrap();
        }
        let kiosk = device_id("salt", "10.0.0.3:1", "kiosk");
        for i in 0..50 {
            record(&s, &signals("s", &format!("k{i}"), &kiosk, None, None)).unwrap();
        }
        let own = device_id("salt", "10.0.0.2:1", "other phone");
        record(&s, &signals("s", "x", &own, None, None)).unwrap();
        record(
            &s,
            &signals(
                "quick",
                "q",
                "dq",
                Some("tech-1"),
                Some(t0 - chrono::Duration::minutes(3)),
            ),
        )
        .unwrap();
        let day: NaiveDate = "2026-12-04".parse().unwrap();
        let tally = |agent: &str, silent_top| Tally {
            channel: Channel::Sms,
            kind: SurveyKind::Service,
            scale: Scale::Csat,
            score: 5,
            silent_top,
            agent: agent.into(),
        };
        let tallies = vec![
            (day, tally("suspect", true), 40),
            (day, tally("peer-1", true), 12),
            (day, tally("peer-1", false), 8),
            (day, tally("peer-2", true), 12),
            (day, tally("peer-2", false), 8),
            (day, tally("none", true), 500),
        ];
        let r = report(&s, &tallies).unwrap();
        assert_eq!(
            r.devices,
            vec![
                DeviceFlag {
                    device: shared,
                    customers: 5
                },
                DeviceFlag {
                    device: kiosk,
                    customers: DEVICE_CUSTOMERS_KEPT
                }
            ]
        );
        assert_eq!(r.staff.len(), 1, "{:?}", r.staff);
        assert_eq!(r.staff[0].agent, "suspect");
        assert_eq!(r.staff[0].top_silent_pct, 100.0);
        assert_eq!(r.staff[0].peers_top_silent_pct, 60.0);
        assert_eq!(
            r.on_site,
            vec![OnSiteFlag {
                survey_id: "quick".into(),
                agent: "tech-1".into(),
                minutes_after_completion: 3
            }]
        );
    }

    #[test]
    fn device_ids_hide_the_address() {
        let d = device_id("salt", "203.0.113.9:443", "UA");
        assert!(!d.contains("203.0.113.9"));
        assert_eq!(
            d,
            device_id("salt", "203.0.113.9:1", "UA"),
            "the port does not matter"
        );
        assert_ne!(d, device_id("other salt", "203.0.113.9:1", "UA"));
    }
}
