//! The imperative shell shared by the four components: `wasi:keyvalue` storage,
//! Spin variables, and HTTP glue (auth, body limits, JSON/HTML responses).

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};

use crate::error::{ApiError, MAX_BODY_BYTES};
use crate::signing::bearer_matches;
use crate::storage::{HostKv, Portable, StoreError, StoreResult};
use crate::survey_policy_or_default;

/// The host's `default` key-value store, exactly as `wasi:keyvalue` gives it
/// (Spin's quirks included); the app uses it through [`SpinStore`].
pub struct SpinKv {
    bucket: store::Bucket,
}

/// [`crate::storage::Storage`] over the host's `default` store, exact on the
/// embedded host and on each of Spin's stores (see [`Portable`]).
pub type SpinStore = Portable<SpinKv>;

impl Portable<SpinKv> {
    pub fn open() -> Result<SpinStore, ApiError> {
        store::open("default")
            .map(|bucket| Portable::over(SpinKv { bucket }))
            .map_err(|e| {
                ApiError::unavailable(format!(
                    "cannot open the key-value store `default` ({e:?}); is `key_value_stores = [\"default\"]` set for this component?"
                ))
            })
    }
}

fn err(e: store::Error) -> StoreError {
    StoreError(match e {
        store::Error::NoSuchStore => "no such store".into(),
        store::Error::AccessDenied => "access denied".into(),
        store::Error::Other(m) => m,
    })
}

impl HostKv for SpinKv {
    type Cas = atomics::Cas;

    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.bucket.get(key).map_err(err)
    }

    fn set(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.bucket.set(key, value).map_err(err)
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        self.bucket.delete(key).map_err(err)
    }

    fn get_many(&self, keys: &[String]) -> StoreResult<Vec<(String, Option<Vec<u8>>)>> {
        if keys.is_empty() {
            // Nothing to ask the host (a first-time customer's earlier tasks).
            return Ok(Vec::new());
        }
        batch::get_many(&self.bucket, keys).map_err(err)
    }

    fn increment(&self, key: &str, delta: i64) -> StoreResult<i64> {
        atomics::increment(&self.bucket, key, delta).map_err(err)
    }

    fn cas_begin(&self, key: &str) -> StoreResult<(Option<Vec<u8>>, atomics::Cas)> {
        let cas = atomics::Cas::new(&self.bucket, key).map_err(err)?;
        let current = cas.current().map_err(err)?;
        Ok((current, cas))
    }

    /// `false` for Spin's `cas-failed`, which its Redis store answers even
    /// when the value was stored: [`Portable`] reads back to know.
    fn cas_swap(&self, cas: atomics::Cas, value: &[u8]) -> StoreResult<bool> {
        match atomics::swap(cas, value) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(err(e)),
        }
    }
}

/// A Spin variable; a clear error when it is not set.
pub fn variable(name: &str) -> Result<String, ApiError> {
    spin_sdk::variables::get(name).map_err(|e| {
        ApiError::internal(format!(
            "the `{name}` variable is not available ({e}); set SPIN_VARIABLE_{} for the app",
            name.to_ascii_uppercase()
        ))
    })
}

/// A secret Spin variable: refused (500, saying how to make one) when it is
/// shorter than `signing::MIN_SECRET_BYTES`, so an empty or guessable secret
/// never signs or admits anything.
pub fn secret(name: &str) -> Result<String, ApiError> {
    let value = variable(name)?;
    crate::signing::check_secret(name, &value).map_err(ApiError::internal)?;
    Ok(value)
}

/// The key for `purpose` derived from the secret `name` (`signing::purpose_key`).
pub fn purpose_key(name: &str, purpose: &str) -> Result<String, ApiError> {
    Ok(purpose_keys(name)?.key(purpose))
}

/// The secret `name`, read once, to derive several purpose keys from.
pub fn purpose_keys(name: &str) -> Result<crate::signing::PurposeKeys, ApiError> {
    Ok(crate::signing::PurposeKeys::from_secret(&secret(name)?))
}

/// A Spin variable that may be empty or absent.
pub fn optional_variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The contact rules from the `contact_rules` variable (defaults when empty).
pub fn contact_rules() -> Result<crate::contact::ContactRules, ApiError> {
    crate::contact_rules_or_default(optional_variable("contact_rules").as_deref())
}

/// The survey policy from the `survey_policy` variable (defaults when empty),
/// with the shared contact rules.
pub fn survey_policy() -> Result<crate::policy::SurveyPolicy, ApiError> {
    let mut p = survey_policy_or_default(optional_variable("survey_policy").as_deref())?;
    p.contact = contact_rules()?;
    Ok(p)
}

/// The reasons part of the survey policy alone (the survey page's; see
/// `policy::LowScoreReasons`).
pub fn low_score_reasons() -> crate::policy::LowScoreReasons {
    crate::policy::LowScoreReasons::from_policy_json(optional_variable("survey_policy").as_deref())
}

/// The escalation policy from the `escalation_policy` variable (defaults when
/// empty), with the shared contact rules.
pub fn escalation_policy() -> Result<crate::task::EscalationPolicy, ApiError> {
    let mut p =
        crate::escalation_policy_or_default(optional_variable("escalation_policy").as_deref())?;
    p.contact = contact_rules()?;
    Ok(p)
}

/// Who is told what (the `webhooks` variable; empty: nobody), or what is
/// wrong with it.
pub fn webhooks_checked() -> Result<crate::webhooks::Webhooks, String> {
    crate::webhooks::Webhooks::parse(&optional_variable("webhooks").unwrap_or_default())
}

/// Who is told what. A mistake in the variable never stops a task or a
/// survey: it is logged, nobody is told, and the escalator's tick and
/// `GET /webhooks/deliveries` say what to fix.
pub fn webhooks() -> crate::webhooks::Webhooks {
    webhooks_checked().unwrap_or_else(|e| {
        eprintln!("{e}; nobody is told until it is fixed");
        crate::webhooks::Webhooks::default()
    })
}

/// The client's address for rate limits: the TCP peer, or the client the
/// trusted proxy (`trusted_proxy` variable) names in `X-Forwarded-For`.
pub fn client_address(req: &Request) -> String {
    let header = |n: &str| req.header(n).and_then(|h| h.as_str());
    let proxy = optional_variable("trusted_proxy");
    crate::rate::client_address(
        header("spin-client-addr").unwrap_or(""),
        header("x-forwarded-for"),
        proxy.as_deref(),
    )
    .to_string()
}

/// Check a credential, `attempt`, against the client network's recent
/// failures: a network past `rate::AUTH_FAILURES_PER_MINUTE` is refused
/// (`429`) until the minute is over, and a failed attempt counts. A request
/// that presents no credential at all (a first look at the sign-in page)
/// costs nothing and counts nothing.
fn guarded<T>(
    req: &Request,
    attempt: impl FnOnce() -> Result<Option<T>, ApiError>,
) -> Result<Option<T>, ApiError> {
    let presented = req.header("authorization").is_some() || cookie(req, SESSION_COOKIE).is_some();
    if !presented {
        return Ok(None);
    }
    let store = SpinStore::open()?;
    let network = crate::rate::network_of(&client_address(req));
    let now = now();
    if crate::flows::attempts::blocked(&store, &network, now)? {
        return Err(too_many_attempts());
    }
    let found = attempt()?;
    if found.is_none() {
        crate::flows::attempts::failed(&store, &network, now)?;
    }
    Ok(found)
}

/// `401` unless the request carries `Authorization: Bearer <admin_token>`.
pub fn require_admin(req: &Request) -> Result<(), ApiError> {
    let expected = secret("admin_token")?;
    let given = req.header("authorization").and_then(|h| h.as_str());
    guarded(req, || Ok(bearer_matches(given, &expected).then_some(())))?.ok_or_else(|| {
        ApiError::unauthorized("this endpoint needs `Authorization: Bearer <admin token>`")
    })
}

/// A request another component of this app sent by service chaining, with
/// the admin token. Its route is private (no client outside the app reaches
/// it), so the token is checked without the credential guard, which limits
/// guessing from a network and costs a store read on every hand-off.
pub fn require_chained(req: &Request) -> Result<(), ApiError> {
    let expected = secret("admin_token")?;
    let given = req.header("authorization").and_then(|h| h.as_str());
    match bearer_matches(given, &expected) {
        true => Ok(()),
        false => Err(ApiError::unauthorized(
            "a hand-off carries `Authorization: Bearer <admin token>`",
        )),
    }
}

/// The supervisor only (the admin token, or a supervisor's session): an
/// agent is told it may not (`403`), anyone else to sign in (`401`).
pub fn require_supervisor(req: &Request) -> Result<(), ApiError> {
    match authenticate(req)? {
        crate::task::Role::Supervisor => Ok(()),
        crate::task::Role::Agent(_) => Err(ApiError::new(
            403,
            "forbidden",
            "only a supervisor (the admin token) may do this",
        )),
    }
}

/// A sign-in on the agent's page: the role `token` stands for, counted
/// against the client network's failures like any credential.
pub fn sign_in(req: &Request, token: &str) -> Result<Option<crate::task::Role>, ApiError> {
    let store = SpinStore::open()?;
    let network = crate::rate::network_of(&client_address(req));
    let now = now();
    if crate::flows::attempts::blocked(&store, &network, now)? {
        return Err(too_many_attempts());
    }
    let role = role_for_token(token)?;
    if role.is_none() {
        crate::flows::attempts::failed(&store, &network, now)?;
    }
    Ok(role)
}

fn too_many_attempts() -> ApiError {
    ApiError::new(
        429,
        "too_many_attempts",
        "too many failed credentials from your network this minute; wait a minute and try again",
    )
}

/// Who is calling: the admin token is a supervisor; a token from the
/// `agent_tokens` variable (JSON `{"agent-id": "token"}`) is that agent; a
/// browser carries the same identity in a signed session cookie.
pub fn authenticate(req: &Request) -> Result<crate::task::Role, ApiError> {
    guarded(req, || identify(req))?.ok_or_else(|| {
        ApiError::unauthorized(
            "this endpoint needs `Authorization: Bearer <token>` (the admin token or an agent's)",
        )
    })
}

fn identify(req: &Request) -> Result<Option<crate::task::Role>, ApiError> {
    let given = req.header("authorization").and_then(|h| h.as_str());
    if let Some(token) = given.and_then(|h| h.strip_prefix("Bearer ")) {
        if let Some(role) = role_for_token(token.trim())? {
            return Ok(Some(role));
        }
    }
    if let Some(cookie) = cookie(req, SESSION_COOKIE) {
        let key = purpose_key("admin_token", crate::signing::purpose::SESSION)?;
        let who = crate::signing::Session::verify(&key, &cookie, now());
        // A session names its role; an agent's holds only while the agent
        // is still in `agent_tokens` (a removed agent is signed out).
        match who.as_deref().map(|w| w.split_once(':')) {
            Some(Some((ROLE_SUPERVISOR, ""))) => return Ok(Some(crate::task::Role::Supervisor)),
            Some(Some((ROLE_AGENT, agent))) if agent_tokens()?.contains_key(agent) => {
                return Ok(Some(crate::task::Role::Agent(agent.to_string())))
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The session cookie of the agent's page.
pub const SESSION_COOKIE: &str = "revisit_session";
/// What a session says it is for: `supervisor:` or `agent:<id>` (an agent
/// named "supervisor" stays an agent).
const ROLE_SUPERVISOR: &str = "supervisor";
const ROLE_AGENT: &str = "agent";

/// The `agent_tokens` variable: agent id → token.
fn agent_tokens() -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    match optional_variable("agent_tokens") {
        None => Ok(Default::default()),
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            ApiError::internal(format!(
                "agent_tokens must be JSON {{\"agent-id\": \"token\"}}: {e}"
            ))
        }),
    }
}

/// The role a token stands for (constant-time comparisons against every token).
pub fn role_for_token(token: &str) -> Result<Option<crate::task::Role>, ApiError> {
    let header = format!("Bearer {token}");
    if bearer_matches(Some(&header), &secret("admin_token")?) {
        return Ok(Some(crate::task::Role::Supervisor));
    }
    let mut found = None;
    for (agent, t) in &agent_tokens()? {
        if bearer_matches(Some(&header), t) {
            found = Some(crate::task::Role::Agent(agent.clone()));
        }
    }
    Ok(found)
}

/// A `Set-Cookie` value starting a 12-hour session for `role`.
pub fn session_cookie(role: &crate::task::Role) -> Result<String, ApiError> {
    let who = match role {
        crate::task::Role::Supervisor => format!("{ROLE_SUPERVISOR}:"),
        crate::task::Role::Agent(a) => format!("{ROLE_AGENT}:{a}"),
    };
    let value = crate::signing::Session::issue(
        &purpose_key("admin_token", crate::signing::purpose::SESSION)?,
        &who,
        now() + chrono::Duration::hours(12),
    );
    // `Secure` where the app is served over https (a cookie over plain http
    // on the local machine would otherwise never be sent back).
    let secure = optional_variable("public_base_url").is_some_and(|u| u.starts_with("https://"));
    Ok(format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200{}",
        if secure { "; Secure" } else { "" }
    ))
}

/// Whether a staff page (the agent's, the console) is shown in Simplified
/// Chinese rather than English: `?lang=`, else the browser's
/// `Accept-Language`, else English.
pub fn staff_reads_chinese(req: &Request) -> bool {
    let chinese = |s: &str| s.trim().to_ascii_lowercase().starts_with("zh");
    match query_param(req, "lang") {
        Some(l) => chinese(&l),
        None => req
            .header("accept-language")
            .and_then(|h| h.as_str())
            .is_some_and(chinese),
    }
}

/// A cookie's value.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    let header = req.header("cookie").and_then(|h| h.as_str())?;
    header.split(';').find_map(|c| {
        c.trim()
            .strip_prefix(&format!("{name}="))
            .map(str::to_string)
    })
}

/// A `303 See Other` to `location` (after a form post).
pub fn see_other(location: &str) -> Response {
    Response::builder()
        .status(303)
        .header("location", location)
        .body(Vec::new())
        .build()
}

/// Hand an escalation to the escalator through Spin service chaining. On the
/// common path this costs no store operation: only when the escalator cannot
/// take it now is the request written to the outbox, which the escalator's tick
/// delivers later. The escalator is idempotent per source, so a request handed
/// over twice (a retry, the tick racing a late success) makes one task.
/// `Err` only when it could be neither delivered nor kept: the caller
/// answers 503, and the client's retry hands it over again. (Used for the
/// events that ask for a call; an answer's call comes from the answer log.)
pub async fn hand_off(
    store: &SpinStore,
    request: &crate::task::EscalationRequest,
) -> Result<(), ApiError> {
    let token = secret("admin_token")?;
    let http = Request::builder()
        .method(Method::Post)
        .uri(ESCALATOR_URL)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(serde_json::to_vec(request).unwrap_or_default())
        .build();
    match spin_sdk::http::send::<_, Response>(http).await {
        Ok(r) if (200..300).contains(r.status()) => return Ok(()),
        Ok(r) => eprintln!(
            "escalator answered {}; leaving it in the outbox for its tick",
            r.status()
        ),
        Err(e) => eprintln!("escalator unreachable ({e}); leaving it in the outbox for its tick"),
    }
    Ok(crate::flows::escalation::keep(store, request)?)
}

/// Send one webhook and wait at most `timeout` for the receiver's answer: a
/// receiver that never answers (or never reads) costs the tick this long.
/// The request goes out through `wasi:http` itself, every wait polled beside
/// one guest-side timer (`wasi:clocks`), so the deadline holds on any host.
pub fn send_webhook(
    req: &crate::webhooks::WebhookRequest,
    timeout: std::time::Duration,
) -> crate::webhooks::AttemptResult {
    use crate::webhooks::AttemptResult;
    match outgoing::post(req, timeout) {
        Ok(Some(status)) => AttemptResult::Answered(status),
        Ok(None) => AttemptResult::Failed(format!("no answer within {} s", timeout.as_secs())),
        Err(e) => AttemptResult::Failed(format!(
            "could not reach {} ({e}); is its origin in webhook_origin or second_webhook_origin?",
            req.url
        )),
    }
}

/// One outbound `POST` with a deadline, on the raw `wasi:http` interfaces.
mod outgoing {
    use wasi::clocks::monotonic_clock;
    use wasi::http::outgoing_handler;
    use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    use wasi::io::poll::{poll, Pollable};

    /// The receiver's status, `None` at the deadline, or why it could not be
    /// sent.
    pub fn post(
        req: &crate::webhooks::WebhookRequest,
        timeout: std::time::Duration,
    ) -> Result<Option<u16>, String> {
        let deadline = monotonic_clock::subscribe_duration(timeout.as_nanos() as u64);
        // `wait` is false once the deadline has passed.
        let wait = |ready: &Pollable| {
            poll(&[ready, &deadline]);
            ready.ready()
        };
        let (scheme, authority, path) =
            crate::webhooks::url_parts(&req.url).ok_or("not an http(s) URL")?;
        let scheme = if scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        // With its length, not chunked: some receivers refuse chunked bodies.
        let length = ("content-length", req.body.len().to_string());
        let headers: Vec<(String, Vec<u8>)> = req
            .headers
            .iter()
            .chain([&length])
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect();
        let fields = Fields::from_list(&headers).map_err(|e| format!("bad header: {e:?}"))?;
        let request = OutgoingRequest::new(fields);
        let refused = |what: &str| format!("the host refused the {what}");
        request
            .set_method(&Method::Post)
            .map_err(|()| refused("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| refused("scheme"))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| refused("authority"))?;
        request
            .set_path_with_query(Some(&path))
            .map_err(|()| refused("path"))?;
        let body = request.body().map_err(|()| refused("body"))?;
        let response = outgoing_handler::handle(request, None).map_err(|e| e.to_string())?;
        {
            let stream = body.write().map_err(|()| refused("body stream"))?;
            if !super::write_body(&stream, &req.body, wait).map_err(|e| e.to_string())? {
                return Ok(None);
            }
        }
        OutgoingBody::finish(body, None).map_err(|e| e.to_string())?;
        let ready = response.subscribe();
        loop {
            if let Some(answer) = response.get() {
                let answer = answer.map_err(|()| "the answer was taken twice".to_string())?;
                return answer.map(|r| Some(r.status())).map_err(|e| e.to_string());
            }
            if !wait(&ready) {
                return Ok(None);
            }
        }
    }
}

/// The escalator's private endpoint, reached through Spin service chaining.
pub const ESCALATOR_URL: &str = "http://low-score-escalator.spin.internal/internal/escalations";

/// Serve one request with `handle`, reading the request and writing the
/// response with blocking `wasi:io` calls, as few as the request needs. The
/// same `Request` and `Response` reach the component's code as with
/// spin-sdk's own conversion (the `Request`/`Response` form of
/// `#[http_component]`), which runs every body through its async executor
/// (a subscribe-and-poll round per step) and asks for the scheme and
/// authority that no route here reads: about a dozen host calls an answer
/// paid for nothing.
pub fn serve(
    incoming: spin_sdk::http::IncomingRequest,
    out: spin_sdk::http::ResponseOutparam,
    handle: impl FnOnce(Request) -> Response,
) {
    let response = match read_request(incoming) {
        Ok(req) => handle(req),
        Err(e) => error(&e),
    };
    write_response(out, response);
}

/// [`serve`] for a component whose code awaits (outbound requests).
pub async fn serve_async<F: std::future::Future<Output = Response>>(
    incoming: spin_sdk::http::IncomingRequest,
    out: spin_sdk::http::ResponseOutparam,
    handle: impl FnOnce(Request) -> F,
) {
    let response = match read_request(incoming) {
        Ok(req) => handle(req).await,
        Err(e) => error(&e),
    };
    write_response(out, response);
}

/// The request as spin-sdk's `Request`: its URI is the path and query (all
/// the app reads of it); its body, read up to one byte past
/// [`MAX_BODY_BYTES`] (enough for [`body`] to refuse it), is left unread for
/// a GET or HEAD (nothing here reads one).
pub fn read_request(incoming: spin_sdk::http::IncomingRequest) -> Result<Request, ApiError> {
    let method = incoming.method();
    let headers = incoming.headers().entries();
    let has_body = !matches!(method, Method::Get | Method::Head);
    let announced = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok());
    let mut builder = Request::builder();
    builder
        .method(method)
        .uri(incoming.path_with_query().unwrap_or_default())
        .headers(headers);
    let bytes = match has_body {
        true => read_body(&incoming, announced)?,
        false => Vec::new(),
    };
    Ok(builder.body(bytes).build())
}

/// A request's body, up to one byte past [`MAX_BODY_BYTES`]: read until its
/// end, or until the length its `content-length` announced has come.
fn read_body(
    incoming: &spin_sdk::http::IncomingRequest,
    announced: Option<usize>,
) -> Result<Vec<u8>, ApiError> {
    let unreadable = || ApiError::bad_request("the request's body could not be read");
    let body = incoming.consume().map_err(|()| unreadable())?;
    let stream = body.stream().map_err(|()| unreadable())?;
    let limit = MAX_BODY_BYTES + 1;
    let mut bytes = Vec::with_capacity(announced.unwrap_or(0).min(limit));
    while bytes.len() < limit && Some(bytes.len()) != announced {
        match stream.blocking_read((limit - bytes.len()) as u64) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(_) => return Err(unreadable()),
        }
    }
    Ok(bytes)
}

/// Send `response`: status and headers, then its body.
pub fn write_response(out: spin_sdk::http::ResponseOutparam, response: Response) {
    use spin_sdk::http::{Fields, OutgoingBody, OutgoingResponse};
    let headers: Vec<(String, Vec<u8>)> = response
        .headers()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let Ok(fields) = Fields::from_list(&headers) else {
        eprintln!("the response's headers are not valid HTTP: {headers:?}");
        return;
    };
    let outgoing = OutgoingResponse::new(fields);
    // (A new response's status is 200.)
    if *response.status() != 200 && outgoing.set_status_code(*response.status()).is_err() {
        eprintln!(
            "the response's status {} is not valid HTTP",
            response.status()
        );
        return;
    }
    let body = outgoing.body().expect("a new response's body is writable");
    out.set(outgoing);
    let stream = body.write().expect("a new body's stream is writable");
    // A body of up to 4 KiB (every answer's) in the one call that
    // `blocking-write-and-flush` allows for it.
    let written = match response.body() {
        small if small.len() <= 4096 => stream.blocking_write_and_flush(small),
        big => write_body(&stream, big, |ready| {
            ready.block();
            true
        })
        .map(drop),
    };
    if let Err(e) = written {
        eprintln!("the response could not be sent: {e:?}");
    }
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}

/// Write `bytes` to `stream` as fast as it takes them and flush it, waiting
/// with `wait` whenever it has no room (`wait` false: given up, and so is
/// the write: `Ok(false)`). The flush is waited for too, unless the stream
/// is closed by then: a host may close it as soon as it has the
/// `content-length` bytes. One flush at the end: a flush per 4 KiB made a
/// console page of 200 KB ten times slower.
fn write_body(
    stream: &wasi::io::streams::OutputStream,
    bytes: &[u8],
    wait: impl Fn(&wasi::io::poll::Pollable) -> bool,
) -> Result<bool, wasi::io::streams::StreamError> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let room = stream.check_write()? as usize;
        if room == 0 {
            if !wait(&stream.subscribe()) {
                return Ok(false);
            }
            continue;
        }
        let (now, later) = rest.split_at(room.min(rest.len()));
        stream.write(now)?;
        rest = later;
    }
    if stream.flush().is_ok() {
        while let Ok(0) = stream.check_write() {
            if !wait(&stream.subscribe()) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The body, or `413` when it is over the limit.
pub fn body(req: &Request) -> Result<&[u8], ApiError> {
    let b = req.body();
    if b.len() > MAX_BODY_BYTES {
        return Err(ApiError::too_large(MAX_BODY_BYTES));
    }
    Ok(b)
}

/// A query parameter, percent-decoded.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    form_urlencoded::parse(req.query().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn json(status: u16, value: &impl serde::Serialize) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(serde_json::to_string(value).expect("responses serialize"))
        .build()
}

pub fn error(e: &ApiError) -> Response {
    let mut r = Response::builder()
        .status(e.status)
        .header("content-type", "application/json")
        .body(e.to_json())
        .build();
    if e.status == 429 {
        // Rate limits count per minute.
        r.set_header("retry-after", "60");
    }
    r
}

pub fn html(status: u16, page: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        )
        .body(page)
        .build()
}

/// Render a handler's result: the response, or the JSON error.
pub fn render(result: Result<Response, ApiError>) -> Response {
    match result {
        Ok(r) => r,
        Err(e) => error(&e),
    }
}

pub fn method_is(req: &Request, m: Method) -> bool {
    *req.method() == m
}

/// The `spin.toml` route the request came in on (Spin's `spin-matched-route`
/// header, e.g. `/s/:token`): components dispatch on it, not on the path.
/// [`CHAINED_ROUTE`] for a request that came by service chaining.
pub fn matched_route(req: &Request) -> String {
    req.header("spin-matched-route")
        .and_then(|h| h.as_str())
        .unwrap_or("")
        .to_string()
}

/// What Spin gives a request that came by service chaining
/// (`http://<component>.spin.internal/...`) as its matched route: it is matched
/// as if against the wildcard route. No public route of this app is `/...`.
pub const CHAINED_ROUTE: &str = "/...";

/// The value of a `:name` route segment. Spin passes it as the header
/// `spin-path-match-<name>` with `_` written as `-` (`:task_id` →
/// `spin-path-match-task-id`).
pub fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    let raw = req
        .header(&format!("spin-path-match-{}", name.replace('_', "-")))
        .and_then(|h| h.as_str())
        .ok_or_else(|| ApiError::not_found(format!("no `{name}` in the path")))?;
    // Spin passes the segment as it came: `woo%3A7` names `woo:7`.
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::bad_request(format!("`{name}` is not valid UTF-8 once decoded")))
}

/// The wall clock, to whole seconds: every stored time is second-precise.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(0)
}
