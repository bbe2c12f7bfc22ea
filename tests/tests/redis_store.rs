//! The app past one machine: its `default` store on Redis (Spin's
//! `type = "redis"`, through `--runtime-config-file`), served by two host
//! processes at once. Nothing may rely on one process: duplicates are caught
//! across hosts, each answer is recorded once whichever host took it, counts
//! are exact, and what one host wrote the other reads.

use revisit_tests::*;
use serde_json::json;

const LINKS: usize = 120;

#[test]
fn two_hosts_on_one_redis_take_each_event_and_answer_once_and_count_exactly() {
    let redis = RedisServer::start();
    let sender = Sender::start();
    let dir = TempDir::new("redis-config");
    let config = HostConfig::revisit(sender.port)
        .arg("--runtime-config-file")
        .arg(redis.runtime_config(&dir).display().to_string());
    let hosts = [Host::start(config.clone()), Host::start(config)];
    let both = |now: &str| hosts.iter().for_each(|h| h.set_clock(now));

    // Every event is posted to both hosts: one plans it, the other sees a duplicate.
    both("2026-12-01T10:00:00+01:00");
    let t = hosts[0].clock().timestamp();
    let duplicates = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for host in &hosts {
            let duplicates = &duplicates;
            s.spawn(move || {
                for i in 0..LINKS {
                    let body = numbered_delivery("r", i, 4, "2026-12-01T10:00:00+01:00");
                    let (status, v) = Host::json(host.post_signed(&body, t, WEBHOOK_SECRET));
                    assert_eq!(status, 202, "{v}");
                    if v["duplicate"] == true {
                        duplicates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(
        duplicates.into_inner(),
        LINKS,
        "each event planned once across the two hosts"
    );

    // The second host sends what the first planned (the due index is in Redis).
    both("2026-12-04T10:00:00+01:00");
    let (_, tick) = Host::json(hosts[1].admin_post("/issuer/tick", ""));
    assert_eq!(tick["sent"], LINKS, "{tick}");
    let links: Vec<String> = sender
        .messages()
        .iter()
        .map(|m| link_path(m["link"].as_str().unwrap()))
        .collect();
    assert_eq!(links.len(), LINKS);

    // Each link answered four times, alternately through each host, by 8 clients.
    let work: Vec<(usize, usize)> = (0..LINKS * 4).map(|n| (n % LINKS, n % 2)).collect();
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for chunk in work.chunks(work.len() / 8 + 1) {
            let (hosts, links, results) = (&hosts, &links, &results);
            s.spawn(move || {
                for &(i, h) in chunk {
                    let (status, v) = hosts[h].answer(&links[i], (i % 11) as u8, None);
                    results.lock().unwrap().push((i, status, v));
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    assert!(
        results.iter().all(|(_, s, _)| *s == 200 || *s == 409),
        "no 5xx"
    );
    let recorded: Vec<_> = results.iter().filter(|(_, s, _)| *s == 200).collect();
    let mut answered: Vec<usize> = recorded.iter().map(|(i, _, _)| *i).collect();
    answered.sort();
    answered.dedup();
    assert_eq!(recorded.len(), LINKS, "one answer recorded per survey");
    assert_eq!(answered.len(), LINKS);

    // Either host reports the same exact counts.
    for host in &hosts {
        let (_, summary) = Host::json(
            host.report("/reports/summary?from=2026-12-04&to=2026-12-04&group_by=agent"),
        );
        assert_eq!(summary["total"]["answers"], LINKS, "{summary}");
        assert_eq!(summary["total"]["issued"], LINKS, "{summary}");
        let per_agent = sum_of_rows(&summary, "answers");
        assert_eq!(per_agent, LINKS as i64, "{summary}");
    }

    // Every low answer makes one callback (the escalator's tick, on either
    // host), listed by both hosts.
    let (status, tick) = Host::json(hosts[1].admin_post("/escalator/tick", ""));
    assert_eq!(status, 200, "{tick}");
    let repairs = recorded
        .iter()
        .filter(|(_, _, v)| !v["callback_by"].is_null())
        .count();
    assert!(repairs > 0);
    let open = |h: &Host| {
        let mut ids: Vec<String> = h
            .callbacks("state=open")
            .iter()
            .map(|t| t["task_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(open(&hosts[0]).len(), repairs);
    assert_eq!(open(&hosts[0]), open(&hosts[1]));

    // Counters are in Redis as INCRBY keeps them: decimal text.
    let mut redis = redis.connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut redis).unwrap();
    let counters: Vec<Vec<u8>> = keys
        .iter()
        .filter(|k| k.ends_with("/n"))
        .map(|k| redis::cmd("GET").arg(k).query(&mut redis).unwrap())
        .collect();
    assert!(!counters.is_empty(), "{keys:?}");
    assert!(
        counters
            .iter()
            .all(|v| !v.is_empty() && v.iter().all(u8::is_ascii_digit)),
        "{counters:?}"
    );
}

/// Redis going away makes requests fail with a `503` (nothing hangs, nothing
/// is half-written to a store that is not there), and once it is back the
/// host serves again without a restart.
#[test]
fn a_lost_redis_is_a_503_and_the_host_serves_again_once_it_is_back() {
    let redis = RedisServer::start();
    let port = redis.port;
    let sender = Sender::start();
    let dir = TempDir::new("redis-config");
    let host = Host::start(
        HostConfig::revisit(sender.port)
            .arg("--runtime-config-file")
            .arg(redis.runtime_config(&dir).display().to_string()),
    );
    host.set_clock("2026-12-01T10:00:00+01:00");
    let event = |id: &str| {
        event_body(
            id,
            "order.delivered",
            "2026-12-01T10:00:00+01:00",
            customer(&format!("c-{id}"), "Europe/Berlin"),
            json!({"category": "high_value"}),
        )
    };
    // Several at once, so the host holds several idle connections to Redis.
    std::thread::scope(|s| {
        for i in 0..8 {
            let (host, event) = (&host, &event);
            s.spawn(move || {
                assert_eq!(
                    host.post_event(&event(&format!("before-{i}"))).status(),
                    202
                )
            });
        }
    });

    drop(redis);
    let (status, error) = Host::json(host.post_event(&event("during")));
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["error"]["code"], "store_unavailable", "{error}");

    let _redis = RedisServer::start_on(port);
    let (status, planned) = Host::json(host.post_event(&event("during")));
    assert_eq!(status, 202, "the retry succeeds at once: {planned}");
    assert_eq!(planned["duplicate"], false, "{planned}");
}
