//! Hard tests (bounded, loopback only): heavy load with exact results, and a
//! SIGKILL in the middle of it losing nothing that was acknowledged.

use revisit_tests::*;
use serde_json::json;

/// Plan and send `n` surveys (one per customer); their links.
fn links(host: &Host, sender: &Sender, n: usize) -> Vec<String> {
    host.set_clock("2026-12-01T10:00:00+01:00");
    let t = host.clock().timestamp();
    let all: Vec<usize> = (0..n).collect();
    std::thread::scope(|s| {
        for chunk in all.chunks(n / 16 + 1) {
            s.spawn(move || {
                for i in chunk {
                    let body = numbered_delivery("h", *i, 8, "2026-12-01T10:00:00+01:00");
                    let r = host.post_signed(&body, t, WEBHOOK_SECRET);
                    assert_eq!(r.status(), 202);
                }
            });
        }
    });
    host.set_clock("2026-12-04T10:00:00+01:00");
    let (_, tick) = Host::json(host.admin_post("/issuer/tick", ""));
    assert_eq!(tick["sent"], n, "{tick}");
    sender
        .messages()
        .iter()
        .map(|m| link_path(m["link"].as_str().unwrap()))
        .collect()
}

/// Post `per_link` answers to every link from `clients` threads; (link, status) pairs.
fn hammer(host: &Host, links: &[String], per_link: usize, clients: usize) -> Vec<(usize, u16)> {
    hammer_counting(
        host,
        links,
        per_link,
        clients,
        &std::sync::atomic::AtomicUsize::new(0),
    )
}

/// [`hammer`], adding one to `done` for every answer the host acknowledged.
fn hammer_counting(
    host: &Host,
    links: &[String],
    per_link: usize,
    clients: usize,
    done: &std::sync::atomic::AtomicUsize,
) -> Vec<(usize, u16)> {
    let work: Vec<usize> = (0..links.len() * per_link)
        .map(|i| i % links.len())
        .collect();
    let out = std::sync::Mutex::new(Vec::with_capacity(work.len()));
    std::thread::scope(|s| {
        for chunk in work.chunks(work.len() / clients + 1) {
            let (out, done) = (&out, done);
            s.spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut mine = Vec::with_capacity(chunk.len());
                for (n, i) in chunk.iter().enumerate() {
                    let r = client
                        .post(host.url(&links[*i]))
                        .header("content-type", "application/json")
                        .body(format!("{{\"score\": {}}}", n % 11))
                        .send();
                    // A connection refused while the host is down counts as 0.
                    let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
                    if status == 200 {
                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    mine.push((*i, status));
                }
                out.lock().unwrap().extend(mine);
            });
        }
    });
    out.into_inner().unwrap()
}

/// [`hammer`], killing the host with SIGKILL (no clean shutdown) once
/// `kill_after` answers were acknowledged, however fast the machine.
fn hammer_then_kill(
    host: &Host,
    links: &[String],
    per_link: usize,
    clients: usize,
    kill_after: usize,
) -> Vec<(usize, u16)> {
    let pid = host.pid();
    let acknowledged_so_far = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let done = &acknowledged_so_far;
        s.spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while done.load(std::sync::atomic::Ordering::Relaxed) < kill_after
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        });
        hammer_counting(host, links, per_link, clients, done)
    })
}

#[test]
fn twenty_thousand_answers_over_two_thousand_links_from_32_clients() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let links = links(&host, &sender, 2000);
    let results = hammer(&host, &links, 10, 32);
    assert_eq!(results.len(), 20_000);
    assert!(
        results.iter().all(|(_, s)| *s != 0 && *s < 500),
        "no 5xx, nothing refused"
    );
    assert_eq!(results.iter().filter(|(_, s)| *s == 200).count(), 2000);
    assert_eq!(results.iter().filter(|(_, s)| *s == 409).count(), 18_000);
    let (_, summary) =
        Host::json(host.report("/reports/summary?from=2026-12-04&to=2026-12-04&group_by=agent"));
    assert_eq!(summary["total"]["answers"], 2000, "{summary}");
    assert_eq!(summary["total"]["issued"], 2000);
    let per_agent = sum_of_rows(&summary, "answers");
    assert_eq!(per_agent, 2000, "counters are exact in every dimension");
}

#[test]
fn a_sigkill_during_load_loses_no_acknowledged_answer() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let links = links(&host, &sender, 600);
    // Kill the host (SIGKILL: no clean shutdown) while the answers pour in:
    // once a third of the links have their answer, however fast the machine.
    let results = hammer_then_kill(&host, &links, 3, 16, 200);
    let acknowledged: std::collections::BTreeSet<usize> = results
        .iter()
        .filter(|(_, s)| *s == 200)
        .map(|(i, _)| *i)
        .collect();
    let refused = results.iter().filter(|(_, s)| *s == 0).count();
    assert!(
        !acknowledged.is_empty() && refused > 0,
        "the kill landed mid-load ({} acknowledged, {refused} refused)",
        acknowledged.len()
    );

    let host = host.restart();
    for i in &acknowledged {
        let page = host
            .http
            .get(host.url(&links[*i]))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            page.contains("already answered"),
            "answer {i} was acknowledged (200) but is gone after the restart"
        );
    }
}

/// The answer log makes counts exact across a crash at any point: 32
/// clients answer, the host is killed (SIGKILL) in the middle, the clients
/// retry what got no answer once it is back, and the summary counts exactly
/// the answers the store holds — none twice (an answer counted, then the
/// crash, then the retry), none lost.
#[test]
fn a_sigkill_during_32_client_load_then_retries_leave_the_counts_exact() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let links = links(&host, &sender, 800);
    let results = hammer_then_kill(&host, &links, 1, 32, 300);
    let unanswered: Vec<String> = results
        .iter()
        .filter(|(_, s)| *s != 200 && *s != 409)
        .map(|(i, _)| links[*i].clone())
        .collect();
    assert!(
        !unanswered.is_empty() && unanswered.len() < links.len(),
        "the kill landed mid-load ({} without an answer)",
        unanswered.len()
    );

    // Back up: the clients retry every answer that got no reply.
    let host = host.restart();
    host.set_clock("2026-12-04T10:00:30+01:00");
    let retried = hammer(&host, &unanswered, 1, 32);
    assert!(
        retried.iter().all(|(_, s)| *s == 200 || *s == 409),
        "every retry is recorded or finds its answer: {retried:?}"
    );
    let recorded = links
        .iter()
        .filter(|l| {
            let page = host.http.get(host.url(l)).send().unwrap().text().unwrap();
            page.contains("already answered")
        })
        .count();
    assert_eq!(recorded, links.len(), "every link ends up answered");

    // A writer killed between logging an answer and recording it leaves an
    // entry nobody will confirm: the fold waits for it as long as a request
    // could still be running (5 minutes), then skips it.
    host.set_clock("2026-12-04T10:06:00+01:00");
    let (_, summary) =
        Host::json(host.report("/reports/summary?from=2026-12-04&to=2026-12-04&group_by=agent"));
    assert_eq!(summary["total"]["answers"], recorded, "{summary}");
    assert_eq!(
        sum_of_rows(&summary, "answers"),
        recorded as i64,
        "{summary}"
    );
    let (_, tick) = Host::json(host.admin_post("/escalator/tick", ""));
    assert_eq!(tick["answers_behind"], 0, "{tick}");
}

/// Fail the key-value operation after `skip` others, once.
fn fault(host: &Host, skip: u64) {
    let r = host
        .http
        .put(host.url("/.well-known/revisit-host/faults"))
        .body(json!({"after_kv_ops": skip, "fail_next_kv_ops": 1}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn a_store_failure_at_any_step_of_intake_is_a_503_and_the_retry_finishes_the_job() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    host.set_clock("2026-12-01T10:00:00+01:00");
    let mut ids = Vec::new();
    let mut skip = 0;
    loop {
        let event_id = format!("fault-{skip}");
        let mut c = json!({"id": format!("fc-{skip}"), "email": format!("f{skip}@example.com"), "time_zone": "Europe/Berlin", "birthday": "1990-12-24"});
        c["phone"] = json!("+4915112345678");
        let body = event_body(
            &event_id,
            "order.delivered",
            "2026-12-01T10:00:00+01:00",
            c,
            json!({"category": "high_value", "promised_at": "2026-11-30T10:00:00+01:00"}),
        );
        fault(&host, skip);
        let first = host.post_event(&body);
        let status = first.status().as_u16();
        let _ = host
            .http
            .put(host.url("/.well-known/revisit-host/faults"))
            .body("{}")
            .send();
        let (retry, planned) = Host::json(host.post_event(&body));
        assert_eq!(retry, 202, "retry after a failure at op {skip}: {planned}");
        ids.push(
            planned["surveys"][0]["survey_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        if status == 202 {
            assert_eq!(planned["duplicate"], true);
            break; // the fault fell after the last operation: every step has been failed once
        }
        assert_eq!(status, 503, "a store failure at op {skip} is a 503");
        assert_eq!(
            planned["duplicate"], false,
            "the retry is not turned away: it finishes the job"
        );
        skip += 1;
        assert!(
            skip < 200,
            "intake makes a bounded number of store operations"
        );
    }
    assert!(skip >= 5, "every step was failed once ({skip} steps)");
    // Every survey is sent exactly once; every late delivery became exactly one callback.
    host.set_clock("2026-12-04T10:00:00+01:00");
    let (_, tick) = Host::json(host.admin_post("/issuer/tick", ""));
    assert_eq!(tick["sent"], ids.len(), "{tick}");
    let sent: std::collections::BTreeSet<String> = sender
        .messages()
        .iter()
        .map(|m| m["survey_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent.len(), ids.len());
    // Each survey on SMS and e-mail at once (the customer has both), once.
    assert_eq!(
        sender.messages().len(),
        2 * ids.len(),
        "no survey sent twice"
    );
    Host::json(host.admin_post("/escalator/tick", ""));
    let tasks = host.callbacks("");
    assert_eq!(
        tasks.len(),
        ids.len(),
        "one late-delivery callback per event"
    );
    assert!(tasks.iter().all(|t| t["reason"] == "late_delivery"));
    let (_, report) = Host::json(host.report("/reports/loop"));
    assert_eq!(
        report["created"],
        ids.len(),
        "each task counted once: {report}"
    );
}

#[test]
fn a_store_failure_at_any_step_of_an_answer_is_a_503_and_the_retry_loses_and_doubles_nothing() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    const STEPS: usize = 30;
    let links = links(&host, &sender, STEPS);
    let clear = || {
        host.http
            .put(host.url("/.well-known/revisit-host/faults"))
            .body("{}")
            .send()
            .unwrap()
    };
    let (mut failed, mut after_recording) = (0, 0);
    for (skip, link) in links.iter().enumerate() {
        // A low score with a comment: recorded, promised a call, which the
        // escalator's tick makes.
        let body = json!({"score": 2, "comment": format!("step {skip}")}).to_string();
        let post = || {
            host.http
                .post(host.url(link))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .unwrap()
        };
        fault(&host, skip as u64);
        let first = post().status().as_u16();
        clear();
        let (retry, answer) = Host::json(post());
        match first {
            200 => assert_eq!(retry, 409, "step {skip}: recorded once: {answer}"),
            503 => {
                failed += 1;
                match retry {
                    200 => {}
                    // The answer was recorded (and its call will be made):
                    // the retry shows the recorded answer.
                    409 => {
                        after_recording += 1;
                        assert_eq!(answer["answer"]["comment"], format!("step {skip}"));
                    }
                    other => panic!("step {skip}: the retry after a 503 got {other}: {answer}"),
                }
            }
            other => panic!("step {skip}: a store failure must be a 503, not {other}"),
        }
    }
    // The recording's four: the history read, the log's counter, its entry,
    // the swap into the history (a failed batch read falls back to single
    // reads; a failed read for the promise only leaves the promise out).
    assert!(
        failed >= 4,
        "the fault hit every step of the answer path ({failed} failures)"
    );
    // Exactly one answer per link, counted once: failed attempts were taken back.
    let (_, summary) = Host::json(host.report("/reports/summary?from=2026-12-04&to=2026-12-04"));
    assert_eq!(summary["total"]["answers"], STEPS, "{summary}");
    let (_, by_channel) =
        Host::json(host.report("/reports/summary?from=2026-12-04&to=2026-12-04&group_by=agent"));
    let per_agent = sum_of_rows(&by_channel, "answers");
    assert_eq!(per_agent, STEPS as i64, "{by_channel}");
    // Exactly one callback per answer, whatever step failed.
    Host::json(host.admin_post("/escalator/tick", ""));
    let tasks = host.callbacks("");
    assert_eq!(
        tasks.len(),
        STEPS,
        "after {after_recording} failures after recording"
    );
    assert!(tasks.iter().all(|t| t["reason"] == "low_score"));
    // The tick reads the customer's record for each call: none leaves the
    // caller without the customer's details.
    for t in &tasks {
        assert!(
            t["context"]["customer"]["email"].is_string(),
            "a task without the customer's contact: {t}"
        );
    }
    let (_, report) = Host::json(host.report("/reports/loop"));
    assert_eq!(report["created"], STEPS, "each task counted once: {report}");
}

#[test]
fn a_host_killed_in_the_middle_of_a_send_strands_nothing() {
    // A sender that takes the connection and never answers: the tick is in
    // the middle of handing the message over when the host is killed.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || silent.accept().map(|(c, _)| c));
    let data = std::sync::Arc::new(TempDir::new("killed-mid-send"));
    let mut host = Host::start_in(HostConfig::revisit(silent_port), data.clone());
    host.set_clock("2026-12-01T10:00:00+01:00");
    let survey = host.planned_survey(&delivery_event(
        "mid-send",
        "2026-12-01T10:00:00+01:00",
        "Europe/Berlin",
    ));
    host.set_clock("2026-12-04T10:00:00+01:00");
    let url = host.url("/issuer/tick");
    let tick = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .map(|r| r.status().as_u16())
    });
    let _held = hold.join().unwrap().expect("the tick reached the sender");
    let (_, claimed) = Host::json(host.admin_get(&format!("/surveys/{survey}")));
    assert_eq!(claimed["state"], "sending", "claimed, mid-send: {claimed}");
    host.kill();
    assert!(tick.join().unwrap().is_err(), "the tick died with the host");

    // The same store, a sender that answers: once the claim's lease (10
    // minutes) is over, a tick sends the survey, once.
    let sender = Sender::start();
    let host = Host::start_in(HostConfig::revisit(sender.port), data);
    host.set_clock("2026-12-04T10:05:00+01:00");
    let (_, early) = Host::json(host.admin_post("/issuer/tick", ""));
    assert_eq!(early["sent"], 0, "the claim still holds: {early}");
    host.set_clock("2026-12-04T10:11:00+01:00");
    let (_, tick) = Host::json(host.admin_post("/issuer/tick", ""));
    assert_eq!(tick["sent"], 1, "{tick}");
    assert_eq!(sender.messages().len(), 1);
    let (_, sent) = Host::json(host.admin_get(&format!("/surveys/{survey}")));
    assert_eq!(sent["state"], "sent", "{sent}");
}
