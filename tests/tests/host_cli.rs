//! The host's command line: clear messages and a non-zero exit when it cannot serve.

use std::process::Command;

use revisit_tests::*;

fn host() -> Command {
    let bin = project_root().join("target/release/revisit-host");
    let mut c = Command::new(bin);
    c.current_dir(project_root());
    c
}

/// Run `up` and expect it to fail with a message containing `needle`.
fn fails_with(mut cmd: Command, needle: &str) {
    let out = cmd.output().expect("run revisit-host");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
}

fn revisit_env(cmd: &mut Command) {
    for (k, v) in HostConfig::revisit(9).env {
        cmd.env(k, v);
    }
}

#[test]
fn a_required_variable_without_a_value_is_named() {
    let dir = TempDir::new("cli");
    let mut cmd = host();
    cmd.args([
        "up",
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--data-dir",
    ])
    .arg(&dir.0);
    revisit_env(&mut cmd);
    cmd.env_remove("SPIN_VARIABLE_ADMIN_TOKEN");
    fails_with(cmd, "SPIN_VARIABLE_ADMIN_TOKEN");
}

#[test]
fn an_empty_secret_stops_the_host_at_start() {
    let dir = TempDir::new("cli");
    let mut cmd = host();
    cmd.args([
        "up",
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--data-dir",
    ])
    .arg(&dir.0);
    revisit_env(&mut cmd);
    cmd.env("SPIN_VARIABLE_LINK_SECRET", "");
    fails_with(
        cmd,
        "the secret variable `link_secret` is empty: set SPIN_VARIABLE_LINK_SECRET",
    );
}

#[test]
fn a_bad_manifest_is_refused_with_the_reason() {
    let dir = TempDir::new("cli");
    let manifest = dir.0.join("spin.toml");
    std::fs::write(&manifest, "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/a\"\ncomponent = \"missing\"\n").unwrap();
    let mut cmd = host();
    cmd.arg("up")
        .arg("--from")
        .arg(&manifest)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())]);
    fails_with(cmd, "component `missing`, which is not defined");

    std::fs::write(&manifest, "this is not toml = = =").unwrap();
    let mut cmd = host();
    cmd.arg("up").arg("--from").arg(&manifest);
    fails_with(cmd, "invalid manifest");
}

#[test]
fn a_missing_wasm_says_to_build() {
    let dir = TempDir::new("cli");
    let manifest = dir.0.join("spin.toml");
    std::fs::write(
        &manifest,
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/a\"\ncomponent = \"a\"\n[component.a]\nsource = \"nope.wasm\"\n",
    )
    .unwrap();
    let mut cmd = host();
    cmd.arg("up")
        .arg("--from")
        .arg(&manifest)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(&dir.0);
    fails_with(cmd, "revisit-host build");
}

#[test]
fn a_port_in_use_is_reported() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = TempDir::new("cli");
    let mut cmd = host();
    cmd.args(["up", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&dir.0);
    revisit_env(&mut cmd);
    fails_with(cmd, "already in use");
}

#[test]
fn the_clock_endpoint_exists_only_in_test_mode() {
    let sender = Sender::start();
    let dir = TempDir::new("cli");
    let log = dir.0.join("host.log");
    let mut cmd = host();
    cmd.args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.0.join("store"));
    cmd.stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in HostConfig::revisit(sender.port).env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let addr = serving_address(&log, &mut child, std::time::Duration::from_secs(60))
        .unwrap_or_else(|why| panic!("the host did not come up: {why}"));
    let client = reqwest::blocking::Client::new();
    let url = format!("http://{addr}/.well-known/revisit-host/clock");
    let mut status = None;
    for _ in 0..600 {
        if let Ok(r) = client
            .put(&url)
            .body("{\"now\":\"2030-01-01T00:00:00Z\"}")
            .send()
        {
            status = Some(r.status().as_u16());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        status,
        Some(404),
        "without --test-clock the clock cannot be set"
    );
}
