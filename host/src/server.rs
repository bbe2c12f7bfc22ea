//! The HTTP server: routes each request to its component, runs it on a fresh
//! instance of a pre-instantiated component (`wasi:http/incoming-handler`), and
//! handles the host-only test endpoints.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

use crate::clock::ShiftableClock;
use crate::faults::Faults;
use crate::kv::KvStore;
use crate::manifest::{ComponentConfig, Manifest};
use crate::router::{RouteMatch, Router};
use crate::runtime_config::RuntimeConfig;
use crate::state::{OutboundHooks, RequestState};

/// The host-only control endpoints (present only in test mode).
pub const CONTROL_PREFIX: &str = "/.well-known/revisit-host/";

#[derive(Default)]
struct ComponentStats {
    requests: AtomicU64,
    kv_ops: AtomicU64,
    instantiate_nanos: AtomicU64,
    memory_grows: AtomicU64,
}

struct LoadedComponent {
    config: Arc<ComponentConfig>,
    pre: ProxyPre<RequestState>,
    stats: ComponentStats,
}

pub struct App {
    components: HashMap<String, LoadedComponent>,
    router: Router,
    kv: Arc<KvStore>,
    clock: ShiftableClock,
    faults: Faults,
    test_mode: bool,
    pub limits: Limits,
}

/// Instances come from a pool, as under `spin up`: a fresh instance per
/// request then costs no `mmap`/`munmap` (and no TLB shoot-down on every
/// core), and its memory pages are reset in place. The limits follow Spin's
/// defaults (`spin-core`), for 1,000 concurrent instances; like Spin, the
/// host falls back to allocating on demand where the address space is too
/// small for the pool (some 39-bit systems), and `REVISIT_HOST_POOLING=0`
/// turns the pool off.
///
/// Where the kernel has `PAGEMAP_SCAN` (Linux 6.7+), a slot's reset touches
/// only the pages the request wrote; without it wasmtime zeroes or copies
/// back the whole kept-resident 2 MiB after every request, which was 13% of
/// an answer's CPU (the bench: 2,250 KiB reset per answer before, 65 KiB
/// after). It changes how memory is reset, not what a request sees: the
/// `fresh` probe test checks that each request still gets memory as new.
fn pooling_allocation() -> Option<wasmtime::PoolingAllocationConfig> {
    const MAX_INSTANCES: u32 = 1_000;
    const MB: usize = 1 << 20;
    match std::env::var("REVISIT_HOST_POOLING").as_deref() {
        Ok("0") => return None,
        Ok("1") => {}
        _ if !address_space_fits_pool() => {
            eprintln!("note: too little address space for an instance pool; instances are allocated on demand");
            return None;
        }
        _ => {}
    }
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_memories(MAX_INSTANCES)
        .total_tables(2 * MAX_INSTANCES)
        .total_stacks(MAX_INSTANCES)
        .total_core_instances(4 * MAX_INSTANCES)
        .table_elements(100_000)
        .max_component_instance_size(10 * MB)
        .max_core_instance_size(10 * MB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(2 * MB)
        .table_keep_resident(MB / 2)
        .pagemap_scan(wasmtime::Enabled::Auto);
    Some(pool)
}

/// Whether 2^42 bytes of address space can be reserved (Spin's own probe:
/// the pool reserves about 6 GiB of it per linear memory).
fn address_space_fits_pool() -> bool {
    const BITS: u32 = 42;
    let mut config = Config::new();
    config.wasm_memory64(true);
    config.memory_reservation(1 << BITS);
    let Ok(engine) = Engine::new(&config) else {
        return false;
    };
    let mut store = Store::new(&engine, ());
    let ty = wasmtime::MemoryType::new64(0, Some(1 << (BITS - 16)));
    wasmtime::Memory::new(&mut store, ty).is_ok()
}

pub struct AppOptions {
    pub data_dir: std::path::PathBuf,
    /// Where each key-value store lives (`--runtime-config-file`).
    pub runtime_config: RuntimeConfig,
    pub test_mode: bool,
    pub limits: Limits,
}

/// What the host allows a client or a component, whatever the app.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest an outbound request may take to connect, to its first
    /// response byte, and between bytes (wasi-http's own default is 600 s).
    pub outbound_timeout: std::time::Duration,
    /// The largest request body a component is handed (announced or streamed).
    pub max_body_bytes: u64,
    /// How long one request may run in a component, its own code and the
    /// host calls it waits on together; past it the instance is stopped.
    pub request_deadline: std::time::Duration,
    /// The most linear memory one instance may have.
    pub max_instance_memory: usize,
}

/// How often the engine's epoch advances: the granularity of the deadline.
const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

impl App {
    pub fn load(manifest: &Manifest, options: &AppOptions) -> Result<Arc<App>> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Guest code is interrupted at its deadline (`Limits::request_deadline`).
        config.epoch_interruption(true);
        // `REVISIT_HOST_PERFMAP=1`: name the compiled guest functions for
        // `perf` (/tmp/perf-<pid>.map), as `wasmtime serve --profile=perfmap`.
        if std::env::var_os("REVISIT_HOST_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if let Some(pooling) = pooling_allocation() {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
        }
        // Wasmtime's own compiled-code cache (~/.cache/wasmtime): a restart, or a
        // second host on the same machine, does not compile the same wasm again.
        match wasmtime::Cache::from_file(None) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => eprintln!(
                "warning: no compiled-code cache ({e:#}); every start compiles the components"
            ),
        }
        let engine = Engine::new(&config)?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;

        let mut linker = Linker::<RequestState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        crate::bindings::HostServices::add_to_linker::<_, HasSelf<RequestState>>(
            &mut linker,
            |s| s,
        )?;

        options.runtime_config.check_grants(manifest)?;
        let mut components = HashMap::new();
        for (id, c) in &manifest.components {
            if !c.source.exists() {
                bail!(
                    "component `{id}`: its source {} does not exist; run `revisit-host build` \
                     (or `revisit-host up --build`) first",
                    c.source.display()
                );
            }
            let component = Component::from_file(&engine, &c.source)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("component `{id}`: cannot compile {}", c.source.display())
                })?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("component `{id}` needs an import this host does not provide")
                })?;
            let pre = ProxyPre::new(pre).map_err(anyhow::Error::from).with_context(|| {
                format!("component `{id}` does not export wasi:http/incoming-handler (is it an HTTP component?)")
            })?;
            components.insert(
                id.clone(),
                LoadedComponent {
                    config: Arc::new(c.clone()),
                    pre,
                    stats: ComponentStats::default(),
                },
            );
        }
        let router = Router::new(
            manifest
                .triggers
                .iter()
                .filter_map(|t| t.route.clone().map(|r| (r, t.component.clone())))
                .collect(),
        );
        let kv = Arc::new(KvStore::open(
            &options.data_dir.join("sqlite_key_value.db"),
            &options.runtime_config,
        )?);
        Ok(Arc::new(App {
            components,
            router,
            kv,
            clock: ShiftableClock::default(),
            faults: Faults::default(),
            test_mode: options.test_mode,
            limits: options.limits,
        }))
    }

    /// Serve one request from the listener.
    pub async fn handle(
        self: Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
        client: SocketAddr,
        local: SocketAddr,
    ) -> Result<hyper::Response<HyperOutgoingBody>> {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        if self.test_mode && path.starts_with(CONTROL_PREFIX) {
            let resp = self.control(req).await;
            eprintln!(
                "{method} {path} -> host {} {:.1}ms",
                resp.status().as_u16(),
                ms(start)
            );
            return Ok(resp);
        }
        // Logs name the route as the manifest declares it, never the path:
        // paths carry tokens and ids (`/s/:token`, `/customers/:customer_id`).
        let Some((component, matched)) = self.router.route(&path) else {
            eprintln!("{method} (no route) 404 {:.1}ms", ms(start));
            return Ok(plain(404, "Not Found"));
        };
        let component = component.to_string();
        let path = matched.raw_route.clone();
        if let Some(announced) = content_length(&req).filter(|n| *n > self.limits.max_body_bytes) {
            eprintln!(
                "{method} {path} -> {component} 413 (body of {announced} bytes refused unread)"
            );
            let limit = self.limits.max_body_bytes;
            let why = format!(
                "Payload Too Large: the body is {announced} bytes, over this host's limit of {limit} (--max-body-bytes)"
            );
            return Ok(plain(413, &why));
        }
        // A body streamed without a length is cut at the same limit: the
        // component's read of it fails past it.
        let max = self.limits.max_body_bytes;
        let req = req.map(|b| {
            http_body_util::Limited::new(b, max as usize).map_err(move |e| {
                match e.downcast::<hyper::Error>() {
                    Ok(h) => wasmtime_wasi_http::Error::Hyper(*h),
                    Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max)),
                }
            })
        });
        let req = add_spin_headers(req, &matched, client, local);
        let resp = match self.serve_component(&component, req).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("component `{component}` failed: {e:#}");
                plain(500, "Internal Server Error")
            }
        };
        eprintln!(
            "{method} {path} -> {component} {} {:.1}ms",
            resp.status().as_u16(),
            ms(start)
        );
        Ok(resp)
    }

    /// Serve a request a component sent to `http://<target>.spin.internal`.
    pub fn serve_chained(
        self: Arc<Self>,
        target: &str,
        req: http::Request<wasmtime_wasi_http::WasiBody>,
    ) -> Pin<Box<dyn Future<Output = Result<hyper::Response<HyperOutgoingBody>>> + Send>> {
        let target = target.to_string();
        Box::pin(async move {
            if !self.components.contains_key(&target) {
                bail!("no component `{target}` in this app (service chaining)");
            }
            let start = Instant::now();
            let path = req.uri().path().to_string();
            let method = req.method().clone();
            let (mut parts, body) = req.into_parts();
            set_chained_headers(&mut parts.headers, &parts.uri);
            let resp = self
                .serve_component(&target, http::Request::from_parts(parts, body))
                .await?;
            eprintln!(
                "{method} {path} -> {target} (chained) {} {:.1}ms",
                resp.status().as_u16(),
                ms(start)
            );
            Ok(resp)
        })
    }

    fn serve_component<B>(
        self: &Arc<Self>,
        id: &str,
        req: hyper::Request<B>,
    ) -> Pin<Box<dyn Future<Output = Result<hyper::Response<HyperOutgoingBody>>> + Send>>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let app = self.clone();
        let id = id.to_string();
        Box::pin(async move {
            let loaded = app
                .components
                .get(&id)
                .ok_or_else(|| anyhow!("no component `{id}`"))?;
            let mut wasi = WasiCtx::builder();
            wasi.inherit_stderr()
                .inherit_stdout()
                .wall_clock(app.clock.clone());
            for (k, v) in &loaded.config.environment {
                wasi.env(k, v);
            }
            // Mounted files are small and read-only (in the page cache): read
            // them on this thread, as the store's calls are, rather than
            // hopping to a blocking pool for every open and read.
            wasi.allow_blocking_current_thread(true);
            for mount in &loaded.config.files {
                wasi.preopened_dir(
                    &mount.source,
                    &mount.destination,
                    wasmtime_wasi::FsPerms::ReadOnly,
                )?;
            }
            let state = RequestState {
                wasi: wasi.build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                hooks: OutboundHooks {
                    app: app.clone(),
                    component: loaded.config.clone(),
                },
                component: loaded.config.clone(),
                kv: app.kv.clone(),
                faults: app.faults.clone(),
                kv_ops: 0,
                limits: crate::state::InstanceLimits::new(app.limits.max_instance_memory),
            };
            let mut store = Store::new(loaded.pre.engine(), state);
            store.limiter(|s| &mut s.limits);
            let deadline = app.limits.request_deadline;
            store.set_epoch_deadline((deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64);
            store.epoch_deadline_trap();
            let (sender, receiver) = tokio::sync::oneshot::channel();
            let req = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, req)?;
            let out = store.data_mut().http().new_response_outparam(sender)?;
            let pre = loaded.pre.clone();
            let task_app = app.clone();
            let task_id = id.clone();
            let task = tokio::task::spawn(async move {
                let t0 = Instant::now();
                let proxy = pre.instantiate_async(&mut store).await?;
                let stats = &task_app.components[&task_id].stats;
                stats
                    .instantiate_nanos
                    .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                let result = proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await;
                stats.requests.fetch_add(1, Ordering::Relaxed);
                stats
                    .kv_ops
                    .fetch_add(store.data().kv_ops, Ordering::Relaxed);
                stats
                    .memory_grows
                    .fetch_add(store.data().limits.memory_grows, Ordering::Relaxed);
                result
            });
            // Guest code traps at its epoch deadline; a request stuck in a
            // host call (a store, an outbound request) is dropped here.
            let receiver = match tokio::time::timeout(deadline + EPOCH_TICK * 10, receiver).await {
                Ok(r) => r,
                Err(_) => {
                    task.abort();
                    bail!("component `{id}` ran past its deadline of {deadline:?} (--request-deadline) and was stopped");
                }
            };
            match receiver {
                Ok(Ok(resp)) => Ok(resp),
                Ok(Err(e)) => Err(anyhow!("component `{id}` answered with an error: {e:?}")),
                Err(_) => {
                    let e = match task.await {
                        Ok(Ok(())) => anyhow!("the component never set a response"),
                        Ok(Err(e)) => anyhow::Error::from(e),
                        Err(e) => e.into(),
                    };
                    let interrupted = e.chain().any(|c| {
                        c.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt)
                    });
                    if interrupted {
                        bail!("component `{id}` ran past its deadline of {deadline:?} (--request-deadline) and was stopped");
                    }
                    Err(e.context(format!("component `{id}` trapped before it answered")))
                }
            }
        })
    }

    /// Host-only endpoints for tests: the clock, injected store faults, stats.
    async fn control(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<HyperOutgoingBody> {
        let what = req.uri().path()[CONTROL_PREFIX.len()..].to_string();
        let method = req.method().clone();
        let body = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return json(
                    400,
                    &serde_json::json!({"error": format!("cannot read body: {e}")}),
                )
            }
        };
        let parsed = || serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
        match (method.as_str(), what.as_str()) {
            ("GET", "clock") => json(
                200,
                &serde_json::json!({"now": rfc3339(self.clock.now_nanos())}),
            ),
            ("PUT", "clock") => {
                let v = parsed();
                let Some(now) = v.get("now").and_then(|n| n.as_str()) else {
                    return json(
                        400,
                        &serde_json::json!({"error": "expected {\"now\": \"<RFC 3339>\"}"}),
                    );
                };
                match chrono::DateTime::parse_from_rfc3339(now) {
                    Ok(t) => {
                        let nanos = t.timestamp_nanos_opt().unwrap_or_default();
                        self.clock.set_now(nanos);
                        json(
                            200,
                            &serde_json::json!({"now": rfc3339(self.clock.now_nanos())}),
                        )
                    }
                    Err(e) => json(
                        400,
                        &serde_json::json!({"error": format!("`now` is not RFC 3339: {e}")}),
                    ),
                }
            }
            ("PUT", "faults") => {
                // Let `after_kv_ops` operations through, then fail `fail_next_kv_ops`.
                let v = parsed();
                let n = v
                    .get("fail_next_kv_ops")
                    .and_then(|n| n.as_u64())
                    .unwrap_or(0);
                let skip = v.get("after_kv_ops").and_then(|n| n.as_u64()).unwrap_or(0);
                self.faults.fail(skip, n);
                json(
                    200,
                    &serde_json::json!({"fail_next_kv_ops": n, "after_kv_ops": skip}),
                )
            }
            ("GET", "stats") => {
                let mut out = BTreeMap::new();
                for (id, c) in &self.components {
                    out.insert(
                        id.clone(),
                        serde_json::json!({
                            "requests": c.stats.requests.load(Ordering::Relaxed),
                            "kv_ops": c.stats.kv_ops.load(Ordering::Relaxed),
                            "instantiate_nanos": c.stats.instantiate_nanos.load(Ordering::Relaxed),
                            "memory_grows": c.stats.memory_grows.load(Ordering::Relaxed),
                        }),
                    );
                }
                json(200, &serde_json::json!(out))
            }
            _ => json(
                404,
                &serde_json::json!({"error": "unknown host control endpoint"}),
            ),
        }
    }
}

fn add_spin_headers<B>(
    req: hyper::Request<B>,
    matched: &RouteMatch,
    client: SocketAddr,
    local: SocketAddr,
) -> hyper::Request<B> {
    let (mut parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| local.to_string());
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/".into());
    let full_url = format!("http://{host}{path_and_query}");
    if parts.uri.authority().is_none() {
        if let Ok(uri) = full_url.parse() {
            parts.uri = uri;
        }
    }
    let h = &mut parts.headers;
    set_header(h, "spin-full-url", &full_url);
    set_header(h, "spin-path-info", &matched.path_info);
    set_header(h, "spin-matched-route", &matched.raw_route);
    set_header(h, "spin-raw-component-route", &matched.raw_route);
    set_header(h, "spin-component-route", &matched.component_route);
    set_header(h, "spin-base-path", "/");
    set_header(h, "spin-client-addr", &client.to_string());
    for (name, value) in &matched.params {
        // Spin writes the header name as `SPIN_PATH_MATCH_<NAME>`, then turns
        // `_` into `-` and lowercases it (`trigger-http`'s `prepare_header_key`).
        set_header(h, &path_match_header(name), value);
    }
    hyper::Request::from_parts(parts, body)
}

/// The `spin-*` headers of a request that came by service chaining, as Spin
/// sets them (`RouteMatch::synthetic` in Spin's `crates/routes`, used by its
/// `trigger-http` outbound interceptor): matched as if against the wildcard
/// route `/...`, the whole path (no query) as path info, client `0.0.0.0:0`,
/// and, the `*.spin.internal` `Host` header being stripped, `localhost` as the
/// host of the full URL.
fn set_chained_headers(h: &mut http::HeaderMap, uri: &http::Uri) {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    set_header(
        h,
        "spin-full-url",
        &format!("http://localhost{path_and_query}"),
    );
    set_header(h, "spin-path-info", uri.path());
    set_header(h, "spin-matched-route", "/...");
    set_header(h, "spin-raw-component-route", "/...");
    set_header(h, "spin-component-route", "");
    set_header(h, "spin-base-path", "/");
    set_header(h, "spin-client-addr", "0.0.0.0:0");
}

/// The header Spin passes a `:name` route segment in.
fn path_match_header(name: &str) -> String {
    format!("spin-path-match-{name}")
        .replace('_', "-")
        .to_ascii_lowercase()
}

/// The body length a request announces (`Content-Length`), if it does.
fn content_length<B>(req: &hyper::Request<B>) -> Option<u64> {
    req.headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn set_header(h: &mut http::HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        http::HeaderName::try_from(name),
        http::HeaderValue::try_from(value),
    ) {
        h.insert(n, v);
    }
}

fn body(bytes: impl Into<Bytes>) -> HyperOutgoingBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn plain(status: u16, text: &str) -> hyper::Response<HyperOutgoingBody> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body(text.to_string()))
        .expect("static response")
}

fn json(status: u16, value: &serde_json::Value) -> hyper::Response<HyperOutgoingBody> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body(value.to_string()))
        .expect("json response")
}

fn rfc3339(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos).to_rfc3339()
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}
