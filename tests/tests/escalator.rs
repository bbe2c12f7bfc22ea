//! The low-score escalator, end to end: every reason, merging, the full repair
//! story with its re-survey, breaches, and agents' access.

use revisit_tests::*;
use serde_json::{json, Value};

const BERLIN: &str = "Europe/Berlin";

/// Deliver a high-value order on day 1 at 10:00 Berlin, answer its survey on
/// day 4, and run the escalator's tick (it makes the call the answer asks for).
fn answered_delivery(
    host: &Host,
    sender: &Sender,
    event_id: &str,
    cust: Value,
    day: u32,
    score: u8,
    comment: Option<&str>,
) -> (u16, Value) {
    host.set_clock(&format!("2026-12-{day:02}T10:00:00+01:00"));
    let body = event_body(
        event_id,
        "order.delivered",
        &format!("2026-12-{day:02}T10:00:00+01:00"),
        cust,
        json!({"category": "high_value", "agent_id": "agent-7"}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
    host.set_clock(&format!("2026-12-{:02}T10:00:00+01:00", day + 3));
    let seen = sender.messages().len();
    let links = host.tick_links(sender, seen);
    let (link, _) = links
        .iter()
        .find(|(_, m)| {
            m["to"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}@", event_cust(&body)))
        })
        .expect("a link for this customer")
        .clone();
    let answered = host.answer(&link, score, comment);
    // The scheduler's next tick makes the call the answer asks for.
    host.escalator_tick();
    answered
}

fn event_cust(body: &str) -> String {
    serde_json::from_str::<Value>(body).unwrap()["customer"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn task_of(host: &Host, customer_id: &str) -> Value {
    let all = host.callbacks("");
    let mine: Vec<&Value> = all
        .iter()
        .filter(|t| t["customer_id"] == customer_id)
        .collect();
    assert_eq!(mine.len(), 1, "one task for {customer_id}: {all:?}");
    mine[0].clone()
}

/// Post a high-value delivery at `at` (the clock is set there first).
fn deliver(host: &Host, event_id: &str, cust: Value, at: &str) {
    host.set_clock(at);
    let body = event_body(
        event_id,
        "order.delivered",
        at,
        cust,
        json!({"category": "high_value", "agent_id": "agent-7"}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
}

/// Tick at `at` and return the new links by customer id.
fn tick_at(host: &Host, sender: &Sender, at: &str) -> std::collections::BTreeMap<String, String> {
    host.set_clock(at);
    let seen = sender.messages().len();
    host.tick_links(sender, seen)
        .into_iter()
        .map(|(link, m)| {
            (
                m["to"]
                    .as_str()
                    .unwrap()
                    .split('@')
                    .next()
                    .unwrap()
                    .to_string(),
                link,
            )
        })
        .collect()
}

#[test]
fn every_reason_produces_its_task() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    // Time only moves forward, as it does for real.

    // recovered needs a complaint first (resolved), then a satisfied answer.
    host.set_clock("2026-12-01T09:00:00+01:00");
    let body = event_body(
        "r-rec0",
        "complaint.opened",
        "2026-12-01T09:00:00+01:00",
        customer("c-rec", BERLIN),
        json!({}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
    let complaint = task_of(&host, "c-rec");
    assert_eq!(complaint["reason"], "complaint");
    // Closed without a repair (refused), so no "did we fix it?" survey follows.
    host.admin_post(
        &format!(
            "/callbacks/{}/outcome",
            complaint["task_id"].as_str().unwrap()
        ),
        r#"{"outcome":"refused","resolution":"customer handled it with the courier"}"#,
    );

    // Thank-you and birthday calls are for key customers (SPEC 1, the
    // policy's `key_tiers`): c-plain's first top score makes no call.
    let key = |id: &str| {
        let mut c = customer(id, BERLIN);
        c["tier"] = json!("key");
        c
    };
    let mut bday = key("c-bday");
    bday["birthday"] = json!("1990-12-24");
    for (id, cust) in [
        ("r-low", customer("c-low", BERLIN)),
        ("r-promo", key("c-promo")),
        ("r-drop1", key("c-drop")),
        ("r-rec1", customer("c-rec", BERLIN)),
        ("r-bday", bday),
        ("r-pass", customer("c-pass", BERLIN)),
        ("r-plain", customer("c-plain", BERLIN)),
    ] {
        deliver(&host, id, cust, "2026-12-01T10:00:00+01:00");
    }
    let links = tick_at(&host, &sender, "2026-12-04T10:00:00+01:00");
    assert_eq!(links.len(), 7, "{links:?}");
    for (cust, score) in [
        ("c-low", 3),
        ("c-promo", 10),
        ("c-drop", 10),
        ("c-rec", 9),
        ("c-bday", 9),
        ("c-pass", 8),
        ("c-plain", 10),
    ] {
        assert_eq!(host.answer(&links[cust], score, Some("a comment")).0, 200);
    }
    // No call keeps the customer waiting: the escalator's tick makes them
    // all from the answer log.
    assert!(host
        .callbacks("")
        .iter()
        .all(|t| t["customer_id"] != "c-low" && t["customer_id"] != "c-promo"));
    let (_, tick) = Host::json(host.admin_post("/escalator/tick", ""));
    assert_eq!(tick["repairs_received"], 1, "c-low: {tick}");
    assert_eq!(
        tick["deferred_received"], 4,
        "c-promo, c-drop and c-bday (first top score), c-rec (recovered): {tick}"
    );
    // low_score.
    assert_eq!(task_of(&host, "c-low")["reason"], "low_score");
    // first_promoter: a customer's first top score. A thank-you call is outreach:
    // surveyed today, so the contact limit holds it until tomorrow.
    let promo = task_of(&host, "c-promo");
    assert_eq!(promo["reason"], "first_promoter");
    let (_, w) = Host::json(host.admin_get(&format!(
        "/callbacks/{}/window",
        promo["task_id"].as_str().unwrap()
    )));
    assert_eq!(w["reasons"], json!(["contact_limit"]), "{w}");
    assert_eq!(w["next_window"]["start"], "2026-12-05T08:00:00Z");
    // recovered: complained before, now satisfied.
    let open: Vec<Value> = host
        .callbacks("state=open")
        .into_iter()
        .filter(|t| t["customer_id"] == "c-rec")
        .collect();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["reason"], "recovered");
    // A passive (NPS 8) makes no task, nor an ordinary customer's first top score.
    assert!(host
        .callbacks("")
        .iter()
        .all(|t| t["customer_id"] != "c-pass" && t["customer_id"] != "c-plain"));
    // The birthday customer's thank-you call happens first; no birthday call while it is open.
    let thanks = task_of(&host, "c-bday");
    assert_eq!(thanks["reason"], "first_promoter");
    let (_, tick) = Host::json(host.admin_post("/escalator/tick", ""));
    assert_eq!(tick["birthday_callbacks"], 0, "{tick}");
    assert_eq!(tick["deferred_received"], 0, "nothing read twice: {tick}");
    host.admin_post(
        &format!("/callbacks/{}/outcome", thanks["task_id"].as_str().unwrap()),
        r#"{"outcome":"resolved","resolution":"thanked"}"#,
    );

    // dropping: 10 then 7 (an NPS drop of 3, not low).
    let promo = task_of(&host, "c-drop");
    assert_eq!(promo["reason"], "first_promoter");
    host.admin_post(
        &format!("/callbacks/{}/outcome", promo["task_id"].as_str().unwrap()),
        r#"{"outcome":"resolved","resolution":"thanked"}"#,
    );
    deliver(&host, "r-drop2", key("c-drop"), "2026-12-05T10:00:00+01:00");
    let links = tick_at(&host, &sender, "2026-12-08T10:00:00+01:00");
    assert_eq!(host.answer(&links["c-drop"], 7, None).0, 200);
    host.escalator_tick();
    let open: Vec<Value> = host
        .callbacks("state=open")
        .into_iter()
        .filter(|t| t["customer_id"] == "c-drop")
        .collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["reason"], "dropping");

    // complaint: 48 h, and it names the open work order it waits for.
    host.set_clock("2026-12-10T10:00:00+01:00");
    let body = event_body(
        "r-complaint",
        "complaint.opened",
        "2026-12-10T10:00:00+01:00",
        customer("c-complaint", BERLIN),
        json!({"work_order_id": "wo-1"}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
    let t = task_of(&host, "c-complaint");
    assert_eq!(t["reason"], "complaint");
    assert_eq!(t["due_by"], "2026-12-12T09:00:00Z");
    assert_eq!(t["work_order_id"], "wo-1");

    // late_delivery: delivered after the promised time.
    let body = event_body(
        "r-late",
        "order.delivered",
        "2026-12-10T10:00:00+01:00",
        customer("c-late", BERLIN),
        json!({"promised_at": "2026-12-08T18:00:00+01:00", "category": "standard"}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
    assert_eq!(task_of(&host, "c-late")["reason"], "late_delivery");

    // missed_call at 21:40 customer time: due 10:00 next morning.
    host.set_clock("2026-12-10T21:40:00+01:00");
    let body = event_body(
        "r-missed",
        "call.missed",
        "2026-12-10T21:40:00+01:00",
        customer("c-missed", BERLIN),
        json!({"agent_id": "agent-9"}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
    let t = task_of(&host, "c-missed");
    assert_eq!(t["reason"], "missed_call");
    assert_eq!(t["due_by"], "2026-12-11T09:00:00Z");
    assert_eq!(t["priority"], 1);

    // vip_repeat: a VIP complaining about the same thing again merges into the open task.
    let mut vip = customer("c-vip", BERLIN);
    vip["tier"] = json!("vip");
    for (id, at) in [
        ("r-vip1", "2026-12-11T10:00:00+01:00"),
        ("r-vip2", "2026-12-12T10:00:00+01:00"),
    ] {
        host.set_clock(at);
        let body = event_body(
            id,
            "complaint.opened",
            at,
            vip.clone(),
            json!({"topic": "delivery_time"}),
        );
        assert_eq!(host.post_event(&body).status(), 202);
    }
    let t = task_of(&host, "c-vip");
    assert_eq!(t["reason"], "complaint");
    assert!(
        t["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("vip_repeat")),
        "{t}"
    );
    assert_eq!(t["context"]["merged"].as_array().unwrap().len(), 1);

    // birthday: a satisfied key customer, found by the tick on the day (it
    // reads only the days since it last ran), once a year.
    host.set_clock("2026-12-23T10:00:00+01:00");
    let (_, tick) = Host::json(host.admin_post("/escalator/tick", ""));
    assert_eq!(tick["birthday_callbacks"], 0, "not before the day: {tick}");
    host.set_clock("2026-12-24T10:00:00+01:00");
    let (_, tick) = Host::json(host.admin_post("/escalator/tick", ""));
    assert_eq!(tick["birthday_callbacks"], 1, "{tick}");
    let open: Vec<Value> = host
        .callbacks("state=open")
        .into_iter()
        .filter(|t| t["customer_id"] == "c-bday")
        .collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["reason"], "birthday");
    let (_, tick) = Host::json(host.admin_post("/escalator/tick", ""));
    assert_eq!(tick["birthday_callbacks"], 0);
}

#[test]
fn duplicate_and_concurrent_escalations_make_one_task() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-10T10:00:00+01:00");
    // 12 different complaints for one customer at once: one caller, one conversation.
    std::thread::scope(|s| {
        for i in 0..12 {
            let host = &host;
            s.spawn(move || {
                let body = event_body(
                    &format!("dup-{i}"),
                    "complaint.opened",
                    "2026-12-10T10:00:00+01:00",
                    customer("c-dup", BERLIN),
                    json!({}),
                );
                assert_eq!(host.post_event(&body).status(), 202);
            });
        }
    });
    let t = task_of(&host, "c-dup");
    assert_eq!(t["context"]["merged"].as_array().unwrap().len(), 11, "{t}");
    // The same complaint delivered again (and the escalator's tick) add nothing.
    let body = event_body(
        "dup-0",
        "complaint.opened",
        "2026-12-10T10:00:00+01:00",
        customer("c-dup", BERLIN),
        json!({}),
    );
    let (_, again) = Host::json(host.post_event(&body));
    assert_eq!(again["duplicate"], true);
    host.admin_post("/escalator/tick", "");
    let t2 = task_of(&host, "c-dup");
    assert_eq!(t2["context"]["merged"], t["context"]["merged"]);
    let (_, report) = Host::json(host.report("/reports/loop"));
    assert_eq!(report["created"], 1, "{report}");
}

#[test]
fn the_full_repair_story_closes_the_loop() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let (status, _) = answered_delivery(
        &host,
        &sender,
        "story",
        customer("c-story", BERLIN),
        1,
        2,
        Some("The fridge arrived dented"),
    );
    assert_eq!(status, 200);
    let task = task_of(&host, "c-story");
    assert_eq!(task["owner"], "agent-7", "the responsible agent owns it");
    assert_eq!(
        task["context"]["answer"]["comment"],
        "The fridge arrived dented"
    );
    assert_eq!(task["priority"], 1, "NPS 2 is very low");
    // The caller's context: the events timeline and the customer's local time.
    assert_eq!(
        task["context"]["events"][0]["type"], "order.delivered",
        "{task}"
    );
    let id = task["task_id"].as_str().unwrap().to_string();
    let (_, one) = Host::json(host.admin_get(&format!("/callbacks/{id}")));
    assert_eq!(one["customer_local_time"], "2026-12-04T10:00:00+01:00");
    // Claimed first; claiming twice is a conflict that names the allowed states.
    let (s, claimed) = Host::json(host.admin_post(&format!("/callbacks/{id}/claim"), ""));
    assert_eq!((s, claimed["state"].as_str()), (200, Some("claimed")));
    let (s, e) = Host::json(host.admin_post(&format!("/callbacks/{id}/claim"), ""));
    assert_eq!(s, 409, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("reached"),
        "{e}"
    );
    let outcome = |at: &str, body: &str| {
        host.set_clock(at);
        Host::json(host.admin_post(&format!("/callbacks/{id}/outcome"), body))
    };
    // Created 4 Dec 10:00. Unreachable twice, spaced; the window shows the spacing.
    let (s, t) = outcome(
        "2026-12-04T11:00:00+01:00",
        r#"{"outcome":"unreachable","note":"no answer"}"#,
    );
    assert_eq!((s, t["state"].as_str()), (200, Some("claimed")));
    let (_, w) = Host::json(host.admin_get(&format!("/callbacks/{id}/window")));
    assert_eq!(w["reasons"], json!(["retry_spacing"]), "{w}");
    outcome("2026-12-04T13:30:00+01:00", r#"{"outcome":"unreachable"}"#);
    let (_, t) = outcome(
        "2026-12-04T16:00:00+01:00",
        r#"{"outcome":"reached","note":"customer upset, wants replacement"}"#,
    );
    assert_eq!(t["state"], "reached");
    let (_, t) = outcome(
        "2026-12-04T16:30:00+01:00",
        r#"{"outcome":"resolved","resolution":"replacement fridge delivered","customer_satisfied":true}"#,
    );
    assert_eq!(t["state"], "resolved");
    let (s, e) = outcome("2026-12-04T16:31:00+01:00", r#"{"outcome":"reached"}"#);
    assert_eq!(s, 409, "{e}");

    // The re-survey goes out the next day; CSAT 5.
    host.set_clock("2026-12-05T17:00:00+01:00");
    let seen = sender.messages().len();
    let links = host.tick_links(&sender, seen);
    assert_eq!(links.len(), 1, "one re-survey");
    let (s, _) = host.answer(&links[0].0, 5, Some("Thank you, all good now"));
    assert_eq!(s, 200);
    assert_eq!(
        host.callbacks("state=open")
            .iter()
            .filter(|t| t["customer_id"] == "c-story")
            .count(),
        0,
        "no new task for the re-survey"
    );

    let (_, report) = Host::json(host.report("/reports/loop"));
    assert_eq!(report["recovery_rate_pct"], 100.0, "{report}");
    assert_eq!(report["resurveys_answered"], 1);
    assert_eq!(
        report["median_time_to_first_contact_minutes"], 360.0,
        "10:00 → 16:00"
    );
    assert_eq!(report["closed_within_deadline_pct"], 100.0);
    assert_eq!(report["by_owner"]["agent-7"]["resolved"], 1, "{report}");
    assert_eq!(report["by_reason"]["low_score"]["created"], 1, "{report}");

    // Closed, the task has left agent-7's open index but is still listed from
    // the day it was created on, within the days asked for.
    let mine = |query: &str| -> Vec<String> {
        host.callbacks(query)
            .iter()
            .filter(|t| t["customer_id"] == "c-story")
            .map(|t| t["state"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(mine("owner=agent-7&state=open"), Vec::<String>::new());
    assert_eq!(mine("owner=agent-7&state=resolved"), vec!["resolved"]);
    assert_eq!(mine("owner=agent-7"), vec!["resolved"]);
    host.set_clock("2026-12-20T10:00:00+01:00");
    assert_eq!(
        mine("owner=agent-7&days=10"),
        Vec::<String>::new(),
        "created 16 days ago"
    );
    assert_eq!(mine("owner=agent-7&days=20"), vec!["resolved"]);
    let (s, _) = Host::json(host.admin_get("/callbacks?days=200"));
    assert_eq!(s, 400);
}

#[test]
fn a_low_resurvey_reopens_the_task() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    answered_delivery(
        &host,
        &sender,
        "reopen",
        customer("c-reopen", BERLIN),
        1,
        4,
        None,
    );
    let id = task_of(&host, "c-reopen")["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    host.admin_post(
        &format!("/callbacks/{id}/outcome"),
        r#"{"outcome":"resolved","resolution":"advice given"}"#,
    );
    host.set_clock("2026-12-05T12:00:00+01:00");
    let links = host.tick_links(&sender, sender.messages().len());
    host.answer(&links[0].0, 1, Some("still broken"));
    host.escalator_tick();
    let t = task_of(&host, "c-reopen");
    assert_eq!(t["task_id"], id.as_str());
    assert_eq!(t["state"], "open", "{t}");
    let (_, report) = Host::json(host.report("/reports/loop"));
    assert_eq!(report["recovery_rate_pct"], 0.0);
}

#[test]
fn a_breach_escalates_to_the_supervisor_exactly_once() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    answered_delivery(
        &host,
        &sender,
        "breach",
        customer("c-breach", BERLIN),
        1,
        3,
        None,
    );
    let id = task_of(&host, "c-breach")["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, tick) = Host::json(host.admin_post("/escalator/tick", ""));
    assert_eq!(tick["breached"], 0);
    host.set_clock("2026-12-06T11:00:00+01:00");
    let ticks: Vec<Value> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| Host::json(host.admin_post("/escalator/tick", "")).1))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        ticks
            .iter()
            .map(|t| t["breached"].as_i64().unwrap())
            .sum::<i64>(),
        1,
        "{ticks:?}"
    );
    Host::json(host.admin_post("/escalator/tick", ""));
    let queue = host.callbacks("owner=supervisor");
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0]["task_id"], id.as_str());
    assert_eq!(queue[0]["breached"], true);
    let (_, report) = Host::json(host.report("/reports/loop"));
    assert_eq!(report["breached"], 1);
}

#[test]
fn an_agent_sees_and_changes_only_their_own_tasks() {
    let sender = Sender::start();
    let config = HostConfig::revisit(sender.port).set(
        "SPIN_VARIABLE_AGENT_TOKENS",
        r#"{"agent-7":"tok-7","agent-8":"tok-8"}"#,
    );
    let host = Host::start(config);
    answered_delivery(
        &host,
        &sender,
        "roles",
        customer("c-roles", BERLIN),
        1,
        3,
        None,
    );
    let id = task_of(&host, "c-roles")["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let as_agent = |token: &str, path: &str| {
        host.http
            .get(host.url(path))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(as_agent("tok-7", &format!("/callbacks/{id}")), 200);
    assert_eq!(as_agent("tok-8", &format!("/callbacks/{id}")), 403);
    assert_eq!(as_agent("tok-8", "/callbacks?owner=agent-7"), 403);
    assert_eq!(as_agent("tok-8", "/reports/loop"), 403);
    assert_eq!(as_agent("nobody", "/callbacks"), 401);
    let (_, own) = Host::json(
        host.http
            .get(host.url("/callbacks"))
            .bearer_auth("tok-8")
            .send()
            .unwrap(),
    );
    assert_eq!(own["callbacks"], json!([]));
    let post = |token: &str| {
        host.http
            .post(host.url(&format!("/callbacks/{id}/outcome")))
            .bearer_auth(token)
            .body(r#"{"outcome":"reached"}"#)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post("tok-8"), 403);
    assert_eq!(post("tok-7"), 200);
}
