//! Score-integrity signals (SPEC 7): one device answering for many customers,
//! a member of staff whose answers are top scores without a word far more often
//! than their peers', answers arriving while the technician may still be on
//! site. Signals are surfaced in a report; an answer is never dropped for them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::keys;
use crate::signing::derive_id;
use crate::storage::{Storage, StorageExt, StoreResult};

/// A device answering for this many customers is flagged.
pub const DEVICE_CUSTOMERS: usize = 3;
/// Staff are judged once they have this many answers.
pub const STAFF_MIN_ANSWERS: i64 = 20;
/// Flag staff whose share of silent top scores is this many points above their peers'.
pub const STAFF_MARGIN_PCT: f64 = 25.0;
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

/// What one answer says about integrity.
pub struct AnswerSignals<'a> {
    pub survey_id: &'a str,
    pub customer_id: &'a str,
    pub device: &'a str,
    pub agent: Option<&'a str>,
    /// A top score with no comment.
    pub top_silent: bool,
    pub completed_at: Option<DateTime<Utc>>,
    pub answered_at: DateTime<Utc>,
}

const FLAGGED_DEVICES: &str = "ix/integrity/devices";
const AGENTS: &str = "ix/integrity/agents";
const ON_SITE: &str = "ix/integrity/on-site";

fn device_key(device: &str) -> String {
    format!("ig/dev/{device}")
}

/// Record an answer's signals (atomic counters and compare-and-swap lists).
pub fn record<S: Storage + ?Sized>(store: &S, s: &AnswerSignals) -> StoreResult<()> {
    store.add_to_list(&device_key(s.device), s.customer_id)?;
    let customers: Vec<String> = store.get_json(&device_key(s.device))?.unwrap_or_default();
    if customers.len() >= DEVICE_CUSTOMERS {
        store.add_to_list(FLAGGED_DEVICES, s.device)?;
    }
    if let Some(agent) = s.agent {
        if store.increment(
            &keys::loop_counter(&format!("integrity/{agent}/answers")),
            1,
        )? == 1
        {
            store.add_to_list(AGENTS, agent)?;
        }
        if s.top_silent {
            store.increment(
                &keys::loop_counter(&format!("integrity/{agent}/top_silent")),
                1,
            )?;
        }
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceFlag {
    pub device: String,
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

pub fn report<S: Storage + ?Sized>(store: &S) -> StoreResult<IntegrityReport> {
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
    let agents: Vec<String> = store.get_json(AGENTS)?.unwrap_or_default();
    let keys: Vec<String> = agents
        .iter()
        .flat_map(|a| {
            [
                format!("integrity/{a}/answers"),
                format!("integrity/{a}/top_silent"),
            ]
        })
        .map(|k| keys::loop_counter(&k))
        .collect();
    let values = store.counters(&keys)?;
    let stats: Vec<(String, i64, i64)> = agents
        .into_iter()
        .zip(values.chunks(2))
        .map(|(a, v)| (a, v[0], v[1]))
        .collect();
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

    #[test]
    fn flags_a_shared_device_a_too_perfect_agent_and_on_site_answers() {
        let s = MemoryStorage::new();
        let t0: DateTime<Utc> = "2026-12-04T10:00:00Z".parse().unwrap();
        let shared = device_id("salt", "10.0.0.1:5555", "phone");
        for i in 0..5 {
            let c = format!("c{i}");
            record(
                &s,
                &AnswerSignals {
                    survey_id: "s",
                    customer_id: &c,
                    device: &shared,
                    agent: None,
                    top_silent: false,
                    completed_at: None,
                    answered_at: t0,
                },
            )
            .unwrap();
        }
        let own = device_id("salt", "10.0.0.2:1", "other phone");
        record(
            &s,
            &AnswerSignals {
                survey_id: "s",
                customer_id: "x",
                device: &own,
                agent: None,
                top_silent: false,
                completed_at: None,
                answered_at: t0,
            },
        )
        .unwrap();
        for (agent, answers, top) in [("suspect", 40, 40), ("peer-1", 20, 12), ("peer-2", 20, 12)] {
            for i in 0..answers {
                let d = format!("d-{agent}-{i}");
                record(
                    &s,
                    &AnswerSignals {
                        survey_id: "s",
                        customer_id: &d,
                        device: &d,
                        agent: Some(agent),
                        top_silent: i < top,
                        completed_at: None,
                        answered_at: t0,
                    },
                )
                .unwrap();
            }
        }
        record(
            &s,
            &AnswerSignals {
                survey_id: "quick",
                customer_id: "q",
                device: "dq",
                agent: Some("tech-1"),
                top_silent: true,
                completed_at: Some(t0 - chrono::Duration::minutes(3)),
                answered_at: t0,
            },
        )
        .unwrap();
        let r = report(&s).unwrap();
        assert_eq!(
            r.devices,
            vec![DeviceFlag {
                device: shared,
                customers: 5
            }]
        );
        assert_eq!(r.staff.len(), 1, "{:?}", r.staff);
        assert_eq!(r.staff[0].agent, "suspect");
        assert_eq!(r.staff[0].top_silent_pct, 100.0);
        assert!(
            (r.staff[0].peers_top_silent_pct - 60.0).abs() < 2.0,
            "{:?}",
            r.staff
        );
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
