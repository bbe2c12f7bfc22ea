//! The supervisor's console, end to end: a first run with no sender shows
//! what would have been sent; the overview agrees with the API; a callback is
//! reassigned through the page; the CSV export parses back; every page
//! passes axe-core in Chromium, in both languages.

use revisit_tests::*;
use serde_json::{json, Value};

const BERLIN: &str = "Europe/Berlin";

/// The app as a new user has it: no sender configured.
fn first_run() -> Host {
    let mut config = HostConfig::revisit(9);
    config
        .env
        .retain(|(k, _)| k != "SPIN_VARIABLE_SENDER_URL" && k != "SPIN_VARIABLE_SENDER_ORIGIN");
    Host::start(config)
}

fn page(host: &Host, path: &str) -> (u16, String) {
    let r = host
        .http
        .get(host.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// Two delivered orders, both answered low: two callbacks.
fn a_few_days(host: &Host) -> Vec<Value> {
    host.set_clock("2026-12-01T10:00:00+01:00");
    for (id, agent) in [("c-1", "agent-1"), ("c-2", "agent-2")] {
        let mut c = customer(id, BERLIN);
        c["name"] = json!(if id == "c-1" {
            "王芳"
        } else {
            "=HYPERLINK(\"x\")"
        });
        let body = event_body(
            &format!("ev-{id}"),
            "order.delivered",
            "2026-12-01T10:00:00+01:00",
            c,
            json!({"category": "high_value", "agent_id": agent}),
        );
        assert_eq!(host.post_event(&body).status(), 202);
    }
    host.set_clock("2026-12-04T10:05:00+01:00");
    let (_, tick) = Host::json(host.admin_post("/issuer/tick", ""));
    assert_eq!(tick["sent"], 2, "{tick}");
    let (_, outbox) = page(host, "/console/outbox");
    let links: Vec<String> = outbox
        .match_indices("href=\"")
        .filter_map(|(i, _)| outbox[i + 6..].split('"').next().map(str::to_string))
        .filter(|l| l.contains("/s/"))
        .collect();
    assert_eq!(links.len(), 2, "{outbox}");
    for link in &links {
        // As the page's reasons step posts them.
        let answer = json!({"score": 2, "comment": "=1+1 and 你好", "reasons": ["damaged"]});
        let r = host
            .http
            .post(host.url(&link_path(link)))
            .header("content-type", "application/json")
            .body(answer.to_string())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    host.escalator_tick();
    host.callbacks("")
}

#[test]
fn a_first_run_shows_what_would_have_been_sent() {
    let host = first_run();
    let (status, login) = {
        let r = host.http.get(host.url("/")).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(status, 200, "`/` leads to the console's sign-in");
    assert!(login.contains("name=\"token\""), "{login}");
    let tasks = a_few_days(&host);
    assert_eq!(tasks.len(), 2, "the low scores' callbacks: {tasks:?}");
    // The outbox's links are live: the survey page answers (and says it was answered).
    let (_, outbox) = page(&host, "/console/outbox");
    assert!(
        outbox.contains("email") && outbox.contains("c-1@example.com"),
        "{outbox}"
    );
}

#[test]
fn the_overview_agrees_with_the_api_and_a_callback_is_reassigned_and_exported() {
    let host = first_run();
    let tasks = a_few_days(&host);
    let (_, summary) =
        Host::json(host.report("/reports/summary?from=2026-11-07&to=2026-12-04&group_by=day"));
    let (_, loop_report) = Host::json(host.report("/reports/loop"));
    let (status, overview) = page(&host, "/console?from=2026-11-07&to=2026-12-04&lang=en");
    assert_eq!(status, 200);
    let total = &summary["total"];
    let shown = |label: &str, value: String| format!("<div>{label}<strong>{value}</strong></div>");
    let nps = total["nps"].as_f64().unwrap();
    let fmt = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    for expected in [
        shown("NPS", fmt(nps)),
        shown(
            "Response rate",
            format!("{}%", fmt(total["response_rate_pct"].as_f64().unwrap())),
        ),
        shown("Callbacks created", loop_report["created"].to_string()),
        shown("Open now", "2".into()),
    ] {
        assert!(
            overview.contains(&expected),
            "{expected} not in the overview"
        );
    }
    assert!(
        overview.contains("<svg class=\"chart\"") && overview.contains("<table>"),
        "charts with their numbers"
    );

    // Reassign through the page's form, checked through the API.
    let id = tasks[0]["task_id"].as_str().unwrap();
    let r = host
        .http
        .post(host.url(&format!("/console/callbacks/{id}/owner?lang=en")))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("owner=agent-9")
        .send()
        .unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    let (_, task) = Host::json(host.admin_get(&format!("/callbacks/{id}")));
    assert_eq!(task["owner"], "agent-9");
    assert_eq!(host.callbacks("owner=agent-9").len(), 1);
    assert!(
        host.callbacks("owner=agent-1").is_empty(),
        "out of the old owner's queue"
    );

    // The export: a BOM, RFC 4180, Chinese intact, formulas neutralised.
    let bytes = host
        .http
        .get(host.url("/console/export/callbacks.csv"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "a BOM for spreadsheets");
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let row = |customer: &str| {
        rows.iter()
            .find(|r| &r[col("customer_id")] == customer)
            .unwrap()
    };
    assert_eq!(&row("c-1")[col("customer_name")], "王芳");
    assert_eq!(
        &row("c-2")[col("customer_name")],
        "'=HYPERLINK(\"x\")",
        "a formula is text"
    );
    let reassigned = rows.iter().find(|r| &r[col("task_id")] == id).unwrap();
    assert_eq!(&reassigned[col("owner")], "agent-9");
    // The answers export: the two answers, Chinese intact, the formula-like comment as text.
    let bytes = host
        .http
        .get(host.url("/console/export/answers.csv?from=2026-12-01&to=2026-12-04"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let headers = reader.headers().unwrap().clone();
    let answers: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(answers.len(), 2);
    let comment = headers.iter().position(|h| h == "comment").unwrap();
    assert!(
        answers.iter().all(|a| &a[comment] == "'=1+1 and 你好"),
        "{answers:?}"
    );

    // The answers page lists the customers' words; its filter keeps what it says.
    let (_, list) = page(
        &host,
        "/console/answers?from=2026-12-01&to=2026-12-04&low=1&agent=agent-2&lang=en",
    );
    assert!(
        list.contains("=1+1 and 你好") && list.contains("(1)"),
        "one low answer of agent-2: {list}"
    );
    // One callback's page: what the caller reads before dialling.
    let (status, one) = page(&host, &format!("/console/callbacks/{id}?lang=en"));
    assert_eq!(status, 200);
    assert!(
        one.contains("agent-9") && one.contains("order-ev-c-") && one.contains("order.delivered"),
        "{one}"
    );

    // An agent may not see the console.
    let agent = Host::start(
        HostConfig::revisit(9).set("SPIN_VARIABLE_AGENT_TOKENS", r#"{"agent-1":"tok-1"}"#),
    );
    let r = agent
        .http
        .get(agent.url("/console"))
        .bearer_auth("tok-1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[test]
fn the_survey_pipeline_and_its_actions_keep_to_the_rules() {
    let host = first_run();
    a_few_days(&host);
    let (_, day) = page(&host, "/console/surveys?day=2026-12-04&lang=en");
    assert!(
        day.contains("<div>answered<strong>2</strong></div>"),
        "{day}"
    );
    // A survey planned for later: "send now" at night is refused with the reason; by day it is queued.
    host.set_clock("2026-12-04T22:30:00+01:00");
    let planned = host.planned_survey(&event_body(
        "ev-late",
        "order.delivered",
        "2026-12-04T22:30:00+01:00",
        customer("c-3", BERLIN),
        json!({"category": "high_value"}),
    ));
    // The form's post, followed to the page it leads back to.
    let post = |path: String| {
        let r = host
            .http
            .post(host.url(&path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "back on the surveys page");
        r.text().unwrap()
    };
    let night = post(format!(
        "/console/surveys/{planned}/send?lang=en&day=2026-12-07"
    ));
    assert!(night.contains("quiet_hours"), "{night}");
    host.set_clock("2026-12-05T10:00:00+01:00");
    let by_day = post(format!(
        "/console/surveys/{planned}/send?lang=en&day=2026-12-07"
    ));
    assert!(by_day.contains("goes out with the next tick"), "{by_day}");
    let (_, tick) = Host::json(host.admin_post("/issuer/tick", ""));
    assert_eq!(tick["sent"], 1, "{tick}");
    // Cancel: only what has not gone out.
    let again = post(format!(
        "/console/surveys/{planned}/cancel?lang=en&day=2026-12-07"
    ));
    assert!(again.contains("no longer planned"), "{again}");
}

#[test]
fn every_console_page_passes_axe_in_chromium_in_both_languages() {
    let host = first_run();
    a_few_days(&host);
    // A survey still planned (due on the 7th), for the page's "send now" and "cancel".
    let planned = host.planned_survey(&event_body(
        "ev-planned",
        "order.delivered",
        "2026-12-04T10:05:00+01:00",
        customer("c-9", BERLIN),
        json!({"category": "high_value"}),
    ));
    // A survey sent and not answered yet, for the survey page's own checks.
    let open = event_body(
        "ev-open",
        "order.delivered",
        "2026-12-01T10:00:00+01:00",
        customer("c-8", BERLIN),
        json!({"category": "high_value"}),
    );
    assert_eq!(host.post_event(&open).status(), 202);
    let (_, tick) = Host::json(host.admin_post("/issuer/tick", ""));
    assert_eq!(tick["sent"], 1, "{tick}");
    let dir = project_root().join("tests/artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let steps = browser_steps(
        "console.mjs",
        &[host.base.as_ref(), ADMIN_TOKEN.as_ref(), dir.as_os_str()],
    );
    let stdout = serde_json::to_string(&steps).unwrap();
    let pages: Vec<&Value> = steps.iter().filter(|s| s["step"] == "page").collect();
    assert_eq!(pages.len(), 16, "{stdout}");
    for s in steps
        .iter()
        .filter(|s| s["step"] == "page" || s["step"] == "root")
    {
        assert_eq!(s["violations"], json!([]), "WCAG 2.1 AA: {s}");
    }
    for p in &pages {
        assert_eq!(p["htmlLang"], p["lang"]);
    }
    // The survey page: WCAG 2.1 AA, answered with the keyboard alone, and both
    // ends of its scale named (under the numbers, and in the first and last
    // option for a screen reader).
    let survey = steps
        .iter()
        .find(|s| s["step"] == "survey")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(survey["violations"], json!([]), "WCAG 2.1 AA: {survey}");
    assert_eq!(survey["reachedButton"], true, "{survey}");
    assert!(survey["chosen"].is_string(), "{survey}");
    let ends = survey["ends"].as_array().unwrap();
    assert_eq!(ends.len(), 2, "{survey}");
    let (low, high) = (ends[0].as_str().unwrap(), ends[1].as_str().unwrap());
    assert!(
        [
            ("Not likely", "Very likely"),
            ("Very dissatisfied", "Very satisfied")
        ]
        .contains(&(low, high)),
        "{survey}"
    );
    assert!(
        survey["firstOption"].as_str().unwrap().contains(low),
        "{survey}"
    );
    assert!(
        survey["after"].as_str().unwrap().contains("Thank you"),
        "{survey}"
    );
    // The keyboard chose the second score, a low one: its reasons were asked
    // for on a second step (accessible too), one ticked, then sent.
    let reasons = &survey["reasons"];
    assert_eq!(reasons["violations"], json!([]), "WCAG 2.1 AA: {survey}");
    assert!(
        reasons["labels"].as_array().is_some_and(|l| l.len() >= 3),
        "{survey}"
    );
    assert!(
        reasons["ticked"].is_string(),
        "a reason ticked by keyboard: {survey}"
    );
    assert!(
        reasons["yourScore"]
            .as_str()
            .is_some_and(|s| s.ends_with(survey["chosen"].as_str().unwrap())),
        "{survey}"
    );
    let actions = steps
        .iter()
        .find(|s| s["step"] == "survey-actions")
        .expect("the survey actions");
    assert!(
        actions["sendNotice"]
            .as_str()
            .unwrap()
            .contains("goes out with the next tick"),
        "{actions}"
    );
    assert!(
        actions["cancelNotice"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{actions}"
    );
    let (_, survey) = Host::json(host.admin_get(&format!("/surveys/{planned}")));
    assert_eq!(
        survey["state"], "cancelled",
        "the page's actions, checked through the API: {survey}"
    );
    let reassigned = steps
        .iter()
        .find(|s| s["step"] == "reassigned")
        .expect("reassigned");
    assert!(
        reassigned["notice"].as_str().unwrap().contains("agent-9"),
        "{reassigned}"
    );
    let id = reassigned["action"]
        .as_str()
        .unwrap()
        .split('/')
        .nth(3)
        .unwrap()
        .to_string();
    let (_, task) = Host::json(host.admin_get(&format!("/callbacks/{id}")));
    assert_eq!(
        task["owner"], "agent-9",
        "the page's action, checked through the API"
    );
    for name in [
        "overview",
        "surveys",
        "callbacks",
        "findings",
        "outbox",
        "settings",
    ] {
        for lang in ["en", "zh-Hans"] {
            let shot = dir.join(format!("console-{name}-{lang}.png"));
            assert!(
                std::fs::metadata(&shot)
                    .map(|m| m.len() > 1000)
                    .unwrap_or(false),
                "{shot:?}"
            );
        }
    }
}

#[test]
fn an_export_of_ten_thousand_answers_streams_and_parses_back() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    const N: usize = 10_000;
    host.set_clock("2026-12-01T10:00:00+01:00");
    let t = host.clock().timestamp();
    let all: Vec<usize> = (0..N).collect();
    std::thread::scope(|s| {
        for chunk in all.chunks(N / 16 + 1) {
            let host = &host;
            s.spawn(move || {
                for i in chunk {
                    let body = numbered_delivery("x", *i, 8, "2026-12-01T10:00:00+01:00");
                    assert_eq!(host.post_signed(&body, t, WEBHOOK_SECRET).status(), 202);
                }
            });
        }
    });
    host.set_clock("2026-12-04T10:00:00+01:00");
    let tick = host.issuer_tick_all();
    assert_eq!(tick["sent"], N, "{tick}");
    let links: Vec<String> = sender
        .messages()
        .iter()
        .map(|m| link_path(m["link"].as_str().unwrap()))
        .collect();
    // Every answer has words: Chinese in most, a formula in every tenth.
    std::thread::scope(|s| {
        for (c, chunk) in links.chunks(N / 16 + 1).enumerate() {
            let host = &host;
            s.spawn(move || {
                for (i, link) in chunk.iter().enumerate() {
                    let comment = if i % 10 == 0 {
                        format!("=SUM(A{c})")
                    } else {
                        format!("很好 {c}-{i}")
                    };
                    assert_eq!(host.answer(link, 9, Some(&comment)).0, 200);
                }
            });
        }
    });
    let mut r = host
        .http
        .get(host.url("/console/export/answers.csv?from=2026-12-04&to=2026-12-04"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("content-length").is_none(),
        "streamed, not sent whole"
    );
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut bytes).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let comment = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "comment")
        .unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), N);
    assert!(
        rows.iter()
            .all(|r| r[comment].starts_with("很好") || r[comment].starts_with("'=SUM(")),
        "formulas as text"
    );
    assert_eq!(
        rows.iter().filter(|r| r[comment].starts_with("'=")).count(),
        (0..16)
            .map(|c| all
                .chunks(N / 16 + 1)
                .nth(c)
                .map_or(0, |ch| ch.len().div_ceil(10)))
            .sum::<usize>()
    );
}
