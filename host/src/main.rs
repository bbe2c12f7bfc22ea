//! `revisit-host`: a small host that runs a Spin app (the `spin.toml` at the
//! project root) on wasmtime, with a SQLite-backed `wasi:keyvalue` store.
//!
//! It knows nothing of the app it serves: it would run any Spin HTTP app that
//! uses only the interfaces it implements (WASI 0.2, `wasi:http`,
//! `wasi:keyvalue` draft2, Spin variables / `wasi:config`).

mod bindings;
mod clock;
mod faults;
mod kv;
mod kv_redis;
mod manifest;
mod outbound;
mod router;
mod runtime_config;
mod server;
mod state;
mod variables;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;

use crate::manifest::Manifest;
use crate::runtime_config::RuntimeConfig;
use crate::server::{App, AppOptions, Limits, CONTROL_PREFIX};

#[derive(Parser)]
#[command(
    name = "revisit-host",
    version,
    about = "Serve a Spin app (spin.toml) on wasmtime with a SQLite key-value store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run each component's `[component.<id>.build] command` from the manifest.
    Build {
        /// The manifest to read.
        #[arg(short = 'f', long = "from", default_value = "spin.toml")]
        manifest: PathBuf,
    },
    /// Serve the app.
    Up {
        #[arg(short = 'f', long = "from", default_value = "spin.toml")]
        manifest: PathBuf,
        /// Build the components first.
        #[arg(long)]
        build: bool,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Where the key-value database lives.
        #[arg(long, default_value = ".revisit")]
        data_dir: PathBuf,
        /// Spin's runtime config: where key-value stores live
        /// (`[key_value_store.<label>]`, type "spin" or "redis").
        #[arg(long)]
        runtime_config_file: Option<PathBuf>,
        /// Enable the host-only test endpoints under /.well-known/revisit-host/
        /// (set the wall clock components see, inject key-value faults, read stats).
        #[arg(long)]
        test_clock: bool,
        /// Longest wait, in seconds, for an outbound request to connect, for its
        /// first response byte, and between its bytes (a component may ask for less).
        #[arg(long, default_value_t = 10)]
        outbound_timeout: u64,
        /// Largest request body a component is handed: a request that announces
        /// more (`Content-Length`) is answered 413 before any component runs.
        /// A guard against bodies no app wants; an app's own, smaller limit
        /// still answers in the app's own words.
        #[arg(long, default_value_t = 1024 * 1024)]
        max_body_bytes: u64,
        /// Longest a request may run in a component, in seconds, before the
        /// instance is stopped (500) and the host serves on.
        #[arg(long, default_value_t = 120)]
        request_deadline: u64,
        /// Most linear memory one instance may grow to, in MiB.
        #[arg(long, default_value_t = 256)]
        max_instance_memory_mb: usize,
        /// Longest a client may take to send a request's headers, in seconds
        /// (an idle kept-alive connection is closed after it too).
        #[arg(long, default_value_t = 30)]
        header_timeout: u64,
        /// Most connections served at once; more wait in the listen queue.
        #[arg(long, default_value_t = 4096)]
        max_connections: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build { manifest } => build(&manifest),
        Command::Up {
            manifest,
            build: do_build,
            listen,
            data_dir,
            runtime_config_file,
            test_clock,
            outbound_timeout,
            max_body_bytes,
            request_deadline,
            max_instance_memory_mb,
            header_timeout,
            max_connections,
        } => (|| {
            if do_build {
                build(&manifest)?;
            }
            let runtime_config = match &runtime_config_file {
                Some(path) => RuntimeConfig::load(path)?,
                None => RuntimeConfig::default(),
            };
            let options = AppOptions {
                data_dir,
                runtime_config,
                test_mode: test_clock,
                limits: Limits {
                    outbound_timeout: std::time::Duration::from_secs(outbound_timeout),
                    max_body_bytes,
                    request_deadline: std::time::Duration::from_secs(request_deadline),
                    max_instance_memory: max_instance_memory_mb << 20,
                },
            };
            let connections = ConnectionLimits {
                header_timeout: std::time::Duration::from_secs(header_timeout),
                max_connections: max_connections.max(1),
            };
            up(load(&manifest)?, listen, options, connections)
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> Result<Manifest> {
    Manifest::load(path, &|name| std::env::var(name).ok())
}

fn build(manifest: &Path) -> Result<()> {
    for (id, step) in Manifest::load_build_steps(manifest)? {
        let Some(step) = step else {
            eprintln!("component `{id}`: no build command, skipped");
            continue;
        };
        eprintln!("building component `{id}`: {}", step.command);
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&step.command)
            .current_dir(&step.workdir)
            .status()
            .with_context(|| format!("cannot run the build command of `{id}`"))?;
        if !status.success() {
            bail!("the build command of component `{id}` failed ({status})");
        }
    }
    Ok(())
}

/// What a client's connection may take.
struct ConnectionLimits {
    header_timeout: std::time::Duration,
    max_connections: usize,
}

/// How long a stop (SIGTERM, Ctrl-C) waits for requests in flight.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn up(
    manifest: Manifest,
    listen: SocketAddr,
    options: AppOptions,
    limits: ConnectionLimits,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                bail!("{listen} is already in use: stop what runs there or pass --listen with another address")
            }
            Err(e) => return Err(e).with_context(|| format!("cannot listen on {listen}")),
        };
        let app = App::load(&manifest, &options)?;
        let local = listener.local_addr()?;
        eprintln!("Serving http://{local} (app `{}`, data in {})", manifest.name, options.data_dir.display());
        for (label, store) in &options.runtime_config.key_value_stores {
            if let runtime_config::StoreConfig::Redis { url } = store {
                eprintln!("Key-value store `{label}`: Redis at {}", kv_redis::redacted(url));
            }
        }
        eprintln!("Available Routes:");
        for t in &manifest.triggers {
            match &t.route {
                Some(r) => eprintln!("  {}: http://{local}{}", t.component, r.as_str()),
                None => eprintln!("  {}: (private, http://{}.spin.internal)", t.component, t.component),
            }
        }
        if options.test_mode {
            eprintln!("Test mode: host control endpoints under http://{local}{CONTROL_PREFIX}");
        }
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
        // Told to every connection at a stop: finish the request in flight, then close.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            // A connection slot first: past the cap, clients wait in the listen queue.
            let slot = slots.clone().acquire_owned().await?;
            let (stream, client) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Too many open files, a connection reset before accept…: the
                        // host survives, and tries again a little later.
                        eprintln!("accept failed: {e}; retrying in 100 ms");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
            };
            let app = app.clone();
            let service = hyper::service::service_fn(move |req| app.clone().handle(req, client, local));
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let mut conn = std::pin::pin!(conn);
                let result = tokio::select! {
                    r = conn.as_mut() => r,
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = result {
                    if !e.is_incomplete_message() && !e.is_timeout() {
                        eprintln!("connection from {client}: {e}");
                    }
                }
                drop(slot);
            });
        }
        // Stop: no new connections; requests in flight finish, idle ones close.
        drop(listener);
        let _ = stop_tx.send(true);
        eprintln!("shutting down: waiting up to {DRAIN_TIMEOUT:?} for requests in flight");
        let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
        match tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(all)).await {
            Ok(_) => eprintln!("stopped: every request in flight was answered"),
            Err(_) => eprintln!("stopped: some requests were still running after {DRAIN_TIMEOUT:?}"),
        }
        Ok(())
    })
}
