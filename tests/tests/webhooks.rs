//! Outbound webhooks end to end: a low answer becomes a task, and the
//! escalator's tick tells a Standard Webhooks receiver (which fails twice
//! first), a Slack channel (Block Kit) and a receiver that never answers.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use revisit_tests::*;
use serde_json::{json, Value};

/// A receiver that accepts connections and never answers.
fn silent_receiver() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Slack's documented Block Kit limits for what this app sends (header,
/// section with text or fields, actions with link buttons).
fn assert_block_kit(message: &Value) {
    let text = message["text"]
        .as_str()
        .expect("a top-level text for notifications");
    assert!(!text.is_empty() && text.len() <= 40_000);
    let blocks = message["blocks"].as_array().expect("blocks");
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    for b in blocks {
        let plain = |t: &Value, max: usize| {
            assert_eq!(t["type"], "plain_text", "{b}");
            let s = t["text"].as_str().unwrap();
            assert!(!s.is_empty() && s.chars().count() <= max, "{b}");
        };
        let mrkdwn = |t: &Value, max: usize| {
            assert_eq!(t["type"], "mrkdwn", "{b}");
            let s = t["text"].as_str().unwrap();
            assert!(!s.is_empty() && s.chars().count() <= max, "{b}");
        };
        match b["type"].as_str().unwrap() {
            "header" => plain(&b["text"], 150),
            "section" => {
                assert!(b.get("text").is_some() || b.get("fields").is_some(), "{b}");
                if let Some(t) = b.get("text") {
                    mrkdwn(t, 3000);
                }
                if let Some(fields) = b.get("fields") {
                    let fields = fields.as_array().unwrap();
                    assert!(!fields.is_empty() && fields.len() <= 10, "{b}");
                    fields.iter().for_each(|f| mrkdwn(f, 2000));
                }
            }
            "actions" => {
                let elements = b["elements"].as_array().unwrap();
                assert!(!elements.is_empty() && elements.len() <= 25, "{b}");
                for e in elements {
                    assert_eq!(e["type"], "button", "{b}");
                    plain(&e["text"], 75);
                    assert!(e["url"].as_str().unwrap().len() <= 3000);
                    assert!(e["action_id"].as_str().unwrap().len() <= 255);
                }
            }
            other => panic!("a block type this app does not send: {other}"),
        }
    }
}

#[test]
fn task_events_reach_a_signed_receiver_once_after_two_failures_and_slack_as_block_kit() {
    let sender = Sender::start();
    let receiver = Sender::start();
    receiver.fail_first("/hooks", 2);
    let (_silent, silent_port) = silent_receiver();
    let hooks = json!([
        {"url": format!("{}/hooks", receiver.origin()), "secret": STANDARD_WEBHOOK_SECRET,
         "events": ["task.created", "task.closed", "answer.recorded"]},
        {"url": format!("{}/slack", receiver.origin()), "kind": "slack", "events": ["task.created", "task.breached"]},
        {"url": format!("http://127.0.0.1:{silent_port}/never"), "secret": STANDARD_WEBHOOK_SECRET, "events": ["task.created"]},
    ]);
    let host = Host::start(
        HostConfig::revisit(sender.port)
            .set("SPIN_VARIABLE_WEBHOOKS", &hooks.to_string())
            .set("SPIN_VARIABLE_WEBHOOK_ORIGIN", &receiver.origin())
            .set(
                "SPIN_VARIABLE_SECOND_WEBHOOK_ORIGIN",
                &format!("http://127.0.0.1:{silent_port}"),
            )
            .set("SPIN_VARIABLE_PUBLIC_BASE_URL", "https://revisit.example"),
    );

    // A delivery in Berlin, its survey three days later, answered low with reasons.
    host.set_clock("2026-12-01T10:00:00+01:00");
    let body = event_body(
        "wh-ev1",
        "order.delivered",
        "2026-12-01T10:00:00+01:00",
        json!({"id": "wh-c1", "name": "Li <Wei> & Co", "email": "wh-c1@example.com", "locale": "en-GB", "time_zone": "Europe/Berlin"}),
        json!({"category": "high_value"}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
    host.set_clock("2026-12-04T10:00:00+01:00");
    let links = host.tick_links(&sender, 0);
    let body = json!({"score": 1, "comment": "Arrived broken <again>", "reasons": ["damaged"]});
    let r = host
        .http
        .post(host.url(&links[0].0))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        receiver.on("/hooks").is_empty(),
        "sent by the tick, not the answer"
    );

    // Tick 1 makes the task; /hooks answers 500; the silent receiver holds
    // the tick only as long as the timeout; Slack gets its message.
    let started = Instant::now();
    let (status, tick) = Host::json(host.admin_post("/escalator/tick", ""));
    assert_eq!(status, 200, "{tick}");
    let task = host
        .callbacks("")
        .into_iter()
        .find(|t| t["customer_id"] == "wh-c1")
        .expect("a task");
    let task_id = task["task_id"].as_str().unwrap().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "a silent receiver held the tick {:?}",
        started.elapsed()
    );
    assert_eq!(tick["webhooks"]["delivered"], 1, "{tick}");
    assert_eq!(tick["webhooks"]["failed"], 2, "{tick}");
    let (_, failed) = Host::json(host.admin_get("/webhooks/deliveries?status=failed"));
    let failed = failed["deliveries"].as_array().unwrap().clone();
    assert_eq!(failed.len(), 2, "{failed:?}");
    let silent = failed
        .iter()
        .find(|d| d["url"].as_str().unwrap().ends_with("/never"))
        .unwrap();
    assert!(
        silent["last_error"]
            .as_str()
            .unwrap()
            .contains("no answer within"),
        "{silent}"
    );
    assert!(
        silent["next_attempt_at"].is_string(),
        "tried again later: {silent}"
    );
    let hooks_failed = failed
        .iter()
        .find(|d| d["url"].as_str().unwrap().ends_with("/hooks"))
        .unwrap();
    assert_eq!(hooks_failed["last_status"], 500);

    // Tick 2 a minute later: fails again. Tick 3 after the 5-minute backoff: delivered.
    host.set_clock("2026-12-04T10:01:00+01:00");
    Host::json(host.admin_post("/escalator/tick", ""));
    host.set_clock("2026-12-04T10:06:00+01:00");
    Host::json(host.admin_post("/escalator/tick", ""));
    // Later ticks send nothing more for it.
    for at in ["2026-12-04T10:40:00+01:00", "2026-12-04T13:00:00+01:00"] {
        host.set_clock(at);
        Host::json(host.admin_post("/escalator/tick", ""));
    }
    let created: Vec<Value> = receiver
        .on("/hooks")
        .into_iter()
        .filter(|r| r["body"].as_str().unwrap().contains("\"task.created\""))
        .collect();
    assert_eq!(
        created.len(),
        3,
        "two failures, then one delivery: {created:?}"
    );
    assert_eq!(created.iter().filter(|r| r["answered"] == 202).count(), 1);
    let id = &created[0]["headers"]["webhook-id"];
    assert!(
        created.iter().all(|r| r["headers"]["webhook-id"] == *id),
        "one id across retries"
    );
    let payload = verify_standard_webhook(&created[2]);
    assert_eq!(
        created[2]["headers"]["content-length"],
        created[2]["body"].as_str().unwrap().len().to_string(),
        "sent with its length, not chunked"
    );
    assert_eq!(payload["type"], "task.created");
    assert_eq!(payload["data"]["task_id"], task_id);
    assert_eq!(payload["data"]["score"], 1);
    assert_eq!(payload["data"]["customer_reasons"], json!(["damaged"]));
    assert!(payload["data"].get("phone").is_none() && payload["data"].get("email").is_none());
    // The answer itself, once, signed, after the receiver came back.
    let answered: Vec<Value> = receiver
        .on("/hooks")
        .into_iter()
        .filter(|r| r["body"].as_str().unwrap().contains("\"answer.recorded\""))
        .collect();
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(
        verify_standard_webhook(&answered[0])["data"]["reasons"],
        json!(["damaged"])
    );

    // Slack: one Block Kit message, escaped, with the deadline as Slack's
    // date token (each reader's own time) and a button to the task.
    let slack = receiver.on("/slack");
    assert_eq!(slack.len(), 1, "{slack:?}");
    let message: Value = serde_json::from_str(slack[0]["body"].as_str().unwrap()).unwrap();
    assert_block_kit(&message);
    let text = message.to_string();
    assert!(text.contains("Li &lt;Wei&gt; &amp; Co"), "{text}");
    assert!(text.contains("Arrived broken &lt;again&gt;"), "{text}");
    let due: chrono::DateTime<chrono::Utc> = task["due_by"].as_str().unwrap().parse().unwrap();
    assert!(
        text.contains(&format!("<!date^{}^", due.timestamp())),
        "{text}"
    );
    let button = message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    assert_eq!(
        button["elements"][0]["url"],
        format!("https://revisit.example/queue/page#task-{task_id}")
    );
    assert!(slack[0]["headers"].get("webhook-signature").is_none());

    // Closing the task tells the receiver, at the next tick.
    let outcome = json!({"outcome": "resolved", "resolution": "replacement sent", "customer_satisfied": true});
    let (status, closed) = Host::json(host.admin_post(
        &format!("/callbacks/{task_id}/outcome"),
        &outcome.to_string(),
    ));
    assert_eq!(status, 200, "{closed}");
    Host::json(host.admin_post("/escalator/tick", ""));
    let closed: Vec<Value> = receiver
        .on("/hooks")
        .into_iter()
        .filter(|r| r["body"].as_str().unwrap().contains("\"task.closed\""))
        .collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(
        verify_standard_webhook(&closed[0])["data"]["state"],
        "resolved"
    );

    // The log: newest first, filtered; a bad filter is refused with the choices.
    let (_, delivered) = Host::json(host.admin_get("/webhooks/deliveries?status=delivered"));
    assert_eq!(
        delivered["deliveries"].as_array().unwrap().len(),
        4,
        "{delivered}"
    );
    let (status, bad) = Host::json(host.admin_get("/webhooks/deliveries?status=lost"));
    assert_eq!(status, 400);
    assert!(bad["error"]["message"]
        .as_str()
        .unwrap()
        .contains("pending, delivered or failed"));
    assert_eq!(
        host.http
            .get(host.url("/webhooks/deliveries"))
            .send()
            .unwrap()
            .status(),
        401
    );
}

#[test]
fn a_mistake_in_the_webhooks_variable_never_stops_a_task_and_says_what_to_fix() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port).set(
        "SPIN_VARIABLE_WEBHOOKS",
        r#"[{"url":"https://crm.example/h","events":["task.created"]}]"#,
    ));
    host.set_clock("2026-12-01T10:00:00+01:00");
    let body = event_body(
        "wh-ev2",
        "order.delivered",
        "2026-12-01T10:00:00+01:00",
        customer("wh-c2", "Europe/Berlin"),
        json!({"category": "high_value"}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
    host.set_clock("2026-12-04T10:00:00+01:00");
    let links = host.tick_links(&sender, 0);
    assert_eq!(host.answer(&links[0].0, 1, Some("late")).0, 200);
    let (status, tick) = Host::json(host.admin_post("/escalator/tick", ""));
    assert_eq!(status, 200);
    assert!(
        host.callbacks("")
            .iter()
            .any(|t| t["customer_id"] == "wh-c2"),
        "the task exists: {tick}"
    );
    assert!(
        tick["webhooks_error"]
            .as_str()
            .unwrap()
            .contains("secret is required"),
        "{tick}"
    );
    let (_, log) = Host::json(host.admin_get("/webhooks/deliveries"));
    assert!(
        log["webhooks_error"].as_str().unwrap().contains("whsec_"),
        "{log}"
    );
}
