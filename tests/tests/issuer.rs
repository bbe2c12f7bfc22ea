//! The survey-link issuer's timing rules, end to end with the test clock.

use revisit_tests::*;
use serde_json::{json, Value};

const BERLIN: &str = "Europe/Berlin";

fn tick(host: &Host) -> Value {
    let (s, t) = Host::json(host.admin_post("/issuer/tick", ""));
    assert_eq!(s, 200, "{t}");
    t
}

fn survey(host: &Host, id: &str) -> Value {
    Host::json(host.admin_get(&format!("/surveys/{id}"))).1
}

#[test]
fn a_repair_gets_a_same_day_survey_and_a_usage_survey_within_a_week() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-07T11:00:00+01:00");
    let body = event_body(
        "rep-1",
        "repair.completed",
        "2026-12-07T11:00:00+01:00",
        customer("rep", BERLIN),
        json!({"work_order_id": "wo-rep", "agent_id": "tech-3"}),
    );
    let (_, planned) = Host::json(host.post_event(&body));
    let kinds: Vec<&str> = planned["surveys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["service", "usage"]);
    host.set_clock("2026-12-07T13:05:00+01:00");
    assert_eq!(tick(&host)["sent"], 1, "the service survey the same day");
    // Three days later the usage survey is due, and so is the service
    // survey's one reminder: one contact a day, so the usage survey is
    // postponed to the next day (inside its window), not cancelled.
    host.set_clock("2026-12-10T11:05:00+01:00");
    let t = tick(&host);
    assert_eq!(
        (
            t["reminders"].as_i64(),
            t["sent"].as_i64(),
            t["deferred"].as_i64()
        ),
        (Some(1), Some(0), Some(1)),
        "{t}"
    );
    host.set_clock("2026-12-11T09:05:00+01:00");
    assert_eq!(tick(&host)["sent"], 1, "the usage survey the next morning");
    let msgs = sender.messages();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0]["survey_id"], msgs[1]["survey_id"], "the reminder");
    assert_ne!(msgs[0]["survey_id"], msgs[2]["survey_id"]);
}

#[test]
fn a_complaint_on_day_two_holds_the_day_three_survey_until_it_is_closed() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-01T10:00:00+01:00");
    let body = event_body(
        "oc-1",
        "order.delivered",
        "2026-12-01T10:00:00+01:00",
        customer("oc", BERLIN),
        json!({"category": "high_value"}),
    );
    let id = host.planned_survey(&body);
    host.set_clock("2026-12-02T15:00:00+01:00");
    // The same order: `order_id` matches (event_body derives it from the event id, so set it).
    let mut complaint: Value = serde_json::from_str(&event_body(
        "oc-2",
        "complaint.opened",
        "2026-12-02T15:00:00+01:00",
        customer("oc", BERLIN),
        json!({}),
    ))
    .unwrap();
    complaint["order_id"] = json!("order-oc-1");
    assert_eq!(host.post_event(&complaint.to_string()).status(), 202);
    host.set_clock("2026-12-04T10:00:00+01:00");
    let t = tick(&host);
    assert_eq!(
        (t["sent"].as_i64(), t["deferred"].as_i64()),
        (Some(0), Some(1)),
        "held while the complaint is open: {t}"
    );
    let s = survey(&host, &id);
    assert_eq!(s["state"], "planned");
    assert_eq!(s["skip_reasons"], json!(["open_case"]));
    assert!(sender.messages().is_empty());
    // Closed: the survey goes out at the next look, inside its window.
    let mut closed: Value = serde_json::from_str(&event_body(
        "oc-3",
        "case.closed",
        "2026-12-04T10:20:00+01:00",
        customer("oc", BERLIN),
        json!({}),
    ))
    .unwrap();
    closed["order_id"] = json!("order-oc-1");
    host.set_clock("2026-12-04T10:20:00+01:00");
    assert_eq!(host.post_event(&closed.to_string()).status(), 202);
    host.set_clock("2026-12-04T11:05:00+01:00");
    assert_eq!(tick(&host)["sent"], 1);
    assert_eq!(sender.messages().len(), 1);
}

#[test]
fn a_survey_blocked_past_its_window_expires_and_is_never_sent() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-01T10:00:00+01:00");
    let body = event_body(
        "bl-1",
        "order.delivered",
        "2026-12-01T10:00:00+01:00",
        customer("bl", BERLIN),
        json!({"category": "high_value"}),
    );
    let id = host.planned_survey(&body);
    // The sender is down through the whole window (days 3–7).
    *sender.fail.lock().unwrap() = true;
    for day in [
        "2026-12-04T10:00:00+01:00",
        "2026-12-06T10:00:00+01:00",
        "2026-12-08T09:30:00+01:00",
    ] {
        host.set_clock(day);
        tick(&host);
    }
    // The block lifts after the window: nothing goes out, late.
    *sender.fail.lock().unwrap() = false;
    host.set_clock("2026-12-08T11:00:00+01:00");
    let t = tick(&host);
    assert_eq!(t["dropped"], 1, "{t}");
    let s = survey(&host, &id);
    assert_eq!(s["state"], "expired", "{s}");
    assert!(s["skip_reasons"]
        .as_array()
        .unwrap()
        .contains(&json!("expired")));
    assert!(sender.messages().is_empty(), "never sent late");
}

#[test]
fn a_service_finished_at_a_quarter_to_nine_pm_is_surveyed_next_morning() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-07T20:45:00+01:00");
    let body = event_body(
        "sv-1",
        "service.completed",
        "2026-12-07T20:45:00+01:00",
        customer("late-svc", BERLIN),
        json!({"work_order_id": "wo-9"}),
    );
    let id = host.planned_survey(&body);
    host.set_clock("2026-12-07T22:45:00+01:00");
    let t = tick(&host);
    assert_eq!(
        (t["sent"].as_i64(), t["deferred"].as_i64()),
        (Some(0), Some(1)),
        "{t}"
    );
    assert_eq!(
        survey(&host, &id)["next_attempt_at"],
        "2026-12-08T08:00:00Z"
    );
    host.set_clock("2026-12-08T08:59:00+01:00");
    assert_eq!(tick(&host)["sent"], 0);
    host.set_clock("2026-12-08T09:00:00+01:00");
    assert_eq!(tick(&host)["sent"], 1);
    assert_eq!(survey(&host, &id)["skip_reasons"], json!(["quiet_hours"]));
}

#[test]
fn contact_limits_and_opt_out_hold_across_kinds_and_markets_are_respected() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    // An installation plans two surveys; a repair the same week would make more contact than allowed.
    host.set_clock("2026-12-07T10:00:00+01:00");
    for (id, kind) in [
        ("lim-1", "installation.completed"),
        ("lim-2", "repair.completed"),
    ] {
        let body = event_body(
            id,
            kind,
            "2026-12-07T10:00:00+01:00",
            customer("lim", BERLIN),
            json!({"work_order_id": format!("wo-{id}")}),
        );
        assert_eq!(host.post_event(&body).status(), 202);
    }
    host.set_clock("2026-12-07T12:30:00+01:00");
    let t = tick(&host);
    assert_eq!(t["sent"], 1, "one a day: {t}");
    assert_eq!(
        t["deferred"], 1,
        "the second same-day survey is postponed for the contact limit, not cancelled: {t}"
    );
    // Opting out stops everything still planned.
    let out = event_body(
        "lim-out",
        "customer.opted_out",
        "2026-12-08T10:00:00+01:00",
        customer("lim", BERLIN),
        json!({}),
    );
    host.set_clock("2026-12-08T10:00:00+01:00");
    assert_eq!(host.post_event(&out).status(), 202);
    host.set_clock("2026-12-10T12:00:00+01:00");
    let t = tick(&host);
    assert_eq!(t["sent"], 0, "{t}");
    assert_eq!(
        t["dropped"], 4,
        "the postponed survey, the two planned, and the reminder of the one sent: {t}"
    );

    // A French customer: nothing on a Sunday; a US customer: nothing before 08:00.
    host.set_clock("2026-12-10T10:00:00+01:00");
    let mut fr = customer("fr", "Europe/Paris");
    fr["phone"] = json!("+33612345678");
    let body = event_body(
        "fr-1",
        "order.delivered",
        "2026-12-10T10:00:00+01:00",
        fr,
        json!({"category": "high_value"}),
    );
    let fr_id = host.planned_survey(&body);
    host.set_clock("2026-12-13T10:30:00+01:00"); // Sunday
    let t = tick(&host);
    assert_eq!(t["deferred"], 1, "{t}");
    assert_eq!(
        survey(&host, &fr_id)["next_attempt_at"],
        "2026-12-14T08:00:00Z",
        "Monday 09:00 Paris"
    );
}

#[test]
fn every_channel_at_once_then_one_reminder_and_none_after_an_answer() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-01T10:00:00+01:00");
    for id in ["quiet", "answers"] {
        let mut c = customer(id, BERLIN);
        c["phone"] = json!(format!("+49151{:08}", id.len()));
        let body = event_body(
            &format!("rem-{id}"),
            "order.delivered",
            "2026-12-01T10:00:00+01:00",
            c,
            json!({"category": "high_value"}),
        );
        assert_eq!(host.post_event(&body).status(), 202);
    }
    host.set_clock("2026-12-04T10:00:00+01:00");
    let t = tick(&host);
    assert_eq!(
        (t["sent"].as_i64(), t["messages"].as_i64()),
        (Some(2), Some(4)),
        "{t}"
    );
    // Every channel the customer has, at once, each with its own link.
    let first: Vec<Value> = sender.messages();
    for to in ["answers@example.com", "quiet@example.com"] {
        let m = first.iter().find(|m| m["to"] == to).unwrap();
        let sms = first
            .iter()
            .find(|s| s["survey_id"] == m["survey_id"] && s["channel"] == "sms")
            .unwrap_or_else(|| panic!("an SMS beside the e-mail: {first:?}"));
        assert_ne!(sms["link"], m["link"]);
    }
    // One customer answers by e-mail; the first answer on any channel wins.
    let answers: Vec<&Value> = first
        .iter()
        .filter(|m| m["to"] == "answers@example.com" || m["to"] == "+4915100000007")
        .collect();
    assert_eq!(answers.len(), 2);
    let by_mail = answers.iter().find(|m| m["channel"] == "email").unwrap();
    let by_sms = answers.iter().find(|m| m["channel"] == "sms").unwrap();
    assert_eq!(
        host.answer(&link_path(by_mail["link"].as_str().unwrap()), 9, None)
            .0,
        200
    );
    assert_eq!(
        host.answer(&link_path(by_sms["link"].as_str().unwrap()), 3, None)
            .0,
        409
    );

    host.set_clock("2026-12-05T10:00:00+01:00");
    assert_eq!(tick(&host)["reminders"], 0, "not before 48 h");
    host.set_clock("2026-12-06T10:00:00+01:00");
    let t = tick(&host);
    assert_eq!(t["reminders"], 1, "only the silent customer: {t}");
    let reminder = sender.messages()[4].clone();
    assert_eq!(
        reminder["channel"], "sms",
        "on their first channel: {reminder}"
    );
    assert_eq!(reminder["to"], "+4915100000005");
    host.set_clock("2026-12-09T10:00:00+01:00");
    assert_eq!(tick(&host)["reminders"], 0, "at most one");
    assert_eq!(sender.messages().len(), 5);
    // The reminder's link answers the same survey.
    let (s, _) = host.answer(&link_path(reminder["link"].as_str().unwrap()), 7, None);
    assert_eq!(s, 200);
}

/// What Shopify and WooCommerce send: base64 HMAC-SHA256 of the raw body.
fn base64_hmac(secret: &str, body: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn shop_post(host: &Host, path: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
    let mut r = host
        .http
        .post(host.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    Host::json(r.send().unwrap())
}

#[test]
fn shopify_and_woocommerce_webhooks_are_verified_and_mapped() {
    let sender = Sender::start();
    let config = HostConfig::revisit(sender.port)
        .set("SPIN_VARIABLE_SHOPIFY_WEBHOOK_SECRET", "shpss_test")
        .set("SPIN_VARIABLE_WOOCOMMERCE_WEBHOOK_SECRET", "wc_test");
    let host = Host::start(config);
    host.set_clock("2026-12-01T10:00:00+01:00");
    let shopify = r#"{"id":4567,"order_id":1234,"status":"success","shipment_status":"delivered","email":"anna@example.de",
        "updated_at":"2026-12-01T10:00:00+01:00","destination":{"first_name":"Anna","last_name":"Schmidt","phone":"+4915112345678"}}"#;
    let sig = base64_hmac("shpss_test", shopify);
    let topic = ("x-shopify-topic", "fulfillments/update".to_string());
    let (s, planned) = shop_post(
        &host,
        "/webhooks/shopify",
        &[("x-shopify-hmac-sha256", sig.clone()), topic.clone()],
        shopify,
    );
    assert_eq!(s, 202, "{planned}");
    assert_eq!(planned["event_id"], "shopify:fulfillment:4567:delivered");
    assert_eq!(planned["surveys"][0]["kind"], "product");
    let (_, again) = shop_post(
        &host,
        "/webhooks/shopify",
        &[("x-shopify-hmac-sha256", sig), topic.clone()],
        shopify,
    );
    assert_eq!(again["duplicate"], true, "Shopify retries are idempotent");
    let (s, e) = shop_post(
        &host,
        "/webhooks/shopify",
        &[
            ("x-shopify-hmac-sha256", base64_hmac("wrong", shopify)),
            topic,
        ],
        shopify,
    );
    assert_eq!(s, 401, "{e}");

    let woo = r#"{"id":99,"status":"completed","customer_id":7,"date_completed_gmt":"2026-12-01T09:00:00","total":"249.00",
        "billing":{"first_name":"Ana","last_name":"Lopez","email":"ana@example.es","phone":"+34600111222"}}"#;
    let headers = [
        ("x-wc-webhook-signature", base64_hmac("wc_test", woo)),
        ("x-wc-webhook-topic", "order.updated".to_string()),
    ];
    let (s, planned) = shop_post(&host, "/webhooks/woocommerce", &headers, woo);
    assert_eq!(s, 202, "{planned}");
    assert_eq!(planned["surveys"].as_array().unwrap().len(), 1);
    let processing = woo.replace("\"completed\"", "\"processing\"");
    let headers = [
        (
            "x-wc-webhook-signature",
            base64_hmac("wc_test", &processing),
        ),
        ("x-wc-webhook-topic", "order.updated".to_string()),
    ];
    let (s, ignored) = shop_post(&host, "/webhooks/woocommerce", &headers, &processing);
    assert_eq!((s, ignored["ignored"].as_bool()), (200, Some(true)));

    // Three days later both customers get their survey.
    host.set_clock("2026-12-04T10:00:00+01:00");
    let (_, tick) = Host::json(host.admin_post("/issuer/tick", ""));
    assert_eq!(tick["sent"], 2, "{tick}");
}

#[test]
fn providers_get_their_documented_request_shapes() {
    let sender = Sender::start();
    let fake = format!("http://127.0.0.1:{}", sender.port);
    let providers = json!({
        "sms": {"kind": "twilio", "account_sid": "AC0001", "from": "+15005550006", "base_url": fake},
        "whatsapp": {"kind": "whatsapp_cloud", "phone_number_id": "10987", "template": "revisit_survey", "base_url": fake},
        "email": {"kind": "sendgrid", "from": "surveys@acme.example", "from_name": "Acme", "base_url": fake}
    });
    let policy = r#"{"plans":[{"on":"order.delivered","category":"high_value","kind":"product","delay_hours":72,"send_within_hours":96}],
        "scales":{"product":"nps"},"channels":["email","sms","whatsapp"],"link_validity_days":14}"#;
    let config = HostConfig::revisit(sender.port)
        .set("SPIN_VARIABLE_SURVEY_POLICY", policy)
        .set("SPIN_VARIABLE_PROVIDERS", &providers.to_string())
        .set("SPIN_VARIABLE_TWILIO_AUTH_TOKEN", "twilio-token")
        .set("SPIN_VARIABLE_WHATSAPP_TOKEN", "wa-token")
        .set("SPIN_VARIABLE_SENDGRID_API_KEY", "SG.test");
    let host = Host::start(config);
    host.set_clock("2026-12-01T10:00:00+01:00");
    let mut c = customer("prov", BERLIN);
    c["phone"] = json!("+4915112345678");
    c["whatsapp"] = json!("+4915112345679");
    c["locale"] = json!("de-DE");
    let body = event_body(
        "prov-1",
        "order.delivered",
        "2026-12-01T10:00:00+01:00",
        c,
        json!({"category": "high_value"}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
    host.set_clock("2026-12-04T10:00:00+01:00");
    let t = tick(&host);
    assert_eq!(
        (t["sent"].as_i64(), t["messages"].as_i64()),
        (Some(1), Some(3)),
        "{t}"
    );
    let reqs = sender.requests.lock().unwrap().clone();
    let find = |path: &str| {
        reqs.iter()
            .find(|r| r["path"].as_str().unwrap().starts_with(path))
            .unwrap_or_else(|| panic!("no {path} in {reqs:?}"))
            .clone()
    };

    // SendGrid v3 mail send: Bearer key, JSON personalizations/from/subject/content.
    let mail = find("/v3/mail/send");
    assert_eq!(mail["method"], "POST");
    assert_eq!(mail["headers"]["authorization"], "Bearer SG.test");
    assert!(mail["headers"]["content-type"]
        .as_str()
        .unwrap()
        .starts_with("application/json"));
    let m: Value = serde_json::from_str(mail["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        m["personalizations"][0]["to"][0]["email"],
        "prov@example.com"
    );
    assert_eq!(
        m["from"],
        json!({"email": "surveys@acme.example", "name": "Acme"})
    );
    assert!(m["content"][0]["value"].as_str().unwrap().contains("/s/"));

    // Twilio Messages API: Basic auth AccountSid:AuthToken, form-encoded To/From/Body.
    let sms = find("/2010-04-01/Accounts/AC0001/Messages.json");
    assert_eq!(sms["method"], "POST");
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("AC0001:twilio-token");
    assert_eq!(sms["headers"]["authorization"], format!("Basic {basic}"));
    assert_eq!(
        sms["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
    let form: std::collections::BTreeMap<String, String> = url_form(sms["body"].as_str().unwrap());
    assert_eq!(form["To"], "+4915112345678");
    assert_eq!(form["From"], "+15005550006");
    assert!(form["Body"].contains("/s/"));

    // WhatsApp Cloud API: Bearer token, a template message with the link as its body parameter.
    let wa = find("/v21.0/10987/messages");
    assert_eq!(wa["headers"]["authorization"], "Bearer wa-token");
    let w: Value = serde_json::from_str(wa["body"].as_str().unwrap()).unwrap();
    assert_eq!(w["messaging_product"], "whatsapp");
    assert_eq!(w["type"], "template");
    assert_eq!(w["to"], "4915112345679");
    assert_eq!(w["template"]["name"], "revisit_survey");
    assert_eq!(w["template"]["language"]["code"], "de");
    let wa_link = w["template"]["components"][0]["parameters"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(wa_link.contains("/s/"));
    // Each channel has its own link; they answer the same survey.
    assert!(!form["Body"].contains(&wa_link));

    // A provider error is retried later, never lost; what was acknowledged is never sent again.
    let mut c2 = customer("prov2", BERLIN);
    c2["phone"] = json!("+4915112340000");
    c2["whatsapp"] = json!("+4915112340000");
    host.set_clock("2026-12-02T10:00:00+01:00");
    let body = event_body(
        "prov-2",
        "order.delivered",
        "2026-12-02T10:00:00+01:00",
        c2,
        json!({"category": "high_value"}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
    *sender.fail_path.lock().unwrap() = Some("/2010-04-01/".into()); // Twilio is down
    host.set_clock("2026-12-05T10:00:00+01:00");
    let before = sender.requests.lock().unwrap().len();
    let t = tick(&host);
    assert_eq!(
        (t["failed"].as_i64(), t["messages"].as_i64()),
        (Some(1), Some(1)),
        "e-mail acknowledged, SMS failed: {t}"
    );
    *sender.fail_path.lock().unwrap() = None;
    host.set_clock("2026-12-05T10:11:00+01:00");
    let t = tick(&host);
    // The retry sends what was not acknowledged: the SMS, and WhatsApp, which
    // the first attempt never reached.
    assert_eq!(
        (t["sent"].as_i64(), t["messages"].as_i64()),
        (Some(1), Some(2)),
        "{t}"
    );
    let reqs = sender.requests.lock().unwrap()[before..].to_vec();
    let count = |prefix: &str| {
        reqs.iter()
            .filter(|r| r["path"].as_str().unwrap().starts_with(prefix))
            .count()
    };
    assert_eq!(
        (
            count("/v3/mail/send"),
            count("/2010-04-01/"),
            count("/v21.0/10987/messages")
        ),
        (1, 2, 1),
        "the e-mail once; the SMS failed, then delivered; WhatsApp once: {reqs:?}"
    );
}

fn url_form(body: &str) -> std::collections::BTreeMap<String, String> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

#[test]
fn an_installation_is_surveyed_separately_from_the_product() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-07T11:00:00+01:00");
    let body = event_body(
        "inst-1",
        "installation.completed",
        "2026-12-07T11:00:00+01:00",
        customer("inst", BERLIN),
        json!({"work_order_id": "wo-inst"}),
    );
    let (_, planned) = Host::json(host.post_event(&body));
    let kinds: Vec<&str> = planned["surveys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["installation", "product"]);
    assert_eq!(
        planned["surveys"][0]["due_at"], "2026-12-07T12:00:00Z",
        "the installation the same day"
    );
    assert_eq!(
        planned["surveys"][1]["due_at"], "2026-12-10T10:00:00Z",
        "the product three days later"
    );
}

#[test]
fn the_law_of_the_market_beats_looser_seller_hours() {
    let sender = Sender::start();
    let loose = r#"{"calling_hours": {"start": "07:00", "end": "23:00"}, "limits": {"per_day": 5, "per_week": 20}}"#;
    let host =
        Host::start(HostConfig::revisit(sender.port).set("SPIN_VARIABLE_CONTACT_RULES", loose));
    let mut fr = customer("fr-law", "Europe/Paris");
    fr["phone"] = json!("+33612345678");
    let mut us = customer("us-law", "America/Chicago");
    us["phone"] = json!("+13125550123");
    let mut de = customer("de-law", BERLIN);
    de["phone"] = json!("+4915112345678");
    // Delivered on Monday 7 Dec; due Thursday 10 Dec at the same local time.
    for (id, c, at) in [
        ("fr", fr, "2026-12-07T07:30:00+01:00"),
        ("de", de, "2026-12-07T07:30:00+01:00"),
        ("us", us, "2026-12-07T07:30:00-06:00"),
    ] {
        host.set_clock(at);
        let body = event_body(
            &format!("law-{id}"),
            "order.delivered",
            at,
            c,
            json!({"category": "high_value"}),
        );
        assert_eq!(host.post_event(&body).status(), 202);
    }
    // 07:30 in Paris and Berlin (00:30 in Chicago): the seller allows 07:00, France's law does not; Germany's does.
    host.set_clock("2026-12-10T07:30:00+01:00");
    let t = tick(&host);
    assert_eq!(
        (t["sent"].as_i64(), t["deferred"].as_i64()),
        (Some(1), Some(1)),
        "{t}"
    );
    assert!(sender
        .messages()
        .iter()
        .all(|m| m["survey_id"] == sender.messages()[0]["survey_id"]));
    assert!(sender
        .messages()
        .iter()
        .any(|m| m["to"] == "de-law@example.com"));
    host.set_clock("2026-12-10T08:00:00+01:00");
    assert_eq!(tick(&host)["sent"], 1, "France from 08:00");
    // Chicago at 07:30: not before 08:00 local (TCPA), whatever the seller says.
    host.set_clock("2026-12-10T07:30:00-06:00");
    let t = tick(&host);
    assert_eq!(
        (t["sent"].as_i64(), t["deferred"].as_i64()),
        (Some(0), Some(1)),
        "{t}"
    );
    host.set_clock("2026-12-10T08:00:00-06:00");
    assert_eq!(tick(&host)["sent"], 1);
    // Each survey on SMS and e-mail at once.
    assert_eq!(sender.messages().len(), 6);
}

/// An e-mail carries an HTML part with the scale's buttons (and its plain
/// text): checked in Chromium in Chinese and English (axe, screenshot), a
/// tapped button opens the survey page with that score pre-selected, which
/// records nothing (the customer confirms there), and a low one offers its
/// reasons at once.
#[test]
fn the_email_has_one_tap_buttons_that_open_the_page_with_the_score_chosen() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-01T10:00:00+01:00");
    let mut zh = customer("mail-zh", "Asia/Shanghai");
    zh["locale"] = json!("zh-CN");
    let en = customer("mail-en", BERLIN);
    for (i, c) in [zh, en].into_iter().enumerate() {
        let body = event_body(
            &format!("mail-{i}"),
            "order.delivered",
            "2026-12-01T10:00:00+01:00",
            c,
            json!({"category": "high_value"}),
        );
        assert_eq!(host.post_event(&body).status(), 202);
    }
    host.set_clock("2026-12-04T10:00:00+01:00");
    assert_eq!(tick(&host)["sent"], 2);
    let dir = project_root().join("tests/artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    for (to, tag, tap) in [
        ("mail-zh@example.com", "zh-Hans", "2"),
        ("mail-en@example.com", "en", "9"),
    ] {
        let m = sender
            .messages()
            .into_iter()
            .find(|m| m["to"] == to && m["channel"] == "email")
            .unwrap_or_else(|| panic!("no e-mail to {to}"));
        let link = m["link"].as_str().unwrap();
        assert!(
            m["text"].as_str().unwrap().ends_with(link),
            "plain text: {m}"
        );
        let html = m["html"].as_str().expect("an HTML part");
        // The links point at the public base URL; here that is the host.
        let origin = &link[..link.find("/s/").unwrap()];
        let html = html.replace(origin, &host.base);
        let file = std::env::temp_dir().join(format!("revisit-email-{tag}-{}.html", host.pid()));
        std::fs::write(&file, &html).unwrap();
        let shot = dir.join(format!("email-{tag}.png"));
        let steps = browser_steps(
            "email.mjs",
            &[file.as_os_str(), shot.as_os_str(), tap.as_ref()],
        );
        let e = &steps[0];
        assert_eq!(e["lang"], tag, "{e}");
        assert_eq!(e["violations"], json!([]), "WCAG 2.1 AA: {e}");
        let buttons: Vec<&str> = e["buttons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap())
            .collect();
        assert_eq!(buttons, (0..=10).map(|n| n.to_string()).collect::<Vec<_>>());
        assert!(e["narrowest"].as_f64().unwrap() >= 24.0, "tap targets: {e}");
        assert_eq!(
            e["checked"], tap,
            "the page opens with the tapped score: {e}"
        );
        assert!(e["opened"]
            .as_str()
            .unwrap()
            .ends_with(&format!("?score={tap}")));
        let low = tap == "2";
        assert_eq!(e["reasons"].as_i64().unwrap() > 0, low, "{e}");
        let path = link_path(link);
        let (_, s) =
            Host::json(host.admin_get(&format!("/surveys/{}", m["survey_id"].as_str().unwrap())));
        assert_ne!(s["state"], "answered", "opening records nothing: {s}");
        assert!(
            host.http
                .get(host.url(&path))
                .send()
                .unwrap()
                .text()
                .unwrap()
                .contains("name=\"score\""),
            "still unanswered: {path}"
        );
    }
}
