//! The app on real Spin (`spin up` on the project's own `spin.toml` and
//! `.wasm` files), the host it is written for: the whole loop with exact
//! counts and no 5xx, first on Spin's default (SQLite) store, then on two Spin
//! instances sharing one Redis. Spin has no test clock, so events are dated
//! in the past and customers live in a zone where it is now early afternoon.
//! What the loop announces reaches a Standard Webhooks receiver exactly once.
//!
//! Where no `spin` binary is found (`SPIN_BIN`, `../shared/tools/spin`,
//! `PATH`) each test says so and passes without running.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier, Mutex};

use chrono::{Duration, Utc};
use revisit_tests::*;
use serde_json::{json, Value};

/// Surveys in one run; each link is answered four times.
const SURVEYS: usize = 12;
const CLIENTS: usize = 16;

fn spin_or_skip(test: &str) -> Option<std::path::PathBuf> {
    let spin = spin_binary();
    if spin.is_none() {
        eprintln!("SKIPPED {test}: no spin binary (set SPIN_BIN, or put it at ../shared/tools/spin or on PATH)");
    }
    spin
}

/// The app told of answers and tasks by Standard Webhooks at `hooks`.
fn with_webhooks(config: HostConfig, hooks: &Sender) -> HostConfig {
    let endpoints = json!([{
        "url": format!("{}/hooks", hooks.origin()),
        "secret": STANDARD_WEBHOOK_SECRET,
        "events": ["answer.recorded", "task.created", "task.closed"],
    }]);
    config
        .set("SPIN_VARIABLE_WEBHOOKS", &endpoints.to_string())
        .set("SPIN_VARIABLE_WEBHOOK_ORIGIN", &hooks.origin())
}

/// What one run of the loop saw, for the caller's own checks.
struct Loop {
    low: usize,
}

/// The whole loop over `hosts` (requests spread across them), asserting
/// exact counts and no 5xx at every step.
fn whole_loop(hosts: &[Host], sender: &Sender, hooks: &Sender, tag: &str) -> Loop {
    let zone = afternoon_zone();
    let host = |i: usize| &hosts[i % hosts.len()];

    // Events: each posted twice at once (through different hosts where there
    // are two): exactly one of the two plans it.
    let barrier = Barrier::new(2 * SURVEYS);
    let answers = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for n in 0..SURVEYS {
            for copy in 0..2 {
                let (barrier, answers, zone) = (&barrier, &answers, &zone);
                s.spawn(move || {
                    let body = delivery_due_now(tag, n, zone);
                    barrier.wait();
                    // Spin's SQLite store now and then answers a burst of
                    // writers with "database is locked"; the app says 503,
                    // nothing recorded, retry — as a sender does.
                    let mut reply = Host::json(host(n + copy).post_event(&body));
                    for _ in 0..5 {
                        if reply.0 != 503 {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        reply = Host::json(host(n + copy).post_event(&body));
                    }
                    let (status, v) = reply;
                    answers.lock().unwrap().push((n, status, v));
                });
            }
        }
    });
    let answers = answers.into_inner().unwrap();
    for (_, status, v) in &answers {
        assert_eq!(*status, 202, "{v}");
    }
    let firsts: Vec<usize> = answers
        .iter()
        .filter(|(_, _, v)| v["duplicate"] == false)
        .map(|(n, _, _)| *n)
        .collect();
    assert_eq!(
        firsts.iter().collect::<BTreeSet<_>>().len(),
        SURVEYS,
        "every event planned"
    );
    assert_eq!(firsts.len(), SURVEYS, "and each exactly once: {answers:?}");
    for (_, _, v) in &answers {
        assert_eq!(v["surveys"].as_array().map(Vec::len), Some(1), "{v}");
    }

    // The tick sends every due survey once, whichever host runs it.
    let seen = sender.messages().len();
    let (status, tick) = Host::json(host(1).admin_post("/issuer/tick", ""));
    assert_eq!(status, 200, "{tick}");
    assert_eq!(tick["sent"], SURVEYS, "{tick}");
    let (status, again) = Host::json(host(0).admin_post("/issuer/tick", ""));
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["sent"], 0, "nothing twice: {again}");
    let links: Vec<String> = sender.messages()[seen..]
        .iter()
        .map(|m| link_path(m["link"].as_str().unwrap()))
        .collect();
    assert_eq!(links.len(), SURVEYS);

    // Answers: every link four times, the same answer each time, from 16
    // clients at once: first answer wins, exactly once per survey.
    let score = |i: usize| if i % 3 == 0 { 2 } else { 9 };
    let work: Vec<usize> = (0..SURVEYS * 4).map(|n| n % SURVEYS).collect();
    let results = Mutex::new(Vec::new());
    let barrier = Barrier::new(CLIENTS);
    std::thread::scope(|s| {
        for (c, chunk) in work.chunks(work.len().div_ceil(CLIENTS)).enumerate() {
            let (links, results, barrier) = (&links, &results, &barrier);
            s.spawn(move || {
                barrier.wait();
                for &i in chunk {
                    let (status, v) = host(c + i).answer(&links[i], score(i), None);
                    results.lock().unwrap().push((i, status, v));
                }
            });
        }
        // Chunks fewer than clients would leave the barrier waiting.
        for _ in work.chunks(work.len().div_ceil(CLIENTS)).len()..CLIENTS {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
            });
        }
    });
    let results = results.into_inner().unwrap();
    for (_, status, v) in &results {
        assert!(*status == 200 || *status == 409, "{status}: {v}");
    }
    let recorded: Vec<usize> = results
        .iter()
        .filter(|(_, s, _)| *s == 200)
        .map(|(i, _, _)| *i)
        .collect();
    assert_eq!(
        recorded.len(),
        SURVEYS,
        "one answer recorded per survey: {results:?}"
    );
    assert_eq!(recorded.iter().collect::<BTreeSet<_>>().len(), SURVEYS);
    let low = (0..SURVEYS).filter(|i| score(*i) <= 6).count();

    // Low answers were each promised a call, and the escalator's tick
    // (a scheduler's) makes one task each, seen from every host.
    let promised = results
        .iter()
        .filter(|(_, s, v)| *s == 200 && !v["callback_by"].is_null())
        .count();
    assert_eq!(promised, low, "{results:?}");
    let (status, tick) = Host::json(host(0).admin_post("/escalator/tick", ""));
    assert_eq!(status, 200, "{tick}");
    assert_eq!(tick["repairs_received"], low, "{tick}");
    for h in hosts {
        let open = h.callbacks("state=open");
        assert_eq!(open.len(), low, "{open:?}");
    }
    let task_id = host(0).callbacks("state=open")[0]["task_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Reports count exactly.
    let (from, to) = (
        (Utc::now() - Duration::days(1)).format("%Y-%m-%d"),
        (Utc::now() + Duration::days(1)).format("%Y-%m-%d"),
    );
    for h in hosts {
        let (status, summary) = Host::json(h.report(&format!(
            "/reports/summary?from={from}&to={to}&group_by=agent"
        )));
        assert_eq!(status, 200, "{summary}");
        assert_eq!(summary["total"]["answers"], SURVEYS, "{summary}");
        assert_eq!(summary["total"]["issued"], SURVEYS, "{summary}");
        assert_eq!(
            sum_of_rows(&summary, "answers"),
            SURVEYS as i64,
            "{summary}"
        );
    }

    // The window of a callback: it is afternoon where the customer lives.
    let (status, window) = Host::json(host(1).admin_get(&format!("/callbacks/{task_id}/window")));
    assert_eq!(status, 200, "{window}");
    assert!(window["callable_now"].is_boolean(), "{window}");
    assert!(window["customer_local_time"].is_string(), "{window}");
    let reasons: Vec<&str> = window["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!reasons.contains(&"quiet_hours"), "{window}");
    assert!(!reasons.contains(&"too_late"), "{window}");

    // An outcome, posted twice at once: the task is resolved once.
    let body = json!({"outcome": "resolved", "resolution": "replaced the part",
        "customer_satisfied": true, "note": "called back"})
    .to_string();
    let statuses: Vec<u16> = {
        let barrier = Barrier::new(2);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|c| {
                    let (body, barrier, task_id) = (&body, &barrier, &task_id);
                    s.spawn(move || {
                        barrier.wait();
                        host(c)
                            .admin_post(&format!("/callbacks/{task_id}/outcome"), body)
                            .status()
                            .as_u16()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    };
    assert!(statuses.iter().all(|s| *s < 500), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    let (status, task) = Host::json(host(1).admin_get(&format!("/callbacks/{task_id}")));
    assert_eq!(status, 200, "{task}");
    assert_eq!(task["state"], "resolved", "{task}");

    // The escalator's tick runs on every host at once, and the loop report
    // counts exactly.
    let barrier = Barrier::new(hosts.len());
    let ticks: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|h| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    Host::json(h.admin_post("/escalator/tick", ""))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, tick) in &ticks {
        assert_eq!(*status, 200, "{tick}");
        assert!(tick["webhooks_error"].is_null(), "{tick}");
    }
    let all: BTreeSet<String> = host(1)
        .callbacks("")
        .iter()
        .map(|t| t["task_id"].as_str().unwrap().to_string())
        .collect();

    // Webhooks: what the steps above announced was delivered by the ticks
    // (the one before each report, these), each event exactly once however
    // many hosts ticked, signed as Standard Webhooks receivers check it.
    let deliveries = hooks.on("/hooks");
    let ids: BTreeSet<&str> = deliveries
        .iter()
        .map(|r| r["headers"]["webhook-id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        deliveries.len(),
        "nothing sent twice: {deliveries:?}"
    );
    let (status, log) = Host::json(host(1).admin_get("/webhooks/deliveries?limit=500"));
    assert_eq!(status, 200, "{log}");
    let log = log["deliveries"].as_array().unwrap().clone();
    assert!(
        log.iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1),
        "{log:?}"
    );
    assert_eq!(log.len(), deliveries.len(), "{log:?}");
    let payloads: Vec<Value> = deliveries.iter().map(verify_standard_webhook).collect();
    for d in &deliveries {
        let length = d["body"].as_str().unwrap().len().to_string();
        assert_eq!(d["headers"]["content-length"], length, "not chunked: {d}");
    }
    let of_type = |t: &str| payloads.iter().filter(|p| p["type"] == t).count();
    assert_eq!(of_type("answer.recorded"), SURVEYS, "{payloads:?}");
    assert_eq!(of_type("task.created"), all.len(), "{payloads:?}");
    assert_eq!(of_type("task.closed"), 1, "{payloads:?}");
    let closed = payloads
        .iter()
        .find(|p| p["type"] == "task.closed")
        .unwrap();
    assert_eq!(closed["data"]["task_id"], task_id.as_str(), "{closed}");
    for h in hosts {
        let (status, report) = Host::json(h.report("/reports/loop"));
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["created"], all.len(), "{report} {all:?}");
        assert_eq!(report["closed"], 1, "{report}");
    }
    Loop { low }
}

#[test]
fn the_whole_loop_on_spins_default_store() {
    let Some(spin) = spin_or_skip("the_whole_loop_on_spins_default_store") else {
        return;
    };
    let (sender, hooks) = (Sender::start(), Sender::start());
    let spin = Host::spin_in(
        &spin,
        with_webhooks(HostConfig::revisit(sender.port), &hooks),
        Arc::new(TempDir::new("spin")),
    );
    let seen = whole_loop(std::slice::from_ref(&spin), &sender, &hooks, "sq");
    assert!(seen.low > 0);
    let log = spin.log();
    assert!(
        !log.contains("leaving it in the outbox"),
        "every hand-off reached the escalator at once:\n{log}"
    );
}

#[test]
fn the_whole_loop_on_two_spins_sharing_one_redis() {
    let Some(spin) = spin_or_skip("the_whole_loop_on_two_spins_sharing_one_redis") else {
        return;
    };
    let redis = RedisServer::start();
    let (sender, hooks) = (Sender::start(), Sender::start());
    let dir = TempDir::new("spin-redis-config");
    let config = with_webhooks(HostConfig::revisit(sender.port), &hooks)
        .arg("--runtime-config-file")
        .arg(redis.runtime_config(&dir).display().to_string());
    let data = Arc::new(TempDir::new("spin-redis"));
    let hosts = [
        Host::spin_in(&spin, config.clone(), data.clone()),
        Host::spin_in(&spin, config, data),
    ];
    let seen = whole_loop(&hosts, &sender, &hooks, "rd");
    assert!(seen.low > 0);
}

/// The embedded host passes a component the same `spin-*` headers as Spin,
/// for a wildcard route, a named segment with an underscore and a chained
/// request (addresses and ports aside, which differ by nature).
#[test]
fn the_embedded_host_passes_the_same_spin_headers_as_spin() {
    let Some(spin) = spin_or_skip("the_embedded_host_passes_the_same_spin_headers_as_spin") else {
        return;
    };
    let config = HostConfig {
        manifest: project_root().join("tests/fixtures/probe.toml"),
        env: Vec::new(),
        args: Vec::new(),
    };
    let embedded = Host::start(config.clone());
    let spin = Host::spin_in(&spin, config, Arc::new(TempDir::new("spin-probe")));
    let headers = |host: &Host, path: &str| -> Vec<String> {
        let r = host.http.get(host.url(path)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let own = format!("127.0.0.1:{}", host.port);
        r.text()
            .unwrap()
            .lines()
            .map(|l| {
                let l = l.replace(&own, "HOST");
                match l.split_once(": ") {
                    // The client's port is the test's own, different each time.
                    Some(("spin-client-addr", addr)) => format!(
                        "spin-client-addr: {}",
                        addr.rsplit_once(':').map_or(addr, |(ip, _)| ip)
                    ),
                    _ => l,
                }
            })
            .collect()
    };
    for path in ["/probe/a/headers?x=1", "/item/headers", "/probe/chain"] {
        let ours = headers(&embedded, path);
        let spins = headers(&spin, path);
        assert!(
            ours.iter().any(|l| l.starts_with("spin-matched-route")),
            "{ours:?}"
        );
        assert_eq!(ours, spins, "{path}: the embedded host, then Spin");
    }
}
