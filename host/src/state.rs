//! What one request's wasmtime `Store` holds, and the outbound-HTTP policy
//! (`allowed_outbound_hosts` and `*.spin.internal` chaining) applied to it.

use std::future::Future;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::faults::Faults;
use crate::kv::KvStore;
use crate::manifest::ComponentConfig;
use crate::server::App;

pub struct RequestState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub hooks: OutboundHooks,
    pub component: Arc<ComponentConfig>,
    pub kv: Arc<KvStore>,
    pub faults: Faults,
    /// Key-value operations made by this request (reported in the host's stats).
    pub kv_ops: u64,
    /// The instance's memory limit (`Limits::max_instance_memory`), and how
    /// often its memory grew.
    pub limits: InstanceLimits,
}

/// Wasmtime's `StoreLimits` (every call passed on), counting the memory
/// grows past instantiation:
/// each one remaps pages the next instance in the pool slot gives back
/// (reported in the host's stats, read by the bench).
pub struct InstanceLimits {
    limits: wasmtime::StoreLimits,
    pub memory_grows: u64,
}

impl InstanceLimits {
    /// At most `max_memory` bytes of linear memory per instance.
    pub fn new(max_memory: usize) -> InstanceLimits {
        InstanceLimits {
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(max_memory)
                .build(),
            memory_grows: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for InstanceLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A memory's creation is reported as growing from 0.
        if current > 0 {
            self.memory_grows += 1;
        }
        self.limits.memory_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Decides where a component's outgoing request goes.
pub struct OutboundHooks {
    pub app: Arc<App>,
    pub component: Arc<ComponentConfig>,
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

/// The suffix Spin gives to component names for in-process service chaining.
const INTERNAL_SUFFIX: &str = ".spin.internal";

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        if !self.component.allowed_hosts.allows(&scheme, &host, port) {
            eprintln!(
                "component `{}` tried to send a request to {scheme}://{host}:{port}, which is not in its \
                 allowed_outbound_hosts: request denied",
                self.component.id
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        if let Some(target) = host.strip_suffix(INTERNAL_SUFFIX) {
            let app = self.app.clone();
            let target = target.to_string();
            return Box::new(async move {
                let response = app
                    .serve_chained(&target, request)
                    .await
                    .map_err(|e| Error::InternalError(Some(format!("{e:#}"))))?;
                let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                    Box::new(async { Ok(()) });
                Ok((response, done))
            });
        }
        // No outbound wait longer than the host allows, whatever the component asked.
        let cap = self.app.limits.outbound_timeout;
        let capped = |asked: Option<std::time::Duration>| Some(asked.map_or(cap, |a| a.min(cap)));
        let options = Some(RequestOptions {
            connect_timeout: capped(options.as_ref().and_then(|o| o.connect_timeout)),
            first_byte_timeout: capped(options.as_ref().and_then(|o| o.first_byte_timeout)),
            between_bytes_timeout: capped(options.as_ref().and_then(|o| o.between_bytes_timeout)),
        });
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(io);
            Ok((response.map(BodyExt::boxed_unsync), io))
        })
    }
}
