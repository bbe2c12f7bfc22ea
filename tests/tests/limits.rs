//! The host's own limits (app-agnostic, configurable): a body announced over
//! the limit is refused before any component runs, and no outbound request
//! may hold a component longer than the outbound timeout.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use revisit_tests::*;
use serde_json::json;

#[test]
fn a_body_announced_as_200_mb_is_refused_unread() {
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let mut conn = TcpStream::connect(("127.0.0.1", host.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Headers only: the 200 MB never come. A host that waited for them would
    // time out here instead of answering.
    write!(
        conn,
        "POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200000000\r\n\r\n"
    )
    .unwrap();
    let started = Instant::now();
    let mut answer = [0u8; 512];
    let n = conn.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("--max-body-bytes"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        host.log().contains("refused unread"),
        "no component ran: {}",
        host.log()
    );
    // A body within the limit still reaches the app.
    let (status, _) = Host::json(host.post_event(&delivery_event(
        "small",
        "2026-12-01T10:00:00+01:00",
        "Europe/Berlin",
    )));
    assert_eq!(status, 202);
}

#[test]
fn a_sender_that_never_answers_does_not_hold_a_tick() {
    // Accepts connections and never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let held = std::thread::spawn(move || {
        let mut kept = Vec::new();
        silent.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((c, _)) = silent.accept() {
                kept.push(c);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        kept.len()
    });
    let host = Host::start(HostConfig::revisit(port).arg("--outbound-timeout").arg("2"));
    host.set_clock("2026-12-01T10:00:00+01:00");
    let survey = host.planned_survey(&event_body(
        "silent-1",
        "order.delivered",
        "2026-12-01T10:00:00+01:00",
        customer("cs-1", "Europe/Berlin"),
        json!({"category": "high_value"}),
    ));
    host.set_clock("2026-12-04T10:00:00+01:00");
    let started = Instant::now();
    let (status, tick) = Host::json(host.admin_post("/issuer/tick", ""));
    let took = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(status, 200, "{tick}");
    assert_eq!(tick["failed"], 1, "{tick}");
    assert!(took < Duration::from_secs(10), "the tick took {took:?}");
    let (_, state) = Host::json(host.admin_get(&format!("/surveys/{survey}")));
    assert_eq!(state["state"], "planned", "back for a retry: {state}");
    assert!(held.join().unwrap() >= 1, "the sender was reached");
}
