//! SPEC section 1, end to end through the embedded host: follow-ups that never
//! recreate the failures they exist to prevent — coverage, stale events, work
//! orders, open cases, key customers, the caller's context, honest metrics,
//! the outer loop, overdue work orders and missed calls.

use std::collections::BTreeSet;

use revisit_tests::*;
use serde_json::{json, Value};

const BERLIN: &str = "Europe/Berlin";

/// Set the clock to `at` and post an event of `kind` there.
fn post(host: &Host, id: &str, kind: &str, at: &str, cust: &Value, extra: Value) -> Value {
    host.set_clock(at);
    let (status, v) = Host::json(host.post_event(&event_body(id, kind, at, cust.clone(), extra)));
    assert_eq!(status, 202, "{id}: {v}");
    v
}

/// Post an event that happened at `occurred` but reaches us at `now`.
fn post_late(
    host: &Host,
    id: &str,
    kind: &str,
    occurred: &str,
    now: &str,
    cust: &Value,
    extra: Value,
) {
    host.set_clock(now);
    let (status, v) =
        Host::json(host.post_event(&event_body(id, kind, occurred, cust.clone(), extra)));
    assert_eq!(status, 202, "{id}: {v}");
}

fn tick(host: &Host, at: &str) -> Value {
    host.set_clock(at);
    let (status, v) = Host::json(host.admin_post("/issuer/tick", ""));
    assert_eq!(status, 200, "{v}");
    v
}

fn escalator_tick(host: &Host) -> Value {
    let (status, v) = Host::json(host.admin_post("/escalator/tick", ""));
    assert_eq!(status, 200, "{v}");
    v
}

fn survey(host: &Host, id: &str) -> Value {
    Host::json(host.admin_get(&format!("/surveys/{id}"))).1
}

fn tasks_of(host: &Host, customer_id: &str) -> Vec<Value> {
    host.callbacks("days=92")
        .into_iter()
        .filter(|t| t["customer_id"] == customer_id)
        .collect()
}

fn outcome(host: &Host, task_id: &str, body: Value) -> (u16, Value) {
    Host::json(host.admin_post(&format!("/callbacks/{task_id}/outcome"), &body.to_string()))
}

#[test]
fn every_customer_is_reached_on_the_channels_they_have_at_once() {
    // The default configuration, as a new user has it.
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    // A domestic Chinese customer with only a phone number, zone inferred from it.
    let cn = json!({"id": "cn-1", "name": "王芳", "phone": "+8613812345678", "locale": "zh-CN"});
    let planned = post(
        &host,
        "cn-svc",
        "service.completed",
        "2026-12-07T10:00:00+08:00",
        &cn,
        json!({"work_order_id": "wo-cn"}),
    );
    let cn_survey = planned["surveys"][0]["survey_id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = tick(&host, "2026-12-07T12:05:00+08:00");
    assert_eq!(
        (t["sent"].as_i64(), t["messages"].as_i64()),
        (Some(1), Some(1)),
        "the same day: {t}"
    );
    let sms = &sender.messages()[0];
    assert_eq!(
        (sms["channel"].as_str(), sms["to"].as_str()),
        (Some("sms"), Some("+8613812345678"))
    );
    assert_eq!(sms["locale"], "zh-Hans");
    assert_eq!(sms["segments"], 1, "{sms}");
    assert_eq!(survey(&host, &cn_survey)["state"], "sent");

    // A cross-border customer: e-mail, international SMS and WhatsApp at once.
    let us = json!({"id": "us-1", "name": "Sam", "email": "sam@example.com", "phone": "+13125550123",
        "whatsapp": "+13125550124", "locale": "en-US", "time_zone": "America/Chicago"});
    let planned = post(
        &host,
        "us-dlv",
        "order.delivered",
        "2026-12-07T10:00:00-06:00",
        &us,
        json!({"category": "high_value"}),
    );
    let us_survey = planned["surveys"][0]["survey_id"].clone();
    let t = tick(&host, "2026-12-10T10:05:00-06:00");
    assert_eq!(t["sent"], 1, "{t}");
    let three: Vec<Value> = sender
        .messages()
        .into_iter()
        .filter(|m| m["survey_id"] == us_survey)
        .collect();
    assert_eq!(three.len(), 3, "{three:?}");
    let channels: BTreeSet<&str> = three
        .iter()
        .map(|m| m["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, BTreeSet::from(["email", "sms", "whatsapp"]));
    let links: BTreeSet<&str> = three.iter().map(|m| m["link"].as_str().unwrap()).collect();
    assert_eq!(links.len(), 3, "each channel its own link");
    assert!(three
        .iter()
        .all(|m| m["survey_id"] == three[0]["survey_id"]));
    // One contact, not three: a survey the next day still fits the default
    // limit of three a week.
    post(
        &host,
        "us-svc",
        "service.completed",
        "2026-12-10T16:00:00-06:00",
        &us,
        json!({"work_order_id": "wo-us"}),
    );
    let t = tick(&host, "2026-12-11T10:15:00-06:00");
    assert_eq!(t["sent"], 1, "three messages were one contact: {t}");
    // The first answer on any channel wins.
    let by = |c: &str| {
        link_path(
            three.iter().find(|m| m["channel"] == c).unwrap()["link"]
                .as_str()
                .unwrap(),
        )
    };
    assert_eq!(host.answer(&by("whatsapp"), 9, None).0, 200);
    assert_eq!(host.answer(&by("email"), 2, None).0, 409);
}

#[test]
fn a_call_is_never_made_months_late() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let c = customer("late-1", BERLIN);
    // A missed call reported 90 days late: recorded, born expired, never callable.
    let now = "2026-12-07T10:00:00+01:00";
    post_late(
        &host,
        "late-call",
        "call.missed",
        "2026-09-08T10:00:00+01:00",
        now,
        &c,
        json!({}),
    );
    let t = &tasks_of(&host, "late-1")[0];
    assert_eq!(t["state"], "expired", "{t}");
    assert!(
        t["resolution"].as_str().unwrap().starts_with("too late"),
        "{t}"
    );
    let (_, w) = Host::json(host.admin_get(&format!(
        "/callbacks/{}/window",
        t["task_id"].as_str().unwrap()
    )));
    assert_eq!(w["callable_now"], false);
    assert!(host.callbacks("state=open").is_empty());
    // A delivery late three months ago opens no thank-you call today.
    let d = customer("late-2", BERLIN);
    post_late(
        &host,
        "late-dlv",
        "order.delivered",
        "2026-09-08T10:00:00+01:00",
        now,
        &d,
        json!({"category": "standard", "promised_at": "2026-09-05T10:00:00+01:00"}),
    );
    assert_eq!(tasks_of(&host, "late-2")[0]["state"], "expired");
    // The tick breaches nothing: no deadline was ever live.
    let tick = escalator_tick(&host);
    assert_eq!(tick["breached"], 0, "{tick}");
    let (_, report) = Host::json(host.report("/reports/loop"));
    assert_eq!(
        (
            report["too_late"].as_i64(),
            report["closed_within_deadline"].as_i64()
        ),
        (Some(2), Some(0)),
        "{report}"
    );
    // A missed call reported three hours late is still called.
    post(
        &host,
        "fresh-call",
        "call.missed",
        "2026-12-07T10:00:00+01:00",
        &customer("late-3", BERLIN),
        json!({}),
    );
    host.set_clock("2026-12-07T13:00:00+01:00");
    assert_eq!(tasks_of(&host, "late-3")[0]["state"], "open");
}

#[test]
fn the_customer_waiting_for_us_is_called_while_the_work_is_open_and_nobody_asks_if_it_is_fixed() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let mut c = customer("wo-1", BERLIN);
    c["phone"] = json!("+4915112345678");
    // A broadband outage: a visit is booked, then the customer complains and calls.
    post(
        &host,
        "wo-open",
        "work_order.opened",
        "2026-12-07T09:00:00+01:00",
        &c,
        json!({"work_order_id": "wo-net", "order_id": "order-net"}),
    );
    post(
        &host,
        "wo-complaint",
        "complaint.opened",
        "2026-12-07T10:00:00+01:00",
        &c,
        json!({"work_order_id": "wo-net", "order_id": "order-net", "topic": "no internet"}),
    );
    let task = &tasks_of(&host, "wo-1")[0];
    let id = task["task_id"].as_str().unwrap();
    let (_, w) = Host::json(host.admin_get(&format!("/callbacks/{id}/window")));
    assert_eq!(
        w["callable_now"], true,
        "a complaint never waits for the work: {w}"
    );
    assert_eq!(w["work_order"]["state"], "booked", "{w}");
    // The caller's page says the visit is only booked.
    let (_, full) = Host::json(host.admin_get(&format!("/callbacks/{id}")));
    assert_eq!(full["work_order"]["state"], "booked");
    assert_eq!(full["phone"], "+4915112345678");
    assert_eq!(full["orders"], json!(["order-net"]));
    // The missed call merges into the task, with its own source; the task stays callable.
    post(
        &host,
        "wo-missed",
        "call.missed",
        "2026-12-07T10:30:00+01:00",
        &c,
        json!({"order_id": "order-net-2"}),
    );
    let (_, full) = Host::json(host.admin_get(&format!("/callbacks/{id}")));
    assert_eq!(
        full["reasons"],
        json!(["complaint", "missed_call"]),
        "{full}"
    );
    assert_eq!(full["context"]["merged"][0]["source_id"], "event:wo-missed");
    assert_eq!(full["orders"], json!(["order-net", "order-net-2"]));
    // The timeline is current, not a snapshot from creation.
    let kinds: Vec<&str> = full["context"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["work_order.opened", "complaint.opened", "call.missed"]
    );
    let (_, w) = Host::json(host.admin_get(&format!("/callbacks/{id}/window")));
    assert_eq!(w["callable_now"], true, "{w}");
}

#[test]
fn the_product_is_surveyed_once_after_the_installation_and_the_resurvey_waits_for_a_revisit() {
    let sender = Sender::start();
    // Limits loose enough that only the work orders hold anything here.
    let rules = r#"{"limits": {"per_day": 5, "per_week": 20}}"#;
    let host =
        Host::start(HostConfig::revisit(sender.port).set("SPIN_VARIABLE_CONTACT_RULES", rules));
    let c = customer("inst-1", BERLIN);
    let order = json!({"order_id": "order-fridge", "category": "high_value"});
    let planned = post(
        &host,
        "inst-dlv",
        "order.delivered",
        "2026-12-01T10:00:00+01:00",
        &c,
        order.clone(),
    );
    let product = planned["surveys"][0]["survey_id"]
        .as_str()
        .unwrap()
        .to_string();
    post(
        &host,
        "inst-book",
        "work_order.opened",
        "2026-12-02T10:00:00+01:00",
        &c,
        json!({"order_id": "order-fridge", "work_order_id": "wo-fridge"}),
    );
    // Day 3 after delivery: the installation is booked, not done: no product survey.
    let t = tick(&host, "2026-12-04T10:05:00+01:00");
    assert_eq!(
        (t["sent"].as_i64(), t["deferred"].as_i64()),
        (Some(0), Some(1)),
        "{t}"
    );
    assert_eq!(
        survey(&host, &product)["skip_reasons"],
        json!(["service_not_completed"])
    );
    // Installed on day 6: the installation the same day, the product three days later, once.
    let done = post(
        &host,
        "inst-done",
        "installation.completed",
        "2026-12-06T10:00:00+01:00",
        &c,
        json!({"order_id": "order-fridge", "work_order_id": "wo-fridge"}),
    );
    let kinds: Vec<(&str, &str)> = done["surveys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap(),
                s["survey_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds[1],
        ("product", product.as_str()),
        "the order's one product survey: {done}"
    );
    assert_eq!(survey(&host, &product)["due_at"], "2026-12-09T09:00:00Z");
    let t = tick(&host, "2026-12-06T12:05:00+01:00");
    assert_eq!(t["sent"], 1, "the installation survey: {t}");
    let t = tick(&host, "2026-12-09T10:05:00+01:00");
    assert_eq!(t["sent"], 1, "the product survey: {t}");
    let product_msgs: Vec<Value> = sender
        .messages()
        .into_iter()
        .filter(|m| m["survey_id"] == product.as_str())
        .collect();
    assert_eq!(product_msgs.len(), 1, "one product survey per order");
    // A low product score; the call books a revisit and is resolved: the
    // "did we fix it?" re-survey waits for the revisit to be done.
    assert_eq!(
        host.answer(
            &link_path(product_msgs[0]["link"].as_str().unwrap()),
            3,
            Some("it is noisy")
        )
        .0,
        200
    );
    host.escalator_tick();
    let task = tasks_of(&host, "inst-1")
        .into_iter()
        .find(|t| t["reason"] == "low_score")
        .unwrap();
    post(
        &host,
        "inst-revisit",
        "work_order.opened",
        "2026-12-09T11:00:00+01:00",
        &c,
        json!({"order_id": "order-fridge", "work_order_id": "wo-fridge-2"}),
    );
    let (s, v) = outcome(
        &host,
        task["task_id"].as_str().unwrap(),
        json!({"outcome": "resolved",
        "resolution": "technician booked to fix the fan", "customer_satisfied": true, "root_cause": "installation"}),
    );
    assert_eq!(s, 200, "{v}");
    let t = tick(&host, "2026-12-10T11:30:00+01:00");
    assert_eq!(
        (t["sent"].as_i64(), t["deferred"].as_i64()),
        (Some(0), Some(1)),
        "the revisit is not done: {t}"
    );
    post(
        &host,
        "inst-revisit-done",
        "repair.completed",
        "2026-12-10T15:00:00+01:00",
        &c,
        json!({"order_id": "order-fridge", "work_order_id": "wo-fridge-2"}),
    );
    let seen = sender.messages().len();
    tick(&host, "2026-12-11T09:30:00+01:00");
    let resurvey = sender.messages()[seen..]
        .iter()
        .any(|m| m["survey_id"] != product.as_str());
    assert!(
        resurvey,
        "the re-survey once the revisit is done: {:?}",
        &sender.messages()[seen..]
    );
}

#[test]
fn a_return_cancels_and_an_open_case_holds_whenever_it_arrived() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    // A return requested while the parcel was in transit, before the delivery webhook.
    let r = customer("ret-1", BERLIN);
    post(
        &host,
        "ret-req",
        "return.requested",
        "2026-11-30T10:00:00+01:00",
        &r,
        json!({"order_id": "order-ret"}),
    );
    post(
        &host,
        "ret-closed",
        "case.closed",
        "2026-11-30T16:00:00+01:00",
        &r,
        json!({"order_id": "order-ret"}),
    );
    let planned = post(
        &host,
        "ret-dlv",
        "order.delivered",
        "2026-12-01T10:00:00+01:00",
        &r,
        json!({"order_id": "order-ret", "category": "high_value"}),
    );
    let returned = planned["surveys"][0]["survey_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A complaint that reached us before a late delivery webhook.
    let k = customer("cmp-1", BERLIN);
    post(
        &host,
        "cmp-open",
        "complaint.opened",
        "2026-12-01T10:30:00+01:00",
        &k,
        json!({"order_id": "order-cmp"}),
    );
    let planned = post(
        &host,
        "cmp-dlv",
        "order.delivered",
        "2026-12-01T11:00:00+01:00",
        &k,
        json!({"order_id": "order-cmp", "category": "high_value"}),
    );
    let held = planned["surveys"][0]["survey_id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = tick(&host, "2026-12-04T11:05:00+01:00");
    assert_eq!(
        (
            t["sent"].as_i64(),
            t["dropped"].as_i64(),
            t["deferred"].as_i64()
        ),
        (Some(0), Some(1), Some(1)),
        "{t}"
    );
    assert_eq!(survey(&host, &returned)["state"], "cancelled");
    assert_eq!(
        survey(&host, &returned)["skip_reasons"],
        json!(["returned"])
    );
    assert_eq!(survey(&host, &held)["state"], "planned");
    assert_eq!(survey(&host, &held)["skip_reasons"], json!(["open_case"]));
    // Past its window while the complaint stays open: expired, never sent.
    let t = tick(&host, "2026-12-08T11:05:00+01:00");
    assert_eq!(t["dropped"], 1, "{t}");
    assert_eq!(survey(&host, &held)["state"], "expired");
    assert!(sender.messages().is_empty());
}

#[test]
fn a_missed_call_is_acknowledged_at_once_and_closes_when_the_customer_gets_through() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let mut c = customer("mc-1", BERLIN);
    c["phone"] = json!("+4915112345678");
    c["locale"] = json!("de-DE");
    post(
        &host,
        "mc-call",
        "call.missed",
        "2026-12-07T14:00:00+01:00",
        &c,
        json!({}),
    );
    let msgs = sender.messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(
        (msgs[0]["kind"].as_str(), msgs[0]["to"].as_str()),
        (Some("missed_call_ack"), Some("+4915112345678"))
    );
    assert!(
        msgs[0]["text"]
            .as_str()
            .unwrap()
            .contains("innerhalb einer Stunde"),
        "{}",
        msgs[0]
    );
    // The same event again: no second SMS.
    post(
        &host,
        "mc-call",
        "call.missed",
        "2026-12-07T14:00:00+01:00",
        &c,
        json!({}),
    );
    assert_eq!(sender.messages().len(), 1);
    let task = &tasks_of(&host, "mc-1")[0];
    assert_eq!(task["state"], "open");
    // The customer gets through to us: the task closes by itself.
    post(
        &host,
        "mc-answered",
        "call.answered",
        "2026-12-07T14:20:00+01:00",
        &c,
        json!({}),
    );
    let (_, t) =
        Host::json(host.admin_get(&format!("/callbacks/{}", task["task_id"].as_str().unwrap())));
    assert_eq!(t["state"], "superseded", "{t}");
    assert!(host.callbacks("state=open").is_empty());
    // At night no SMS (the callback is due in the morning).
    let mut n = customer("mc-2", BERLIN);
    n["phone"] = json!("+4915112345679");
    post(
        &host,
        "mc-night",
        "call.missed",
        "2026-12-07T22:40:00+01:00",
        &n,
        json!({}),
    );
    assert_eq!(sender.messages().len(), 1);
    let (_, report) = Host::json(host.report("/reports/loop"));
    assert_eq!(
        (report["superseded"].as_i64(), report["closed"].as_i64()),
        (Some(1), Some(0)),
        "{report}"
    );
}

#[test]
fn a_work_order_open_48_hours_gets_a_proactive_call() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let c = customer("od-1", BERLIN);
    let done = customer("od-2", BERLIN);
    post(
        &host,
        "od-open",
        "work_order.opened",
        "2026-12-07T10:00:00+01:00",
        &c,
        json!({"work_order_id": "wo-late"}),
    );
    post(
        &host,
        "od-open2",
        "work_order.opened",
        "2026-12-07T10:00:00+01:00",
        &done,
        json!({"work_order_id": "wo-ok"}),
    );
    post(
        &host,
        "od-done2",
        "repair.completed",
        "2026-12-08T10:00:00+01:00",
        &done,
        json!({"work_order_id": "wo-ok"}),
    );
    host.set_clock("2026-12-09T09:00:00+01:00");
    assert_eq!(
        escalator_tick(&host)["overdue_work_orders"],
        0,
        "not before 48 h"
    );
    host.set_clock("2026-12-09T10:30:00+01:00");
    assert_eq!(escalator_tick(&host)["overdue_work_orders"], 1);
    let t = &tasks_of(&host, "od-1")[0];
    assert_eq!(
        (t["reason"].as_str(), t["work_order_id"].as_str()),
        (Some("work_order_overdue"), Some("wo-late"))
    );
    assert!(
        tasks_of(&host, "od-2").is_empty(),
        "a completed work order needs no call"
    );
    assert_eq!(escalator_tick(&host)["overdue_work_orders"], 0, "once");
}

#[test]
fn a_repair_closes_only_when_the_customer_confirms() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    post(
        &host,
        "hm-c",
        "complaint.opened",
        "2026-12-07T10:00:00+01:00",
        &customer("hm-1", BERLIN),
        json!({}),
    );
    let id = tasks_of(&host, "hm-1")[0]["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = outcome(
        &host,
        &id,
        json!({"outcome": "resolved", "resolution": "explained", "customer_satisfied": false}),
    );
    assert_eq!(s, 422, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("reached"),
        "{v}"
    );
    let (s, v) = outcome(
        &host,
        &id,
        json!({"outcome": "resolved", "resolution": "x", "customer_satisfied": true, "root_cause": "weather"}),
    );
    assert_eq!(s, 422, "{v}");
    let (_, t) = Host::json(host.admin_get(&format!("/callbacks/{id}")));
    assert_eq!(
        (t["state"].as_str(), t["attempts"].as_array().unwrap().len()),
        (Some("open"), 0),
        "nothing recorded: {t}"
    );
}

/// One repair task of the outer-loop scenario.
struct Case {
    customer: String,
    week: usize,
    ending: &'static str,
    cause: Option<&'static str>,
}

#[test]
fn the_findings_and_loop_reports_agree_with_a_scenario_of_sixty_tasks() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let weeks = ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"];
    let causes = [
        Some("delivery"),
        Some("product_defect"),
        Some("delivery"),
        Some("billing"),
        None,
    ];
    let endings = ["resolved", "resolved", "refused", "resolved", "unreachable"];
    // Sixty complaints over four weeks, each closed one way or another.
    let mut cases = Vec::new();
    for n in 0..60 {
        let week = n % 4;
        // Delivery problems fall after logistics' fix in week 2 (16 Nov).
        let cause = if week >= 2 && causes[n % 5] == Some("delivery") {
            Some("product_defect")
        } else {
            causes[n % 5]
        };
        cases.push(Case {
            customer: format!("fl-{n}"),
            week,
            ending: endings[(n / 4) % 5],
            cause,
        });
    }
    // Week by week, time moving forward: the complaints come in on Monday at
    // 10:00; half are closed at 11:00, the other half on Thursday, past the
    // 48 h deadline (ids by case number).
    let mut ids = vec![String::new(); cases.len()];
    for (w, monday) in weeks.iter().enumerate() {
        let at = format!("{monday}T10:00:00+01:00");
        for (n, c) in cases.iter().enumerate().filter(|(_, c)| c.week == w) {
            post(
                &host,
                &format!("fl-ev-{n}"),
                "complaint.opened",
                &at,
                &customer(&c.customer, BERLIN),
                json!({}),
            );
            ids[n] = tasks_of(&host, &c.customer)[0]["task_id"]
                .as_str()
                .unwrap()
                .to_string();
        }
        let thursday = (chrono::NaiveDate::parse_from_str(monday, "%Y-%m-%d").unwrap()
            + chrono::Duration::days(3))
        .to_string();
        for (day, late) in [(monday.to_string(), false), (thursday, true)] {
            host.set_clock(&format!("{day}T11:00:00+01:00"));
            for (n, c) in cases
                .iter()
                .enumerate()
                .filter(|(n, c)| c.week == w && (n % 2 == 1) == late)
            {
                let body = match c.ending {
                    "resolved" => {
                        json!({"outcome": "resolved", "resolution": "fixed", "customer_satisfied": true, "root_cause": c.cause})
                    }
                    "refused" => json!({"outcome": "refused", "root_cause": c.cause}),
                    _ => json!({"outcome": "unreachable"}),
                };
                let times = if c.ending == "unreachable" { 3 } else { 1 };
                for _ in 0..times {
                    let (s, v) = outcome(&host, &ids[n], body.clone());
                    assert_eq!(s, 200, "{v}");
                }
            }
        }
    }
    let (_, fix) = Host::json(host.admin_post("/findings/fixes",
        &json!({"cause": "delivery", "change": "switched courier for bulky goods", "fixed_at": "2026-11-16T00:00:00Z"}).to_string()));
    assert_eq!(fix["fix"]["department"], "logistics", "{fix}");

    // Independently: what the reports must say.
    let counted =
        |c: &&Case| c.ending != "unreachable" && (c.ending == "resolved" || c.cause.is_some());
    let cause_of = |c: &Case| c.cause.unwrap_or("unclassified");
    let (_, r) = Host::json(host.report("/reports/findings?from=2026-11-02&to=2026-11-29"));
    assert_eq!(
        r["weeks"],
        json!(["2026-W45", "2026-W46", "2026-W47", "2026-W48"]),
        "{r}"
    );
    for (w, week) in r["all"].as_array().unwrap().iter().enumerate() {
        let expected = cases.iter().filter(|c| c.week == w).filter(counted).count() as i64;
        assert_eq!(week["complaints"], expected, "week {w}: {week}");
    }
    for dept in r["departments"].as_array().unwrap() {
        for cause in dept["causes"].as_array().unwrap() {
            let name = cause["cause"].as_str().unwrap();
            let expected = cases
                .iter()
                .filter(counted)
                .filter(|c| cause_of(c) == name)
                .count() as i64;
            assert_eq!(cause["total"], expected, "{name}: {cause}");
        }
    }
    let delivery_weeks: Vec<i64> = (0..4)
        .map(|w| {
            cases
                .iter()
                .filter(|c| c.week == w)
                .filter(counted)
                .filter(|c| cause_of(c) == "delivery")
                .count() as i64
        })
        .collect();
    let all_weeks: Vec<i64> = (0..4)
        .map(|w| cases.iter().filter(|c| c.week == w).filter(counted).count() as i64)
        .collect();
    let effect = &r["fixes"][0];
    // The fix's week (W47) is in neither period.
    assert_eq!(
        effect["before"]["count"],
        delivery_weeks[0] + delivery_weeks[1],
        "{effect}"
    );
    assert_eq!(effect["after"]["count"], delivery_weeks[3], "{effect}");
    let share = |part: i64, whole: i64| (part as f64 * 1000.0 / whole as f64).round() / 10.0;
    assert_eq!(
        effect["before"]["share_pct"],
        share(
            delivery_weeks[0] + delivery_weeks[1],
            all_weeks[0] + all_weeks[1]
        )
    );
    assert_eq!(effect["after"]["share_pct"], 0.0);

    let (_, l) = Host::json(host.report("/reports/loop"));
    let resolved: Vec<(usize, &Case)> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| c.ending == "resolved")
        .collect();
    let closed = cases.len() as i64;
    let in_time = resolved.iter().filter(|(n, _)| n % 2 == 0).count() as i64;
    assert!(
        in_time > 0 && (in_time as usize) < resolved.len(),
        "the scenario has both"
    );
    assert_eq!(l["created"], closed, "{l}");
    assert_eq!(l["closed"], closed, "{l}");
    assert_eq!(
        l["closed_within_deadline"], in_time,
        "refused and unreachable never count: {l}"
    );
    assert_eq!(
        l["resolution_rate_pct"],
        share(resolved.len() as i64, closed),
        "{l}"
    );
    assert_eq!(
        l["closed_within_deadline_pct"],
        share(in_time, closed),
        "{l}"
    );
}
