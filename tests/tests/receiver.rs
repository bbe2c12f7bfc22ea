//! The score receiver, end to end: pages in every language, answers under heavy
//! concurrency, a hand-off that survives the escalator being unreachable,
//! integrity signals, erasure, and rate limits.

use revisit_tests::*;
use serde_json::{json, Value};

const BERLIN: &str = "Europe/Berlin";

/// Deliver one high-value order per customer on 1 Dec, send on 4 Dec; the links by customer id.
fn surveys(
    host: &Host,
    sender: &Sender,
    customers: &[Value],
    agent: impl Fn(usize) -> String,
) -> std::collections::BTreeMap<String, String> {
    host.set_clock("2026-12-01T10:00:00+01:00");
    for (i, c) in customers.iter().enumerate() {
        let id = format!("ev-{}", c["id"].as_str().unwrap());
        let body = event_body(
            &id,
            "order.delivered",
            "2026-12-01T10:00:00+01:00",
            c.clone(),
            json!({"category": "high_value", "agent_id": agent(i)}),
        );
        assert_eq!(host.post_event(&body).status(), 202);
    }
    host.set_clock("2026-12-04T10:00:00+01:00");
    let seen = sender.messages().len();
    let (_, tick) = Host::json(host.admin_post("/issuer/tick", ""));
    assert_eq!(tick["sent"], customers.len(), "{tick}");
    sender.messages()[seen..]
        .iter()
        .map(|m| {
            let survey = m["survey_id"].as_str().unwrap().to_string();
            let cust = customers.iter().find(|c| {
                let to = m["to"].as_str().unwrap();
                c["email"].as_str() == Some(to) || c["phone"].as_str() == Some(to)
            });
            let _ = survey;
            (
                cust.unwrap()["id"].as_str().unwrap().to_string(),
                link_path(m["link"].as_str().unwrap()),
            )
        })
        .collect()
}

#[test]
fn the_page_in_every_language_with_hostile_comments_escaped() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let locales = [
        "en-US", "zh-CN", "zh-TW", "es-ES", "de-DE", "fr-FR", "ja-JP", "pt-BR",
    ];
    let tags = ["en", "zh-Hans", "zh-Hant", "es", "de", "fr", "ja", "pt"];
    let customers: Vec<Value> = locales
        .iter()
        .map(|l| {
            let mut c = customer(&format!("loc-{l}"), BERLIN);
            c["locale"] = json!(l);
            c
        })
        .collect();
    let links = surveys(&host, &sender, &customers, |_| "agent-1".into());
    let hostile = r#"<script>alert("x")</script><b onclick=x>hi</b>"#;
    for (l, tag) in locales.iter().zip(tags) {
        let link = &links[&format!("loc-{l}")];
        let r = host
            .http
            .get(host.url(&format!("{link}?score=9")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().unwrap();
        assert!(html.contains(&format!("lang=\"{tag}\"")), "{l}: {html}");
        assert!(html.len() < 15 * 1024, "{l}: {} bytes", html.len());
        assert!(
            html.contains("value=\"9\" required checked"),
            "?score=9 pre-selects"
        );
        assert!(
            html.contains("<fieldset><legend>") && html.contains("<label for=\"comment\">"),
            "accessible form"
        );
        // Both ends of the scale are named, under it and (for a screen
        // reader) in the first and last option.
        assert!(
            html.contains("<div class=\"ends\" aria-hidden=\"true\"><span>"),
            "{l}: {html}"
        );
        assert_eq!(
            html.matches("<span class=\"vh\"> – ").count(),
            2,
            "{l}: {html}"
        );
        if *l == "en-US" {
            assert!(
                html.contains("Not likely") && html.contains("Very likely"),
                "{html}"
            );
        }
        // The pre-selecting GET recorded nothing.
        let form = format!("score=3&comment={}", urlencode(hostile));
        let r = host
            .http
            .post(host.url(link))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{l}");
        let thanks = r.text().unwrap();
        assert!(
            thanks.contains("2026-12-06 10:00"),
            "{l}: says when someone will call, in their time: {thanks}"
        );
        let again = host
            .http
            .get(host.url(link))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            again.contains("&lt;script&gt;")
                && !again.contains("<script>")
                && !again.contains("<b onclick"),
            "{l}: {again}"
        );
        let conflict = host
            .http
            .post(host.url(link))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("score=5")
            .send()
            .unwrap();
        assert_eq!(conflict.status(), 409);
        assert!(!conflict.text().unwrap().contains("<script>"));
    }
    // Past its expiry a link is gone (410), on GET and POST.
    host.set_clock("2027-01-30T10:00:00+01:00");
    let link = &links["loc-en-US"];
    assert_eq!(host.http.get(host.url(link)).send().unwrap().status(), 410);
    assert_eq!(
        host.http
            .post(host.url(link))
            .body("score=1")
            .send()
            .unwrap()
            .status(),
        410
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_thousand_concurrent_answers_over_a_hundred_links_record_exactly_a_hundred() {
    let sender = Sender::start();
    let policy = r#"{"plans":[{"on":"order.delivered","category":"high_value","kind":"product","delay_hours":72,"send_within_hours":96}],
        "scales":{"product":"nps"},"channels":["email","sms"],"link_validity_days":14}"#;
    let host =
        Host::start(HostConfig::revisit(sender.port).set("SPIN_VARIABLE_SURVEY_POLICY", policy));
    // Half reachable only by e-mail, half only by SMS: mixed channels.
    let customers: Vec<Value> = (0..100)
        .map(|i| {
            let mut c = customer(&format!("load-{i}"), BERLIN);
            if i % 2 == 1 {
                c.as_object_mut().unwrap().remove("email");
                c["phone"] = json!(format!("+4915112{i:06}"));
            }
            c
        })
        .collect();
    let links: Vec<String> = surveys(&host, &sender, &customers, |i| format!("agent-{}", i % 4))
        .into_values()
        .collect();
    assert_eq!(links.len(), 100);
    let work: Vec<(String, u8)> = (0..1000)
        .map(|i| (links[i % 100].clone(), (i % 11) as u8))
        .collect();
    let statuses = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for chunk in work.chunks(1000 / 32 + 1) {
            let (host, statuses) = (&host, &statuses);
            s.spawn(move || {
                for (link, score) in chunk {
                    let r = host
                        .http
                        .post(host.url(link))
                        .header("content-type", "application/json")
                        .body(format!("{{\"score\": {score}}}"))
                        .send()
                        .unwrap();
                    statuses.lock().unwrap().push(r.status().as_u16());
                }
            });
        }
    });
    let statuses = statuses.into_inner().unwrap();
    assert_eq!(statuses.len(), 1000);
    assert!(statuses.iter().all(|s| *s < 500), "no 5xx");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 100);
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 900);
    let (_, summary) =
        Host::json(host.report("/reports/summary?from=2026-12-04&to=2026-12-04&group_by=channel"));
    assert_eq!(summary["total"]["answers"], 100, "{summary}");
    assert_eq!(summary["total"]["issued"], 100);
    let rows = summary["rows"].as_array().unwrap();
    let by = |ch: &str| rows.iter().find(|r| r["group"] == ch).unwrap().clone();
    assert_eq!(
        (
            by("email")["answers"].as_i64(),
            by("sms")["answers"].as_i64()
        ),
        (Some(50), Some(50))
    );
    assert_eq!(by("email")["response_rate_pct"], 100.0);
    let (_, agents) =
        Host::json(host.report("/reports/summary?from=2026-12-01&to=2026-12-07&group_by=agent"));
    let total: i64 = agents["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["answers"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 100, "{agents}");
    assert_eq!(agents["rows"].as_array().unwrap().len(), 4);
}

#[test]
fn a_low_answer_is_promised_a_call_and_the_next_tick_makes_it_due_then() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let links = surveys(&host, &sender, &[customer("low-1", BERLIN)], |_| {
        "agent-1".into()
    });
    let (status, v) = host.answer(&links["low-1"], 2, Some("never again"));
    assert_eq!(status, 200, "{v}");
    let promised = v["callback_by"]
        .as_str()
        .expect("a call is promised")
        .to_string();
    assert!(
        host.callbacks("").is_empty(),
        "the customer's click waits for no task"
    );
    host.set_clock("2026-12-04T10:01:00+01:00");
    let tick = host.escalator_tick();
    assert_eq!(tick["repairs_received"], 1, "{tick}");
    let tasks = host.callbacks("");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["reason"], "low_score");
    assert_eq!(tasks[0]["due_by"], promised.as_str());
    assert_eq!(tasks[0]["context"]["answer"]["comment"], "never again");
    let tick = host.escalator_tick();
    assert_eq!(tick["repairs_received"], 0, "made once: {tick}");
    assert_eq!(host.callbacks("").len(), 1);
}

#[test]
fn a_low_answer_is_promised_the_call_of_the_task_it_joined() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let links = surveys(&host, &sender, &[customer("joined", BERLIN)], |_| {
        "agent-1".into()
    });
    // The customer already waits for our call: they called ten minutes ago.
    let call = event_body(
        "joined-call",
        "call.missed",
        "2026-12-04T09:50:00+01:00",
        customer("joined", BERLIN),
        json!({"agent_id": "agent-1"}),
    );
    assert_eq!(host.post_event(&call).status(), 202);
    let waiting = host.callbacks("");
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let (status, v) = host.answer(&links["joined"], 2, Some("still broken"));
    assert_eq!(status, 200, "{v}");
    host.escalator_tick();
    let tasks = host.callbacks("");
    assert_eq!(
        tasks.len(),
        1,
        "the low answer joined the open task: {tasks:?}"
    );
    let reasons = tasks[0]["reasons"].as_array().unwrap();
    assert!(
        reasons.contains(&json!("low_score")) && reasons.contains(&json!("missed_call")),
        "{reasons:?}"
    );
    // Told the time of the call they already wait for, not a later one of
    // its own (a low score alone is due within a working day).
    assert_eq!(v["callback_by"], waiting[0]["due_by"], "{v}");
    assert_eq!(v["callback_by"], tasks[0]["due_by"], "{v}");
}

#[test]
fn the_integrity_report_flags_a_shared_device_and_a_too_perfect_agent() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    // 40 for the suspect, 20 for each of two peers.
    let customers: Vec<Value> = (0..80)
        .map(|i| customer(&format!("ig-{i}"), BERLIN))
        .collect();
    let agent = |i: usize| {
        if i < 40 {
            "suspect".to_string()
        } else if i < 60 {
            "peer-1".into()
        } else {
            "peer-2".into()
        }
    };
    let links = surveys(&host, &sender, &customers, agent);
    for i in 0..80 {
        let link = &links[&format!("ig-{i}")];
        // Five customers answer from one shared tablet; everyone else from their own phone.
        let ua = if (60..65).contains(&i) {
            "shared-tablet".to_string()
        } else {
            format!("phone-{i}")
        };
        // The suspect: 40 silent tens. Peers: 60% silent tens, the rest an 8 with a comment.
        let (score, comment) = if i < 40 || (i - 40) % 20 < 12 {
            (10, None)
        } else {
            (8, Some("fine"))
        };
        let body = json!({"score": score, "comment": comment}).to_string();
        let r = host
            .http
            .post(host.url(link))
            .header("content-type", "application/json")
            .header("user-agent", ua)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (status, report) = Host::json(host.report("/reports/integrity"));
    assert_eq!(status, 200);
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{report}");
    assert_eq!(devices[0]["customers"], 5);
    let staff = report["staff"].as_array().unwrap();
    assert_eq!(staff.len(), 1, "{report}");
    assert_eq!(staff[0]["agent"], "suspect");
    assert_eq!(staff[0]["top_silent_pct"], 100.0);
    assert_eq!(staff[0]["peers_top_silent_pct"], 60.0);
    // Nothing was dropped.
    let (_, summary) =
        Host::json(host.report("/reports/summary?from=2026-12-04&to=2026-12-04&group_by=day"));
    assert_eq!(summary["total"]["answers"], 80);
}

#[test]
fn erasure_leaves_no_personal_data_in_the_store() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let mut c = customer("erase-me", BERLIN);
    c["name"] = json!("Zelda Quarrington");
    c["email"] = json!("zelda.q@example.org");
    c["phone"] = json!("+4917612345678");
    c["birthday"] = json!("1985-12-03");
    let links = surveys(&host, &sender, &[c], |_| "agent-1".into());
    host.answer(
        &links["erase-me"],
        1,
        Some("Zelda Quarrington here, call +4917612345678"),
    );
    host.escalator_tick();
    // The agent's resolution of that callback names her too; a later
    // complaint's task then copies the earlier answer (with its comment), the
    // complaint's topic (timeline, open cases) and the earlier resolution.
    host.set_clock("2026-12-04T11:00:00+01:00");
    let first = host.callbacks("")[0]["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = Host::json(host.admin_post(
        &format!("/callbacks/{first}/outcome"),
        &json!({"outcome": "resolved", "resolution": "called Zelda Quarrington on +4917612345678",
            "customer_satisfied": true, "root_cause": "delivery"}).to_string(),
    ));
    assert_eq!(s, 200, "{v}");
    host.set_clock("2026-12-04T12:00:00+01:00");
    let body = event_body(
        "erase-complaint",
        "complaint.opened",
        "2026-12-04T12:00:00+01:00",
        json!({"id": "erase-me", "name": "Zelda Quarrington", "phone": "+4917612345678"}),
        json!({"topic": "Zelda Quarrington's fridge"}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
    let tasks = host.callbacks("days=92");
    let complaint = tasks
        .iter()
        .find(|t| t["reason"] == "complaint")
        .expect("the complaint's task");
    let copied = complaint["context"].to_string();
    assert!(
        copied.contains("call +4917612345678")
            && copied.contains("fridge")
            && copied.contains("called Zelda"),
        "{copied}"
    );
    let scan = || -> Vec<String> {
        let conn =
            rusqlite::Connection::open(host.data.0.join("store/sqlite_key_value.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT key, value FROM spin_key_value")
            .unwrap();
        let rows: Vec<(String, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.into_iter()
            .filter(|(k, v)| {
                let text = format!("{k} {}", String::from_utf8_lossy(v));
                [
                    "Zelda",
                    "Quarrington",
                    "zelda.q@example.org",
                    "+4917612345678",
                    "4917612345678",
                    "1985-12-03",
                ]
                .iter()
                .any(|pd| text.contains(pd))
            })
            .map(|(k, _)| k)
            .collect()
    };
    assert!(!scan().is_empty(), "the data was there before");
    // The host's log names routes, not paths: no link token, no customer id.
    let token = links["erase-me"].trim_start_matches("/s/").to_string();
    assert!(
        !host.log().contains(&token) && !host.log().contains("erase-me"),
        "{}",
        host.log()
    );
    // Keys name customers by a pseudonym, never by the seller's id.
    assert!(
        host.store_keys().iter().all(|k| !k.contains("erase-me")),
        "{:?}",
        host.store_keys()
    );
    let r = host
        .http
        .delete(host.url("/customers/erase-me"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        scan(),
        Vec::<String>::new(),
        "personal data left after erasure"
    );
    let r = host
        .http
        .delete(host.url("/customers/erase-me"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "idempotent");
    // The id is decoded from the path (`%2D` is `-`); a customer never seen is a 404.
    let r = host
        .http
        .delete(host.url("/customers/erase%2Dme"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let keys_before = host.store_keys().len();
    let r = host
        .http
        .delete(host.url("/customers/never-seen"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        host.store_keys().len(),
        keys_before,
        "no record made for them"
    );
    assert_eq!(
        host.http
            .delete(host.url("/customers/erase-me"))
            .send()
            .unwrap()
            .status(),
        401
    );
    // Anonymous counts stay.
    let (_, summary) =
        Host::json(host.report("/reports/summary?from=2026-12-04&to=2026-12-04&group_by=day"));
    assert_eq!(summary["total"]["answers"], 1);
}

#[test]
fn a_thank_you_call_waiting_for_the_tick_respects_an_erasure_in_between() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let mut c = customer("fan-1", BERLIN);
    c["name"] = json!("Philippa Fanshawe");
    c["tier"] = json!("vip"); // thank-you calls are for key customers
    let links = surveys(&host, &sender, &[c], |_| "agent-1".into());
    let (s, _) = host.answer(
        &links["fan-1"],
        10,
        Some("Philippa Fanshawe says: wonderful"),
    );
    assert_eq!(s, 200);
    assert!(
        host.callbacks("").is_empty(),
        "a thank-you call waits for the escalator's tick"
    );
    let r = host
        .http
        .delete(host.url("/customers/fan-1"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, tick) = Host::json(host.admin_post("/escalator/tick", ""));
    // The answer is counted; its thank-you call, judged after the erasure
    // (the tick reads the customer's record then), is not planned.
    assert_eq!(tick["answers_counted"], 1, "{tick}");
    assert_eq!(tick["deferred_received"], 0, "{tick}");
    assert!(
        host.callbacks("").is_empty(),
        "an erased customer stays opted out: no thank-you call is planned"
    );
    let (_, report) = Host::json(host.report("/reports/loop"));
    assert_eq!(report["created"], 0, "{report}");
}

#[test]
fn guessing_tokens_and_hammering_a_link_are_rate_limited() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let links = surveys(&host, &sender, &[customer("rl-1", BERLIN)], |_| {
        "agent-1".into()
    });
    let link = &links["rl-1"];
    let mut last = 0;
    for i in 0..65 {
        last = host
            .http
            .post(host.url(link))
            .header("content-type", "application/json")
            .body("{\"score\": 8}")
            .send()
            .unwrap()
            .status()
            .as_u16();
        if i == 0 {
            assert_eq!(last, 200);
        }
    }
    assert_eq!(last, 429, "more than 60 posts a minute to one link");
    let mut statuses = Vec::new();
    for i in 0..35 {
        let r = host
            .http
            .get(host.url(&format!("/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA{i:02}")))
            .send()
            .unwrap();
        statuses.push((
            r.status().as_u16(),
            r.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
        ));
    }
    assert_eq!(statuses[0].0, 404);
    let (status, retry) = statuses.last().unwrap();
    assert_eq!(*status, 429, "{statuses:?}");
    assert!(
        retry
            .as_deref()
            .is_some_and(|s| s.parse::<u32>().is_ok_and(|n| (1..=60).contains(&n))),
        "{retry:?}"
    );
    // The guessing network's customers still open their own links: a signed
    // token is never refused for its network's failures (a carrier's NAT).
    let other = surveys(&host, &sender, &[customer("rl-2", BERLIN)], |_| {
        "agent-1".into()
    });
    host.set_clock("2026-12-04T10:00:30+01:00");
    let r = host.http.get(host.url(&other["rl-2"])).send().unwrap();
    assert_eq!(r.status(), 200);
    // A minute later the network may try again.
    host.set_clock("2026-12-04T10:02:00+01:00");
    assert_eq!(
        host.http
            .get(host.url("/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA99"))
            .send()
            .unwrap()
            .status(),
        404
    );
}

#[test]
fn the_first_answer_wins_across_a_surveys_channels() {
    let sender = Sender::start();
    let policy = r#"{"plans":[{"on":"order.delivered","category":"high_value","kind":"product","delay_hours":72,"send_within_hours":96}],
        "scales":{"product":"nps"},"channels":["email","sms"],"link_validity_days":14}"#;
    let host =
        Host::start(HostConfig::revisit(sender.port).set("SPIN_VARIABLE_SURVEY_POLICY", policy));
    let mut c = customer("both", BERLIN);
    c["phone"] = json!("+4915199999999");
    host.set_clock("2026-12-01T10:00:00+01:00");
    let body = event_body(
        "ev-both",
        "order.delivered",
        "2026-12-01T10:00:00+01:00",
        c,
        json!({"category": "high_value"}),
    );
    assert_eq!(host.post_event(&body).status(), 202);
    let links = host.tick_links(&sender, 0);
    host.set_clock("2026-12-04T10:00:00+01:00");
    let links = if links.is_empty() {
        host.tick_links(&sender, 0)
    } else {
        links
    };
    assert_eq!(links.len(), 2, "one link per channel");
    let (email, sms) = (&links[0], &links[1]);
    assert_ne!(email.0, sms.0);
    assert_eq!(
        (email.1["channel"].as_str(), sms.1["channel"].as_str()),
        (Some("email"), Some("sms"))
    );
    assert_eq!(sms.1["segments"], 1, "{}", sms.1);
    assert_eq!(sms.1["encoding"], "gsm7");
    assert!(sms.1["text"]
        .as_str()
        .unwrap()
        .ends_with(sms.1["link"].as_str().unwrap()));
    assert_eq!(email.1["survey_id"], sms.1["survey_id"]);
    let (s, answered) = host.answer(&sms.0, 9, None);
    assert_eq!(s, 200);
    assert_eq!(answered["channel"], sms.1["channel"]);
    let (s, conflict) = host.answer(&email.0, 2, None);
    assert_eq!(s, 409, "{conflict}");
    assert_eq!(conflict["answer"]["score"], 9);
}

fn post_form(host: &Host, link: &str, form: &str) -> (u16, String) {
    let r = host
        .http
        .post(host.url(link))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// The page says which order it is about (in the customer's language and
/// local date); a low score chosen on it is asked for reasons on a second
/// step that records nothing until it is sent; the reasons reach the
/// callback's context and the summary by reason. A low score pre-selected by
/// an e-mail's button offers the reasons at once.
#[test]
fn a_low_score_from_the_page_gives_reasons_that_reach_the_task_and_the_reports() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let customers: Vec<Value> = ["why-de", "why-en"]
        .iter()
        .map(|id| customer(id, BERLIN))
        .collect();
    let mut customers = customers;
    customers[0]["locale"] = json!("de-DE");
    let links = surveys(&host, &sender, &customers, |_| "agent-1".into());
    let link = &links["why-de"];
    let get = |path: &str| {
        host.http
            .get(host.url(path))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };

    let page = get(link);
    assert!(
        page.contains("Zur Bestellung order-ev-why-de vom 2026-12-01"),
        "what the survey is about: {page}"
    );
    assert!(page.contains("name=\"step\" value=\"score\""), "{page}");
    assert!(
        !page.contains("name=\"reasons\""),
        "no reasons before a score"
    );

    // Step one: a low score and a comment. Asked for reasons; nothing recorded.
    let (status, step) = post_form(&host, link, "step=score&score=2&comment=Karton+nass");
    assert_eq!(status, 200, "{step}");
    assert!(step.contains("Ihre Bewertung: 2"), "{step}");
    assert!(
        step.contains("name=\"reasons\" value=\"damaged\"")
            && step.contains("Beschädigt oder defekt"),
        "the product's reasons, labelled in German: {step}"
    );
    assert!(
        step.contains(">Karton nass</textarea>"),
        "the comment is carried: {step}"
    );
    assert!(step.contains("name=\"score\" value=\"2\""), "{step}");
    assert!(
        step.contains("Noch nicht gesendet"),
        "says it is not sent yet: {step}"
    );
    let hostile = format!(
        "step=score&score=1&comment={}",
        urlencode("</textarea><script>x</script>")
    );
    let (_, escaped) = post_form(&host, link, &hostile);
    assert!(
        escaped.contains("&lt;/textarea&gt;&lt;script&gt;") && !escaped.contains("<script>"),
        "a carried comment is escaped: {escaped}"
    );
    assert!(
        get(link).contains("name=\"step\" value=\"score\""),
        "still unanswered after step one"
    );

    // Step two records the answer with its reasons.
    let form = "step=reasons&score=2&comment=Karton+nass&reasons=damaged&reasons=late_delivery";
    let (status, thanks) = post_form(&host, link, form);
    assert_eq!(status, 200, "{thanks}");
    assert!(
        thanks.contains("2026-12-06"),
        "a callback is promised: {thanks}"
    );
    assert_eq!(post_form(&host, link, form).0, 409, "answered once");

    host.escalator_tick();
    let task = host
        .callbacks("state=open")
        .into_iter()
        .find(|t| t["customer_id"] == "why-de")
        .expect("a callback for the low score");
    let id = task["task_id"].as_str().unwrap();
    let (_, task) = Host::json(host.admin_get(&format!("/callbacks/{id}")));
    assert_eq!(
        task["context"]["answer"]["reasons"],
        json!(["damaged", "late_delivery"]),
        "{task}"
    );
    assert_eq!(task["context"]["answer"]["comment"], "Karton nass");
    // The agent resolves it and names the cause: what the customer said
    // reaches the findings of that cause (the outer loop).
    let outcome = json!({"outcome": "resolved", "resolution": "new unit sent",
        "customer_satisfied": true, "root_cause": "delivery"});
    let r = host.admin_post(&format!("/callbacks/{id}/outcome"), &outcome.to_string());
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let (_, findings) = Host::json(host.report("/reports/findings?from=2026-11-30&to=2026-12-06"));
    let delivery = findings["departments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["causes"].as_array().unwrap())
        .find(|c| c["cause"] == "delivery")
        .unwrap_or_else(|| panic!("{findings}"));
    assert_eq!(
        delivery["customer_reasons"],
        json!({"damaged": 1, "late_delivery": 1}),
        "{findings}"
    );

    // One tap from an e-mail: a low pre-selected score shows the reasons at once.
    let other = &links["why-en"];
    let one_tap = get(&format!("{other}?score=1"));
    assert!(
        one_tap.contains("value=\"1\" required checked"),
        "{one_tap}"
    );
    assert!(
        one_tap.contains("name=\"step\" value=\"reasons\"")
            && one_tap.contains("name=\"reasons\" value=\"damaged\"")
            && one_tap.contains("Damaged or faulty"),
        "{one_tap}"
    );
    assert!(!get(&format!("{other}?score=9")).contains("name=\"reasons\""));
    let (status, _) = post_form(
        &host,
        other,
        "step=reasons&score=1&reasons=damaged&reasons=x-api-tag",
    );
    assert_eq!(status, 200);

    let (status, report) =
        Host::json(host.report("/reports/summary?from=2026-12-04&to=2026-12-04&group_by=reason"));
    assert_eq!(status, 200, "{report}");
    let rows: Vec<(String, i64)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["group"].as_str().unwrap().to_string(),
                r["answers"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("damaged".into(), 2),
            ("late_delivery".into(), 1),
            ("other".into(), 1)
        ],
        "{report}"
    );
    assert_eq!(report["total"]["answers"], 2, "{report}");
}
