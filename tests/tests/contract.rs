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
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
    let examples = std::env::var("CONTRACT_EXAMPLES").unwrap_or_else(|_| "25".into());
    let out = Command::new(st)
        .arg("run")
        .arg(&spec)
        .args(["--url", &host.url("")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args(["--max-examples", &examples, "--seed", "1", "--workers", "2"])
        .args(["--request-timeout", "10", "--no-color", "--suppress-health-check", "all"])
        .args(["--phases", "examples,coverage,fuzzing"])
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
