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

/// The probe app (a component that does what its path says), with host arguments.
fn probe(args: &[&str]) -> Host {
    let mut config = HostConfig {
        manifest: project_root().join("tests/fixtures/probe.toml"),
        env: Vec::new(),
        args: Vec::new(),
    };
    for a in args {
        config = config.arg(*a);
    }
    Host::start(config)
}

fn get(host: &Host, path: &str) -> (u16, String) {
    let r = host.http.get(host.url(path)).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn a_guest_that_loops_is_stopped_at_its_deadline_and_the_host_serves_on() {
    let host = probe(&["--request-deadline", "2"]);
    let started = Instant::now();
    let (status, _) = get(&host, "/probe/spin");
    let took = started.elapsed();
    assert_eq!(status, 500);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert!(host.log().contains("deadline"), "{}", host.log());
    assert_eq!(get(&host, "/probe/hello"), (200, "hello".into()));
}

#[test]
fn a_guest_that_asks_for_a_gigabyte_is_refused_and_the_host_serves_on() {
    let host = probe(&["--max-instance-memory-mb", "64"]);
    let (status, _) = get(&host, "/probe/hog");
    assert_eq!(status, 500, "{}", host.log());
    assert_eq!(get(&host, "/probe/hello"), (200, "hello".into()));
    // With room for it, the same guest gets its gigabyte: the limit is the host's.
    let roomy = probe(&["--max-instance-memory-mb", "2048"]);
    assert_eq!(get(&roomy, "/probe/hog"), (200, (1u64 << 30).to_string()));
}

#[test]
fn a_streamed_body_over_the_limit_never_reaches_the_guest_whole() {
    let host = probe(&["--max-body-bytes", "1024"]);
    // Chunked: no Content-Length to refuse up front.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..8).map(|_| Ok(vec![b'x'; 512])).collect();
    let body = reqwest::blocking::Body::new(StreamedBody(chunks.into_iter()));
    // The guest's read fails past the limit: an error status, or the
    // connection cut while the client still sends; never the whole 4 KiB.
    match host
        .http
        .post(host.url("/probe/echo-len"))
        .body(body)
        .send()
    {
        Ok(r) => assert_ne!(r.status().as_u16(), 200, "{:?}", r.text()),
        Err(e) => assert!(e.is_body() || e.is_request(), "{e}"),
    }
    assert!(
        host.log().matches("POST /probe/... -> probe 200").count() == 0,
        "{}",
        host.log()
    );
    // Within the limit, streamed or not, it arrives whole.
    let r = host
        .http
        .post(host.url("/probe/echo-len"))
        .body(vec![b'y'; 1000])
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), "1000");
    assert_eq!(
        host.log().matches("POST /probe/... -> probe 200").count(),
        1,
        "{}",
        host.log()
    );
}

/// A body reqwest sends chunked (its length unknown).
struct StreamedBody(std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>);

impl Read for StreamedBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.next() {
            None => Ok(0),
            Some(Err(e)) => Err(e),
            Some(Ok(chunk)) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                Ok(n)
            }
        }
    }
}

#[test]
fn unfinished_headers_are_cut_off_and_idle_connections_do_not_stop_the_host() {
    let host = probe(&["--header-timeout", "30"]);
    // Two thousand connections that never say a word, and one that stops mid-header.
    let idle: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(("127.0.0.1", host.port)).unwrap())
        .collect();
    let mut half = TcpStream::connect(("127.0.0.1", host.port)).unwrap();
    write!(
        half,
        "GET /probe/hello HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    )
    .unwrap();
    let started = Instant::now();
    // Others are served all the while.
    for _ in 0..20 {
        assert_eq!(get(&host, "/probe/hello"), (200, "hello".into()));
    }
    half.set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = half.read(&mut buf).unwrap_or(0);
    let took = started.elapsed();
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408"),
        "closed, not answered: {:?}",
        &buf[..n]
    );
    assert!(
        took <= Duration::from_secs(31),
        "closed within 30 s: {took:?}"
    );
    drop(idle);
    assert_eq!(get(&host, "/probe/hello"), (200, "hello".into()));
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let host = probe(&["--request-deadline", "3"]);
    // A request that takes its time (the looping guest, stopped at 3 s), then SIGTERM.
    let base = host.base.clone();
    let slow = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .get(format!("{base}/probe/spin"))
            .send()
            .map(|r| r.status().as_u16())
    });
    std::thread::sleep(Duration::from_millis(500));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &host.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The request in flight still gets its answer (here the deadline's 500), not a reset.
    assert_eq!(slow.join().unwrap().unwrap(), 500);
    std::thread::sleep(Duration::from_millis(500));
    assert!(host.log().contains("shutting down"), "{}", host.log());
    assert!(
        TcpStream::connect(("127.0.0.1", host.port)).is_err(),
        "no longer listening"
    );
}

#[test]
fn a_locked_store_stalls_only_the_requests_that_need_it() {
    let host = probe(&[]);
    assert_eq!(get(&host, "/probe/incr").0, 200);
    // Another process holds the database's write lock for three seconds.
    let db = host.data.0.join("store/sqlite_key_value.db");
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let locker = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(3));
        conn.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    // More writers waiting on the lock than the host has worker threads…
    let base = host.base.clone();
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let url = format!("{base}/probe/incr");
            std::thread::spawn(move || reqwest::blocking::get(url).map(|r| r.status().as_u16()))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // …and a request that needs no store is still answered at once.
    let started = Instant::now();
    assert_eq!(get(&host, "/probe/hello"), (200, "hello".into()));
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1000),
        "a store-free request waited {took:?}"
    );
    locker.join().unwrap();
    for w in writers {
        assert_eq!(
            w.join().unwrap().unwrap(),
            200,
            "the writers finish once the lock is gone"
        );
    }
}
