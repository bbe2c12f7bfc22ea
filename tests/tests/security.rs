//! Secrets and sessions, through real HTTP: a short secret is refused with a
//! message that says how to make one, a session names its role, and an agent
//! removed from `agent_tokens` is signed out at once.

use std::sync::Arc;

use revisit_tests::*;
use serde_json::Value;

fn no_redirects() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sign in on the agent's page with `token`; the session cookie.
fn sign_in(host: &Host, token: &str) -> String {
    let r = no_redirects()
        .post(host.url("/queue/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 303, "signed in");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_string()
}

fn with_cookie(host: &Host, path: &str, cookie: &str) -> (u16, Value) {
    let r = host
        .http
        .get(host.url(path))
        .header("cookie", cookie)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn a_short_secret_is_refused_and_says_how_to_make_one() {
    let host = Host::start(HostConfig::revisit(9).set("SPIN_VARIABLE_WEBHOOK_SECRET", "hunter2"));
    let body = delivery_event("short-1", "2026-12-01T10:00:00+01:00", "Europe/Berlin");
    let (status, e) = Host::json(host.post_signed(&body, host.clock().timestamp(), "hunter2"));
    assert_eq!(status, 500, "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("7 bytes") && message.contains("openssl rand -hex 32"),
        "{message}"
    );
    assert!(
        host.store_keys().iter().all(|k| !k.starts_with("ev/")),
        "nothing was taken in"
    );
}

#[test]
fn a_session_names_its_role_and_ends_when_the_agent_is_removed() {
    let data = Arc::new(TempDir::new("sessions"));
    // An agent who happens to be called "supervisor" stays an agent.
    let tokens = r#"{"agent-7":"tok-7-0123456789abcdef0123456789","supervisor":"tok-s-0123456789abcdef0123456789"}"#;
    let config = HostConfig::revisit(9).set("SPIN_VARIABLE_AGENT_TOKENS", tokens);
    let host = Host::start_in(config.clone(), data.clone());
    let named_supervisor = sign_in(&host, "tok-s-0123456789abcdef0123456789");
    assert_eq!(
        with_cookie(&host, "/reports/loop", &named_supervisor).0,
        403,
        "not the supervisor"
    );
    assert_eq!(
        with_cookie(&host, "/queue", &named_supervisor).0,
        200,
        "an agent"
    );
    let agent = sign_in(&host, "tok-7-0123456789abcdef0123456789");
    assert_eq!(with_cookie(&host, "/queue", &agent).0, 200);
    let admin = sign_in(&host, ADMIN_TOKEN);
    assert_eq!(
        with_cookie(&host, "/reports/loop", &admin).0,
        200,
        "the supervisor"
    );
    // agent-7 leaves: the same store and secrets, agent-7 no longer in the tokens.
    drop(host);
    let fewer = config.set(
        "SPIN_VARIABLE_AGENT_TOKENS",
        r#"{"supervisor":"tok-s-0123456789abcdef0123456789"}"#,
    );
    let host = Host::start_in(fewer, data);
    assert_eq!(
        with_cookie(&host, "/queue", &agent).0,
        401,
        "signed out at once"
    );
    assert_eq!(with_cookie(&host, "/queue", &admin).0, 200);
    // A cookie tampered into another role is refused.
    let forged = admin.replace("c3VwZXJ2aXNvcjo", "YWdlbnQ6c3VwZXJ2aXNvcg");
    assert_eq!(with_cookie(&host, "/reports/loop", &forged).0, 401);
}

#[test]
fn guessing_tokens_locks_out_the_guessing_network_for_a_minute_only() {
    // Behind a trusted proxy (the test itself, 127.0.0.1): X-Forwarded-For names the client.
    let host = Host::start(HostConfig::revisit(9).set("SPIN_VARIABLE_TRUSTED_PROXY", "127.0.0.1"));
    host.set_clock("2026-12-01T10:00:05+01:00");
    let get = |token: &str, client: &str| {
        let r = host
            .http
            .get(host.url("/callbacks"))
            .bearer_auth(token)
            .header("x-forwarded-for", client)
            .send()
            .unwrap();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), retry)
    };
    for i in 0..20 {
        assert_eq!(get(&format!("guess-{i}"), "203.0.113.7").0, 401);
    }
    assert_eq!(get("guess-21", "203.0.113.7"), (429, Some("60".into())));
    // The whole guessing network, for the rest of the minute, valid token or not.
    assert_eq!(get(ADMIN_TOKEN, "203.0.113.99").0, 429);
    // Another client behind the same proxy is not locked out.
    assert_eq!(get(ADMIN_TOKEN, "198.51.100.4").0, 200);
    // The next minute the network may try again.
    host.set_clock("2026-12-01T10:01:05+01:00");
    assert_eq!(get(ADMIN_TOKEN, "203.0.113.7").0, 200);
    // Without the trusted proxy, X-Forwarded-For is not believed.
    let direct = Host::start(HostConfig::revisit(9));
    direct.set_clock("2026-12-01T10:00:05+01:00");
    for i in 0..21 {
        let r = direct
            .http
            .get(direct.url("/callbacks"))
            .bearer_auth(format!("guess-{i}"))
            .header("x-forwarded-for", format!("192.0.2.{i}"))
            .send()
            .unwrap();
        if i == 20 {
            assert_eq!(r.status(), 429, "one peer, whatever the header says");
        }
    }
}
