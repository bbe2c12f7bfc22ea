//! Hard tests (bounded, loopback only): heavy load with exact results, and a
//! SIGKILL in the middle of it losing nothing that was acknowledged.

use revisit_tests::*;
use serde_json::json;

/// Plan and send `n` surveys (one per customer); their links.
fn links(host: &Host, sender: &Sender, n: usize) -> Vec<String> {
    host.set_clock("2026-12-01T10:00:00+01:00");
    let t = host.clock().timestamp();
    let all: Vec<usize> = (0..n).collect();
    std::thread::scope(|s| {
        for chunk in all.chunks(n / 16 + 1) {
            s.spawn(move || {
                for i in chunk {
                    let body = event_body(
                        &format!("h{i}"),
                        "order.delivered",
                        "2026-12-01T10:00:00+01:00",
                        json!({"id": format!("hc{i}"), "email": format!("h{i}@example.com"), "time_zone": "Europe/Berlin"}),
                        json!({"category": "high_value", "agent_id": format!("agent-{}", i % 8)}),
                    );
                    let r = host.post_signed(&body, t, WEBHOOK_SECRET);
                    assert_eq!(r.status(), 202);
                }
            });
        }
    });
    host.set_clock("2026-12-04T10:00:00+01:00");
    let (_, tick) = Host::json(host.admin_post("/issuer/tick", ""));
    assert_eq!(tick["sent"], n, "{tick}");
    sender
        .messages()
        .iter()
        .map(|m| link_path(m["link"].as_str().unwrap()))
        .collect()
}

/// Post `per_link` answers to every link from `clients` threads; (link, status) pairs.
fn hammer(host: &Host, links: &[String], per_link: usize, clients: usize) -> Vec<(usize, u16)> {
    let work: Vec<usize> = (0..links.len() * per_link)
        .map(|i| i % links.len())
        .collect();
    let out = std::sync::Mutex::new(Vec::with_capacity(work.len()));
    std::thread::scope(|s| {
        for chunk in work.chunks(work.len() / clients + 1) {
            let out = &out;
            s.spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut mine = Vec::with_capacity(chunk.len());
                for (n, i) in chunk.iter().enumerate() {
                    let r = client
                        .post(host.url(&links[*i]))
                        .header("content-type", "application/json")
                        .body(format!("{{\"score\": {}}}", n % 11))
                        .send();
                    // A connection refused while the host is down counts as 0.
                    mine.push((*i, r.map(|r| r.status().as_u16()).unwrap_or(0)));
                }
                out.lock().unwrap().extend(mine);
            });
        }
    });
    out.into_inner().unwrap()
}

#[test]
fn twenty_thousand_answers_over_two_thousand_links_from_32_clients() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let links = links(&host, &sender, 2000);
    let results = hammer(&host, &links, 10, 32);
    assert_eq!(results.len(), 20_000);
    assert!(
        results.iter().all(|(_, s)| *s != 0 && *s < 500),
        "no 5xx, nothing refused"
    );
    assert_eq!(results.iter().filter(|(_, s)| *s == 200).count(), 2000);
    assert_eq!(results.iter().filter(|(_, s)| *s == 409).count(), 18_000);
    let (_, summary) =
        Host::json(host.admin_get("/reports/summary?from=2026-12-04&to=2026-12-04&group_by=agent"));
    assert_eq!(summary["total"]["answers"], 2000, "{summary}");
    assert_eq!(summary["total"]["issued"], 2000);
    let per_agent: i64 = summary["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["answers"].as_i64().unwrap())
        .sum();
    assert_eq!(per_agent, 2000, "counters are exact in every dimension");
}

#[test]
fn a_sigkill_during_load_loses_no_acknowledged_answer() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let links = links(&host, &sender, 600);
    let pid = host.pid();
    // Kill the host (SIGKILL: no clean shutdown) while the answers pour in.
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(700));
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    });
    let results = hammer(&host, &links, 3, 16);
    killer.join().unwrap();
    let acknowledged: std::collections::BTreeSet<usize> = results
        .iter()
        .filter(|(_, s)| *s == 200)
        .map(|(i, _)| *i)
        .collect();
    let refused = results.iter().filter(|(_, s)| *s == 0).count();
    assert!(
        !acknowledged.is_empty() && refused > 0,
        "the kill landed mid-load ({} acknowledged, {refused} refused)",
        acknowledged.len()
    );

    let host = host.restart();
    for i in &acknowledged {
        let page = host
            .http
            .get(host.url(&links[*i]))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            page.contains("already answered"),
            "answer {i} was acknowledged (200) but is gone after the restart"
        );
    }
}
