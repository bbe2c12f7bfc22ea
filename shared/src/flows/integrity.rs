//! Recording an answer's integrity signals, and the integrity report.

use chrono::NaiveDate;

use crate::integrity::*;
use crate::keys;
use crate::report::Tally;
use crate::storage::{Storage, StorageExt, StoreResult, Update};

/// The most flagged devices and on-site answers the report keeps (the newest).
const REPORT_LIST_MAX: usize = 1000;

/// Record an answer's signals: the customers a device answered for (one
/// compare-and-swap, idempotent, so it can run before the answer is recorded
/// and again on a retry) and an answer given right after the work was done.
pub fn record<S: Storage + ?Sized>(store: &S, s: &AnswerSignals) -> StoreResult<()> {
    let customers = store
        .update_json::<Vec<String>, _>(&keys::device(s.device), |cur| {
            let mut ids = cur.unwrap_or_default();
            if ids.len() >= DEVICE_CUSTOMERS_KEPT || ids.iter().any(|i| i == s.customer) {
                return Update::Keep;
            }
            ids.push(s.customer.to_string());
            Update::Write(ids)
        })?
        .unwrap_or_default();
    if customers.len() >= DEVICE_CUSTOMERS {
        store.add_to_capped_list(keys::FLAGGED_DEVICES, s.device, REPORT_LIST_MAX)?;
    }
    if let Some(done) = s.completed_at {
        let minutes = (s.answered_at - done).num_minutes();
        if (0..ON_SITE_MINUTES).contains(&minutes) {
            let entry = format!("{}|{}|{minutes}", s.survey_id, s.agent.unwrap_or("-"));
            store.add_to_capped_list(keys::ON_SITE, &entry, REPORT_LIST_MAX)?;
        }
    }
    Ok(())
}

/// The report; staff are judged on `tallies` (the receiver passes the last
/// [`STAFF_WINDOW_DAYS`] days).
pub fn report<S: Storage + ?Sized>(
    store: &S,
    tallies: &[(NaiveDate, Tally, i64)],
) -> StoreResult<IntegrityReport> {
    let devices: Vec<String> = store.get_json(keys::FLAGGED_DEVICES)?.unwrap_or_default();
    let lists = store.get_many(&devices.iter().map(|d| keys::device(d)).collect::<Vec<_>>())?;
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
    let on_site: Vec<String> = store.get_json(keys::ON_SITE)?.unwrap_or_default();
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
    use chrono::{DateTime, Utc};

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
            customer: &'a str,
            device: &'a str,
            agent: Option<&'a str>,
            completed_at: Option<DateTime<Utc>>,
        ) -> AnswerSignals<'a> {
            AnswerSignals {
                survey_id,
                customer,
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
