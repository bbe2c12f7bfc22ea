//! The foundation, end to end over real HTTP through the host, with the test clock.

use revisit_tests::*;
use serde_json::Value;

fn json(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")),
    )
}

#[test]
fn the_whole_loop_from_delivery_to_closed_callback() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-01T10:00:00+01:00");
    let event = delivery_event("e-loop", "2026-12-01T10:00:00+01:00", "Europe/Berlin");

    // Delivery plans one product survey, due three days later.
    let (status, planned) = json(host.post_event(&event));
    assert_eq!(status, 202, "{planned}");
    assert_eq!(planned["duplicate"], false);
    let surveys = planned["surveys"].as_array().unwrap();
    assert_eq!(surveys.len(), 1);
    assert_eq!(surveys[0]["kind"], "product");
    assert_eq!(surveys[0]["due_at"], "2026-12-04T09:00:00Z");
    let survey_id = surveys[0]["survey_id"].as_str().unwrap().to_string();

    // The same event again plans nothing new.
    let (status, again) = json(host.post_event(&event));
    assert_eq!(status, 202);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["surveys"].as_array().unwrap().len(), 1);
    assert_eq!(again["surveys"][0]["survey_id"], survey_id.as_str());

    // Before it is due, the tick sends nothing.
    let (status, tick) = json(host.admin_post("/issuer/tick", ""));
    assert_eq!(status, 200, "{tick}");
    assert_eq!(tick["sent"], 0);
    assert!(sender.messages().is_empty());

    // Three days later at 10:00 customer time: one email with a link.
    host.set_clock("2026-12-04T10:00:00+01:00");
    let (_, tick) = json(host.admin_post("/issuer/tick", ""));
    assert_eq!(tick["sent"], 1, "{tick}");
    let messages = sender.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["channel"], "email");
    assert_eq!(m["to"], "anna@example.de");
    assert_eq!(m["survey_id"], survey_id.as_str());
    assert_eq!(m["locale"], "de");
    for field in ["message_id", "text", "link"] {
        assert!(m[field].is_string(), "message lacks {field}: {m}");
    }
    let link = link_path(m["link"].as_str().unwrap());
    // A second tick does not send it again.
    let (_, tick) = json(host.admin_post("/issuer/tick", ""));
    assert_eq!(tick["sent"], 0);
    assert_eq!(sender.messages().len(), 1);

    // The link opens the survey page; a GET records nothing.
    let page = host.http.get(host.url(&link)).send().unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    assert!(
        html.contains("<form") && html.contains("lang=\"de\""),
        "{html}"
    );
    let (_, state) = json(host.admin_get(&format!("/surveys/{survey_id}")));
    assert_eq!(state["state"], "sent");

    // NPS 3 with a comment is recorded; the same link again is a conflict.
    let post = |body: &str| {
        host.http
            .post(host.url(&link))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .unwrap()
    };
    let first = post("score=3&comment=Die+Lieferung+kam+zerkratzt+an");
    assert_eq!(first.status(), 200);
    assert!(
        first.text().unwrap().contains("2026-12-06"),
        "the thank-you page says when someone will call"
    );
    assert_eq!(post("score=9").status(), 409);
    // The escalator's tick (a scheduler's, every minute) makes the call.
    let (status, _) = json(host.admin_post("/escalator/tick", ""));
    assert_eq!(status, 200);

    // A callback task: low_score, owned by the agent who served, due 48 h later, with the comment.
    let (status, list) = json(host.admin_get("/callbacks?owner=agent-7"));
    assert_eq!(status, 200);
    let tasks = list["callbacks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{list}");
    let task = &tasks[0];
    assert_eq!(task["reason"], "low_score");
    assert_eq!(task["owner"], "agent-7");
    assert_eq!(task["state"], "open");
    assert_eq!(task["due_by"], "2026-12-06T09:00:00Z");
    assert_eq!(
        task["context"]["answer"]["comment"],
        "Die Lieferung kam zerkratzt an"
    );
    assert_eq!(task["context"]["answer"]["score"], 3);
    let task_id = task["task_id"].as_str().unwrap().to_string();
    let (_, one) = json(host.admin_get(&format!("/callbacks/{task_id}")));
    assert_eq!(one["task_id"], task_id.as_str());

    // Callable at 10:00 customer time, not at 22:30; the next window opens at 09:00.
    let window = format!("/callbacks/{task_id}/window");
    let (_, w) = json(host.admin_get(&window));
    assert_eq!(w["callable_now"], true, "{w}");
    assert_eq!(w["customer_local_time"], "2026-12-04T10:00:00+01:00");
    host.set_clock("2026-12-04T22:30:00+01:00");
    let (_, w) = json(host.admin_get(&window));
    assert_eq!(w["callable_now"], false);
    assert_eq!(w["reasons"], serde_json::json!(["quiet_hours"]));
    assert_eq!(w["next_window"]["start"], "2026-12-05T08:00:00Z");

    // Resolving closes it; the loop report shows it closed in time.
    host.set_clock("2026-12-05T10:00:00+01:00");
    let (status, closed) = json(host.admin_post(
        &format!("/callbacks/{task_id}/outcome"),
        r#"{"outcome":"resolved","resolution":"replacement sent","customer_satisfied":true,"note":"apologised"}"#,
    ));
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["state"], "resolved");
    let (_, report) = json(host.report("/reports/loop"));
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["closed"], 1);
    assert_eq!(report["closed_within_deadline"], 1);
    assert_eq!(report["closed_within_deadline_pct"], 100.0);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-01T10:00:00+01:00");
    let now = host.clock().timestamp();
    let event = delivery_event("e-bad", "2026-12-01T10:00:00+01:00", "Europe/Berlin");

    let (status, e) = json(host.post_signed(&event, now, "not-the-secret"));
    assert_eq!(status, 401);
    assert_eq!(e["error"]["code"], "unauthorized");
    let (status, e) = json(host.post_signed(&event, now - 600, WEBHOOK_SECRET));
    assert_eq!(status, 401);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5 minutes"),
        "{e}"
    );
    let unsigned = host
        .http
        .post(host.url("/events"))
        .body(event.clone())
        .send()
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(100 * 1024));
    let (status, e) = json(host.post_event(&big));
    assert_eq!(status, 413, "{e}");

    let (status, e) = json(host.post_event("{\"event_id\": \"e1\", "));
    assert_eq!(status, 400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("EOF"),
        "{e}"
    );
    let (status, e) = json(host.post_event(r#"{"event_id":"e1","type":"order.delivered","occurred_at":"2026-12-01T10:00:00Z","customer":{"id":"c"}}"#));
    assert_eq!(status, 422, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("order_id"),
        "{e}"
    );
    let (status, e) = json(host.post_event(r#"{"type":"order.delivered"}"#));
    assert_eq!(status, 400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("event_id"),
        "{e}"
    );

    // Nothing was stored by any of these.
    assert!(
        host.store_keys().iter().all(|k| !k.starts_with("sv/")),
        "{:?}",
        host.store_keys()
    );

    // Survey links: tampered or made-up tokens are 404, on GET and POST alike.
    let (_, planned) = json(host.post_event(&event));
    assert_eq!(planned["surveys"].as_array().unwrap().len(), 1);
    host.set_clock("2026-12-04T10:00:00+01:00");
    host.admin_post("/issuer/tick", "");
    let link = link_path(sender.messages()[0]["link"].as_str().unwrap());
    let mut tampered = link.clone().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        host.http.get(host.url(&tampered)).send().unwrap().status(),
        404
    );
    assert_eq!(
        host.http
            .post(host.url(&tampered))
            .body("score=3")
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        host.http
            .get(host.url("/s/not-a-token"))
            .send()
            .unwrap()
            .status(),
        404
    );
    // A bad score is 422 and records nothing; the link still takes a good one.
    let r = host
        .http
        .post(host.url(&link))
        .header("content-type", "application/json")
        .body(r#"{"score": 11}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = host
        .http
        .post(host.url(&link))
        .header("content-type", "application/json")
        .body(r#"{"score": 10}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    // Admin endpoints need the bearer token.
    assert_eq!(
        host.http
            .post(host.url("/issuer/tick"))
            .send()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        host.http
            .get(host.url("/reports/loop"))
            .bearer_auth("wrong")
            .send()
            .unwrap()
            .status(),
        401
    );
}

#[test]
fn concurrent_duplicates_plan_once_and_concurrent_answers_record_once() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-01T10:00:00+01:00");
    let event = delivery_event("e-race", "2026-12-01T10:00:00+01:00", "Europe/Berlin");

    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| s.spawn(|| json(host.post_event(&event))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .map(|(status, v)| {
                assert_eq!(status, 202, "{v}");
                v
            })
            .collect()
    });
    let firsts = results.iter().filter(|v| v["duplicate"] == false).count();
    assert_eq!(firsts, 1, "exactly one delivery is the first");
    // Exactly one survey was indexed for sending, and exactly one message goes
    // out. The due index is at least once (a duplicate that arrives while the
    // first is between creating and indexing indexes too, so a crash there
    // loses nothing): its entries may repeat, but name one survey.
    let bucket = "2026120409";
    let count = host
        .store_value(&format!("du/{bucket}/n"))
        .expect("due index counter");
    let count = i64::from_le_bytes(count.try_into().unwrap());
    let indexed: std::collections::BTreeSet<Vec<u8>> = (1..=count)
        .filter_map(|i| host.store_value(&format!("du/{bucket}/{i}")))
        .collect();
    assert_eq!(indexed.len(), 1, "the due index names one survey");
    host.set_clock("2026-12-04T10:00:00+01:00");
    let ticks: Vec<Value> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| json(host.admin_post("/issuer/tick", "")).1))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let sent: i64 = ticks.iter().map(|t| t["sent"].as_i64().unwrap()).sum();
    assert_eq!(sent, 1, "{ticks:?}");
    assert_eq!(sender.messages().len(), 1);

    let link = link_path(sender.messages()[0]["link"].as_str().unwrap());
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..50)
            .map(|i| {
                let (host, link) = (&host, &link);
                s.spawn(move || {
                    host.http
                        .post(host.url(link))
                        .header("content-type", "application/json")
                        .body(format!("{{\"score\": {}}}", i % 11))
                        .send()
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        49,
        "{statuses:?}"
    );
    let (_, summary) =
        json(host.report("/reports/summary?from=2026-12-04&to=2026-12-04&group_by=channel"));
    assert_eq!(summary["total"]["answers"], 1, "{summary}");
    assert_eq!(summary["total"]["issued"], 1, "{summary}");
}

#[test]
fn data_survives_a_host_restart() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-01T10:00:00+01:00");
    let (status, planned) = json(host.post_event(&delivery_event(
        "e-restart",
        "2026-12-01T10:00:00+01:00",
        "Asia/Shanghai",
    )));
    assert_eq!(status, 202);
    let survey_id = planned["surveys"][0]["survey_id"]
        .as_str()
        .unwrap()
        .to_string();

    let host = host.restart();
    host.set_clock("2026-12-01T10:05:00+01:00");
    let (status, survey) = json(host.admin_get(&format!("/surveys/{survey_id}")));
    assert_eq!(status, 200, "{survey}");
    assert_eq!(survey["state"], "planned");
    let (_, again) = json(host.post_event(&delivery_event(
        "e-restart",
        "2026-12-01T10:00:00+01:00",
        "Asia/Shanghai",
    )));
    assert_eq!(
        again["duplicate"], true,
        "the idempotency record survived too"
    );
}

#[test]
fn the_host_refuses_an_ungranted_store_and_an_unlisted_outbound_host() {
    // The probe app: one component granted `default`, one granted nothing.
    let target = Sender::start();
    let config = HostConfig {
        manifest: project_root().join("tests/fixtures/probe.toml"),
        env: vec![(
            "SPIN_VARIABLE_ALLOWED_ORIGIN".into(),
            format!("http://127.0.0.1:{}", target.port),
        )],
        args: Vec::new(),
    };
    let host = Host::start(config);
    let get = |p: &str| {
        let r = host.http.get(host.url(p)).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(get("/probe/kv?store=default"), (200, "opened".into()));
    let (status, body) = get("/probe/kv?store=other");
    assert_eq!(status, 403);
    assert!(body.contains("AccessDenied"), "{body}");
    let (status, body) = get("/nokv/kv?store=default");
    assert_eq!(status, 403);
    assert!(body.contains("AccessDenied"), "{body}");

    let allowed = format!("http://127.0.0.1:{}/x", target.port);
    assert_eq!(get(&format!("/probe/fetch?url={allowed}")).0, 200);
    assert_eq!(target.messages().len(), 1);
    let (status, body) = get("/probe/fetch?url=http://127.0.0.1:1/x");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    let (status, _) = get(&format!("/nokv/fetch?url={allowed}"));
    assert_eq!(status, 502);
    assert_eq!(
        target.messages().len(),
        1,
        "the denied requests never left the host"
    );
    assert!(host.log().contains("not in its allowed_outbound_hosts"));

    // In the Revisit app: a sender outside allowed_outbound_hosts gets nothing,
    // and the survey records the failure and stays planned for a retry.
    let sender = Sender::start();
    let config =
        HostConfig::revisit(sender.port).set("SPIN_VARIABLE_SENDER_ORIGIN", "http://127.0.0.1:1");
    let host = Host::start(config);
    host.set_clock("2026-12-01T10:00:00+01:00");
    let (_, planned) = json(host.post_event(&delivery_event(
        "e-denied",
        "2026-12-01T10:00:00+01:00",
        "Europe/Berlin",
    )));
    let survey_id = planned["surveys"][0]["survey_id"]
        .as_str()
        .unwrap()
        .to_string();
    host.set_clock("2026-12-04T10:00:00+01:00");
    let (_, tick) = json(host.admin_post("/issuer/tick", ""));
    assert_eq!(tick["failed"], 1, "{tick}");
    assert!(sender.messages().is_empty());
    let (_, survey) = json(host.admin_get(&format!("/surveys/{survey_id}")));
    assert_eq!(survey["state"], "planned");
    assert_eq!(survey["skip_reasons"], serde_json::json!(["send_failed"]));
}

#[test]
fn the_host_counts_the_memory_grows_of_each_components_requests() {
    let host = Host::start(HostConfig {
        manifest: project_root().join("tests/fixtures/probe.toml"),
        env: Vec::new(),
        args: Vec::new(),
    });
    let grows = || -> u64 {
        let (_, stats) = json(
            host.http
                .get(host.url("/.well-known/revisit-host/stats"))
                .send()
                .unwrap(),
        );
        stats["probe"]["memory_grows"]
            .as_u64()
            .unwrap_or_else(|| panic!("{stats}"))
    };
    let get = |p: &str| host.http.get(host.url(p)).send().unwrap().text().unwrap();
    for _ in 0..5 {
        assert_eq!(get("/probe/hello"), "hello");
    }
    assert_eq!(grows(), 0, "an instance's creation is not a grow");
    // `fresh` grows its memory once (by a few pages) on each request.
    for n in 1..=3 {
        assert_eq!(get("/probe/fresh"), "fresh");
        assert_eq!(grows(), n);
    }
}

#[test]
fn every_request_gets_an_instance_as_new_as_spin_gives() {
    // Spin builds a fresh instance per request; the host's pool reuses memory
    // slots, so every page a request wrote must be reset before the next:
    // zero-initialised statics, initialised data, memory grown at run time.
    // Checked with the pool (wasmtime's PAGEMAP_SCAN reset, where the kernel
    // has it) and without it.
    for pooling in ["1", "0"] {
        let config = HostConfig {
            manifest: project_root().join("tests/fixtures/probe.toml"),
            env: vec![("REVISIT_HOST_POOLING".into(), pooling.into())],
            args: Vec::new(),
        };
        let host = Host::start(config);
        let get = |p: &str| host.http.get(host.url(p)).send().unwrap().text().unwrap();
        assert_eq!(
            get("/probe/fresh-twice"),
            "stale: a zero-initialised static, an initialised static",
            "the check sees state left in its own instance"
        );
        for _ in 0..30 {
            assert_eq!(get("/probe/fresh"), "fresh", "pooling={pooling}");
        }
        std::thread::scope(|s| {
            let clients: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..25).map(|_| get("/probe/fresh")).collect::<Vec<_>>()))
                .collect();
            for c in clients {
                for body in c.join().unwrap() {
                    assert_eq!(body, "fresh", "concurrent, pooling={pooling}");
                }
            }
        });
    }
}
