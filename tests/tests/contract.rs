//! The HTTP contract: `openapi.yaml` checked against the running app by
//! schemathesis (from PyPI; `./run test` installs it into
//! `target/schemathesis`). Generated requests, valid and invalid, must never
//! get a 5xx, an undocumented status or content type, or a body that breaks
//! the schema.

use std::path::PathBuf;
use std::process::Command;

use revisit_tests::*;

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/schemathesis/bin/schemathesis")
        });
    assert!(
        path.exists(),
        "schemathesis is not installed at {}: `./run test` installs it \
         (python3 -m venv target/schemathesis && target/schemathesis/bin/pip install schemathesis), \
         or point SCHEMATHESIS at one",
        path.display()
    );
    path
}

#[test]
fn the_running_app_keeps_to_openapi_yaml() {
    let st = schemathesis();
    let sender = Sender::start();
    let host = Host::start(HostConfig::revisit(sender.port));
    let seeded = seed(&host, &sender);
    let config = std::env::temp_dir().join(format!("revisit-contract-{}.toml", std::process::id()));
    std::fs::write(&config, seeded).unwrap();
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
    let examples = std::env::var("CONTRACT_EXAMPLES").unwrap_or_else(|_| "25".into());
    let out = Command::new(st)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(&spec)
        .args(["--url", &host.url("")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        // One worker: with two, hypothesis's lambda-source cache (shared by the
        // threads) once broke a run with "AST constructor recursion depth
        // mismatch", a crash of the tool's own, not a contract break.
        .args(["--max-examples", &examples, "--seed", "1", "--workers", "1"])
        .args(["--request-timeout", "10", "--no-color", "--suppress-health-check", "all"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--generation-database", "none"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("schemathesis runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found contract breaks:\n{text}"
    );
    eprintln!("{text}");
    assert!(text.contains("passed"), "{text}");
}

/// Real data for the identifiers in paths (a survey link, a survey, a
/// callback task, a customer), so generated requests reach the handlers
/// behind them rather than stopping at a 404: a schemathesis config file.
fn seed(host: &Host, sender: &Sender) -> String {
    use serde_json::json;
    host.set_clock("2026-12-01T10:00:00+01:00");
    let delivered = event_body(
        "contract-1",
        "order.delivered",
        "2026-12-01T10:00:00+01:00",
        customer("contract-c1", "Europe/Berlin"),
        json!({"category": "high_value"}),
    );
    let (status, planned) = Host::json(host.post_event(&delivered));
    assert_eq!(status, 202, "{planned}");
    let complaint = event_body(
        "contract-2",
        "complaint.opened",
        "2026-12-01T10:05:00+01:00",
        customer("contract-c2", "Europe/Berlin"),
        json!({"topic": "delivery_time"}),
    );
    assert_eq!(host.post_event(&complaint).status(), 202);
    host.set_clock("2026-12-04T10:00:00+01:00");
    Host::json(host.admin_post("/issuer/tick", ""));
    let link = link_path(sender.messages()[0]["link"].as_str().unwrap());
    let tasks = host.callbacks("");
    assert!(!tasks.is_empty(), "the complaint made a callback task");
    format!(
        "[parameters]\n\
         token = \"{}\"\n\
         survey_id = \"{}\"\n\
         task_id = \"{}\"\n\
         customer_id = \"contract-c1\"\n",
        link.trim_start_matches("/s/"),
        planned["surveys"][0]["survey_id"].as_str().unwrap(),
        tasks[0]["task_id"].as_str().unwrap(),
    )
}
