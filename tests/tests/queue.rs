//! The callback window checker's queue over HTTP across a day, and the agent's
//! page in a real headless browser.

use revisit_tests::*;
use serde_json::{json, Value};

const BERLIN: &str = "Europe/Berlin";

fn agents() -> HostConfig {
    let sender = 9; // no surveys are sent in these tests
    HostConfig::revisit(sender).set(
        "SPIN_VARIABLE_AGENT_TOKENS",
        r#"{"agent-7":"tok-7","agent-8":"tok-8"}"#,
    )
}

/// A complaint (48 h) or a missed call (1 h) for `cust`, served by `agent`.
fn escalate(host: &Host, id: &str, kind: &str, cust: Value, agent: &str, extra: Value) {
    let at = host.clock().to_rfc3339();
    let mut extra = extra;
    extra["agent_id"] = json!(agent);
    let body = event_body(id, kind, &at, cust, extra);
    assert_eq!(host.post_event(&body).status(), 202);
}

fn queue(host: &Host, token: &str) -> Value {
    let r = host
        .http
        .get(host.url("/queue"))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["customer_name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_queue_follows_the_day() {
    let host = Host::start(agents());
    host.set_clock("2026-12-07T10:00:00+01:00");
    let mut anna = customer("anna", BERLIN);
    anna["name"] = json!("Anna");
    let mut ben = customer("ben", BERLIN);
    ben["name"] = json!("Ben");
    let mut chen = customer("chen", "Asia/Shanghai");
    chen["name"] = json!("Chen");
    escalate(&host, "q-1", "complaint.opened", anna, "agent-7", json!({}));
    escalate(&host, "q-2", "call.missed", ben, "agent-7", json!({}));
    // A complaint about a repair whose technician has not come yet: the
    // customer is waiting for our call (SPEC 1), and the caller sees that
    // the visit is only booked.
    let booked = event_body(
        "q-3-booked",
        "work_order.opened",
        "2026-12-06T10:00:00+01:00",
        customer("chen", "Asia/Shanghai"),
        json!({"work_order_id": "wo-chen"}),
    );
    assert_eq!(host.post_event(&booked).status(), 202);
    escalate(
        &host,
        "q-3",
        "complaint.opened",
        chen,
        "agent-7",
        json!({"work_order_id": "wo-chen"}),
    );
    escalate(
        &host,
        "q-4",
        "complaint.opened",
        customer("other", BERLIN),
        "agent-8",
        json!({}),
    );

    // 10:00 Berlin (17:00 Shanghai): the missed call first (1 h), then the complaints.
    let q = queue(&host, "tok-7");
    assert_eq!(
        names(&q["callable_now"]),
        vec!["Ben", "Anna", "Chen"],
        "{q}"
    );
    assert_eq!(q["callable_now"][2]["work_order"]["state"], "booked", "{q}");
    assert_eq!(
        q["callable_now"][2]["work_order"]["work_order_id"],
        "wo-chen"
    );
    assert_eq!(
        q["callable_now"][0]["customer_local_time"],
        "2026-12-07T10:00:00+01:00"
    );
    // An agent sees only their own queue.
    assert_eq!(
        host.http
            .get(host.url("/queue?owner=agent-8"))
            .bearer_auth("tok-7")
            .send()
            .unwrap()
            .status(),
        403
    );

    // The repair is done: the caller sees it.
    let done = event_body(
        "q-3-done",
        "repair.completed",
        &host.clock().to_rfc3339(),
        customer("chen", "Asia/Shanghai"),
        json!({"work_order_id": "wo-chen"}),
    );
    assert_eq!(host.post_event(&done).status(), 202);
    let q = queue(&host, "tok-7");
    assert_eq!(names(&q["callable_now"]), vec!["Ben", "Anna", "Chen"]);
    assert_eq!(
        q["callable_now"][2]["work_order"]["state"], "completed",
        "{q}"
    );

    // 22:30 Berlin: nobody in Berlin may be called; Shanghai is at 05:30, also closed.
    host.set_clock("2026-12-07T22:30:00+01:00");
    let q = queue(&host, "tok-7");
    assert!(q["callable_now"].as_array().unwrap().is_empty(), "{q}");
    let later = q["later"].as_array().unwrap();
    assert_eq!(later.len(), 3);
    // Chen's window (09:00 Shanghai = 02:00 Z) opens before the Berliners' (09:00 Berlin = 08:00 Z).
    assert_eq!(later[0]["customer_name"], "Chen");
    assert_eq!(later[0]["next_window"]["start"], "2026-12-08T01:00:00Z");
    assert_eq!(later[1]["next_window"]["start"], "2026-12-08T08:00:00Z");

    // Next morning at 09:00 Berlin everyone is callable again, most urgent first.
    host.set_clock("2026-12-08T09:00:00+01:00");
    let q = queue(&host, "tok-7");
    assert_eq!(
        names(&q["callable_now"]),
        vec!["Ben", "Anna", "Chen"],
        "{q}"
    );
}

#[test]
fn the_agents_page_works_in_a_real_browser() {
    let sender = Sender::start();
    let host = Host::start(
        agents()
            .set(
                "SPIN_VARIABLE_SENDER_URL",
                &format!("http://127.0.0.1:{}/m", sender.port),
            )
            .set(
                "SPIN_VARIABLE_SENDER_ORIGIN",
                &format!("http://127.0.0.1:{}", sender.port),
            ),
    );
    // Eve answers a survey with a low score and a hostile comment.
    host.set_clock("2026-12-04T10:00:00+01:00");
    let mut eve = customer("eve", BERLIN);
    eve["name"] = json!("Eve");
    let body = event_body(
        "b-0",
        "order.delivered",
        "2026-12-01T10:00:00+01:00",
        eve,
        json!({"category": "high_value", "agent_id": "agent-7"}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
    let links = host.tick_links(&sender, 0);
    let hostile = r#"<script>alert("x")</script><img src=x onerror=alert(1)>"#;
    // Eve answers with the reasons she picked (as the page's second step posts them).
    let answer = json!({"score": 1, "comment": hostile, "reasons": ["damaged", "late_delivery"]});
    let r = host
        .http
        .post(host.url(&links[0].0))
        .header("content-type", "application/json")
        .body(answer.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    host.escalator_tick();
    host.set_clock("2026-12-07T10:00:00+01:00");
    // Anna complains about a visit that is booked, not done; Ben's number is known.
    let booked = event_body(
        "b-1-booked",
        "work_order.opened",
        "2026-12-06T10:00:00+01:00",
        customer("cust-b-1", BERLIN),
        json!({"work_order_id": "wo-anna"}),
    );
    assert_eq!(host.post_event(&booked).status(), 202);
    for (id, kind, name, extra) in [
        (
            "b-1",
            "complaint.opened",
            "Anna",
            json!({"work_order_id": "wo-anna"}),
        ),
        ("b-2", "call.missed", "Ben", json!({})),
    ] {
        let mut c = customer(&format!("cust-{id}"), BERLIN);
        c["name"] = json!(name);
        if name == "Ben" {
            c["phone"] = json!("+4915112345678");
        }
        escalate(&host, id, kind, c, "agent-7", extra);
    }
    escalate(
        &host,
        "b-3",
        "complaint.opened",
        customer("someone-else", BERLIN),
        "agent-8",
        json!({}),
    );
    // The comment is hostile input: escaped in the HTML, shown as text.
    let page = host
        .http
        .get(host.url("/queue/page"))
        .bearer_auth("tok-7")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("Ben") && page.contains("Anna") && !page.contains("someone-else"),
        "{page}"
    );
    assert!(
        page.contains("&lt;script&gt;") && !page.contains("<script>"),
        "{page}"
    );
    // What the caller needs before dialling: the number, the order, the visit's state.
    assert!(page.contains("href=\"tel:+4915112345678\""), "{page}");
    assert!(
        page.contains("order-b-1") && page.contains("wo-anna"),
        "{page}"
    );
    assert!(page.contains("class=\"wo-booked\""), "{page}");

    // The reasons Eve picked, in the agent's queue and on the page in its language.
    let eve = queue(&host, "tok-7")["callable_now"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["customer_name"] == "Eve")
        .cloned()
        .expect("Eve is to be called now");
    assert_eq!(eve["customer_reasons"], json!(["damaged", "late_delivery"]));
    assert!(
        page.contains("Damaged or faulty · Late delivery"),
        "the customer's reasons: {page}"
    );

    let artifacts = project_root().join("tests/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("queue-page.png");
    let _ = std::fs::remove_file(&shot);
    let steps = browser_steps(
        "queue.mjs",
        &[host.base.as_ref(), "tok-7".as_ref(), shot.as_os_str()],
    );
    let loaded = &steps[0];
    assert_eq!(
        loaded["lang"], "zh-Hans",
        "Chinese for a zh browser: {loaded}"
    );
    assert_eq!(
        loaded["now"],
        json!(["Eve", "Ben", "Anna"]),
        "an overdue NPS 1 first: {loaded}"
    );
    assert!(
        loaded["comments"][0].as_str().unwrap().contains(hostile),
        "shown as text: {loaded}"
    );
    assert_eq!(
        loaded["violations"],
        json!([]),
        "WCAG 2.1 AA on the agent's page: {loaded}"
    );
    let resolved = &steps[1];
    assert_eq!(
        resolved["now"],
        json!(["Ben", "Anna"]),
        "the resolved task left the queue: {resolved}"
    );
    assert_eq!(resolved["scriptsRun"], json!([]), "no injected script ran");
    assert!(
        resolved["notice"].as_str().unwrap().contains("resolved"),
        "{resolved}"
    );
    assert_eq!(steps[2]["lang"], "en");
    let task_id = resolved["taskId"].as_str().unwrap();
    let (_, task) = Host::json(host.admin_get(&format!("/callbacks/{task_id}")));
    assert_eq!(task["state"], "resolved");
    assert_eq!(task["resolution"], "replacement sent");
    assert_eq!(task["customer_satisfied"], true);
    assert_eq!(resolved["isRepair"], true, "{resolved}");
    assert_eq!(
        (task["root_cause"].as_str(), task["department"].as_str()),
        (Some("product_defect"), Some("quality"))
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.len() > 1000 && png.starts_with(b"\x89PNG"),
        "a real PNG"
    );
}

#[test]
fn a_task_past_its_validity_is_too_late_and_expires() {
    let host = Host::start(agents());
    host.set_clock("2026-12-01T10:00:00+01:00");
    // "Has the installer come yet?" must not be asked weeks later.
    escalate(
        &host,
        "late-1",
        "complaint.opened",
        customer("ivy", BERLIN),
        "agent-7",
        json!({"work_order_id": "install-1"}),
    );
    let done = event_body(
        "late-1-done",
        "installation.completed",
        &host.clock().to_rfc3339(),
        customer("ivy", BERLIN),
        json!({"work_order_id": "install-1"}),
    );
    assert_eq!(host.post_event(&done).status(), 202);
    let task = host.callbacks("owner=agent-7")[0].clone();
    let id = task["task_id"].as_str().unwrap().to_string();
    let (_, w) = Host::json(host.admin_get(&format!("/callbacks/{id}/window")));
    assert_eq!(w["callable_now"], true, "{w}");

    host.set_clock("2026-12-20T10:00:00+01:00");
    let (_, w) = Host::json(host.admin_get(&format!("/callbacks/{id}/window")));
    assert_eq!(w["callable_now"], false);
    assert!(
        w["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("too_late")),
        "{w}"
    );
    assert!(w["next_window"].is_null());
    let (_, tick) = Host::json(host.admin_post("/escalator/tick", ""));
    assert_eq!(tick["expired"], 1, "{tick}");
    let (_, t) = Host::json(host.admin_get(&format!("/callbacks/{id}")));
    assert_eq!(t["state"], "expired");
    assert!(queue(&host, "tok-7")["callable_now"]
        .as_array()
        .unwrap()
        .is_empty());
}
