//! supervisor-console: the supervisor's pages — the loop at a glance, the
//! callbacks (filter, reassign, export), the findings, the development outbox
//! and the effective settings — read and changed through `shared/`'s flows.
//!
//! Routes: `GET /` (to the console), `GET /console`, `POST /console/login`,
//! `GET /console/callbacks`, `POST /console/callbacks/:task_id/owner`,
//! `GET /console/findings`, `GET /console/outbox`, `GET /console/settings`,
//! `GET /console/export/callbacks.csv`; and, private (service chaining), the
//! development outbox the default `sender_url` points at.

mod actions;
mod charts;
mod export;
mod page;

use chrono::{Duration, NaiveDate};
use page::{Lang, Setting};
use revisit_shared::flows::console::{self, TaskFilter};
use revisit_shared::flows::findings;
use revisit_shared::routes::console::*;
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::task::{Role, TaskReason};
use revisit_shared::ApiError;
use spin_sdk::http::{IncomingRequest, Method, Request, Response, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    let req = match shell::read_request(incoming) {
        Ok(req) => req,
        Err(e) => return shell::write_response(out, shell::error(&e)),
    };
    if shell::matched_route(&req) == EXPORT_ANSWERS && *req.method() == Method::Get {
        return export::stream_answers(&req, out).await;
    }
    shell::write_response(out, dispatch(&req))
}

fn dispatch(req: &Request) -> Response {
    let route = shell::matched_route(&req);
    let result = match (route.as_str(), req.method()) {
        (shell::CHAINED_ROUTE, Method::Post) if req.path() == DEV_OUTBOX_PATH => {
            actions::hold(&req)
        }
        (ROOT, Method::Get) => Ok(shell::see_other(OVERVIEW)),
        (LOGIN, Method::Post) => login(&req),
        (OVERVIEW, Method::Get) => page(&req, overview),
        (CALLBACKS, Method::Get) => page(&req, callbacks),
        (TASK, Method::Get) => page(&req, task),
        (REASSIGN, Method::Post) => actions::reassign(&req),
        (SURVEYS, Method::Get) => page(&req, surveys),
        (ANSWERS, Method::Get) => page(&req, answers),
        (CANCEL_SURVEY | SEND_SURVEY, Method::Post) => {
            actions::survey_action(&req, route == CANCEL_SURVEY)
        }
        (FINDINGS, Method::Get) => page(&req, findings_page),
        (OUTBOX, Method::Get) => page(&req, outbox),
        (SETTINGS, Method::Get) => page(&req, settings),
        (EXPORT_CALLBACKS, Method::Get) => export::callbacks(&req),
        (LOGIN | REASSIGN | CANCEL_SURVEY | SEND_SURVEY, _) => {
            Err(ApiError::method_not_allowed("POST"))
        }
        (_, _) if ALL.contains(&route.as_str()) => Err(ApiError::method_not_allowed("GET")),
        _ => Err(ApiError::not_found("no such endpoint")),
    };
    shell::render(result)
}

pub(crate) fn lang(req: &Request) -> Lang {
    if shell::staff_reads_chinese(req) {
        Lang::ZhHans
    } else {
        Lang::En
    }
}

/// The supervisor, or why not: `Ok(None)` when no credential came at all
/// (the sign-in page is shown), `403` for an agent.
pub(crate) fn supervisor(req: &Request) -> Result<Option<()>, ApiError> {
    match shell::authenticate(req) {
        Ok(Role::Supervisor) => Ok(Some(())),
        Ok(Role::Agent(_)) => Err(ApiError::new(
            403,
            "forbidden",
            "the console is the supervisor's; agents have their queue at /queue/page",
        )),
        Err(e) if e.status == 401 => Ok(None),
        Err(e) => Err(e),
    }
}

/// A console page for the supervisor; the sign-in page for anyone else.
fn page(
    req: &Request,
    render: fn(&Request, Lang) -> Result<String, ApiError>,
) -> Result<Response, ApiError> {
    let lang = lang(req);
    match supervisor(req)? {
        Some(()) => Ok(shell::html(200, render(req, lang)?)),
        None => Ok(shell::html(200, page::login(lang, None))),
    }
}

/// `POST /console/login`: the admin token, for a supervisor's session.
fn login(req: &Request) -> Result<Response, ApiError> {
    let lang = lang(req);
    let token = form(req)?.remove("token").unwrap_or_default();
    match shell::sign_in(req, token.trim())? {
        Some(Role::Supervisor) => {
            let mut resp = shell::see_other(&format!("{OVERVIEW}?lang={}", lang.tag()));
            resp.set_header("set-cookie", shell::session_cookie(&Role::Supervisor)?);
            Ok(resp)
        }
        _ => Ok(shell::html(
            401,
            page::login(
                lang,
                Some(lang.t("That is not the supervisor's token.", "这不是主管令牌。")),
            ),
        )),
    }
}

pub(crate) fn form(req: &Request) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    Ok(form_urlencoded::parse(shell::body(req)?)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

/// `from`/`to` from the query; the last 28 days by default, at most
/// `console::MAX_DAYS`.
pub(crate) fn period(req: &Request) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let today = shell::now().date_naive();
    let date = |name: &str, default: NaiveDate| match shell::query_param(req, name)
        .filter(|v| !v.is_empty())
    {
        None => Ok(default),
        Some(v) => v.parse::<NaiveDate>().map_err(|_| {
            ApiError::bad_request(format!(
                "`{name}` must be a date like 2026-12-01 (got {v:?})"
            ))
        }),
    };
    let to = date("to", today)?;
    let from = date("from", to - Duration::days(27))?;
    Ok((from, to))
}

fn overview(req: &Request, lang: Lang) -> Result<String, ApiError> {
    let (from, to) = period(req)?;
    let store = SpinStore::open()?;
    let o = console::overview(&store, from, to, shell::now().date_naive())?;
    Ok(page::overview(lang, &o, from, to))
}

fn filter(req: &Request) -> Result<TaskFilter, ApiError> {
    let reason = match shell::query_param(req, "reason").filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Some(
            TaskReason::ALL
                .into_iter()
                .find(|x| x.as_str() == r)
                .ok_or_else(|| ApiError::bad_request(format!("no task reason {r:?}")))?,
        ),
    };
    Ok(TaskFilter {
        owner: shell::query_param(req, "owner").filter(|o| !o.trim().is_empty()),
        reason,
        breached_only: shell::query_param(req, "breached").is_some(),
        due_today: shell::query_param(req, "due_today").is_some(),
    })
}

fn callbacks(req: &Request, lang: Lang) -> Result<String, ApiError> {
    let filter = filter(req)?;
    let now = shell::now();
    let tasks = console::open_callbacks(&SpinStore::open()?, &filter, now)?;
    let notice = shell::query_param(req, "notice");
    Ok(page::callbacks(
        lang,
        &tasks,
        &filter,
        now,
        notice.as_deref(),
    ))
}

/// One callback with its whole context.
fn task(req: &Request, lang: Lang) -> Result<String, ApiError> {
    let id = shell::path_param(req, "task_id")?;
    let policy = shell::escalation_policy()?;
    let view = console::task_context(&SpinStore::open()?, &id, &policy, shell::now())?;
    Ok(page::task(lang, &view))
}

/// The day a surveys page shows (`?day=`, today by default).
pub(crate) fn day(req: &Request) -> Result<NaiveDate, ApiError> {
    match shell::query_param(req, "day").filter(|d| !d.is_empty()) {
        None => Ok(shell::now().date_naive()),
        Some(d) => d.parse().map_err(|_| {
            ApiError::bad_request(format!("`day` must be a date like 2026-12-01 (got {d:?})"))
        }),
    }
}

fn surveys(req: &Request, lang: Lang) -> Result<String, ApiError> {
    let day = day(req)?;
    let view = console::surveys_of_day(&SpinStore::open()?, day, console::SURVEYS_PER_DAY_SHOWN)?;
    let notice = shell::query_param(req, "notice");
    Ok(page::surveys(lang, day, &view, notice.as_deref()))
}

fn answers(req: &Request, lang: Lang) -> Result<String, ApiError> {
    let (from, to) = period(req)?;
    let param = |n: &str| shell::query_param(req, n).filter(|v| !v.trim().is_empty());
    let filter = console::AnswerFilter {
        low_only: param("low").is_some(),
        agent: param("agent"),
        channel: param("channel"),
    };
    let list = console::answers(&SpinStore::open()?, from, to, &filter)?;
    Ok(page::answers(lang, from, to, &filter, &list))
}

fn findings_page(req: &Request, lang: Lang) -> Result<String, ApiError> {
    let (from, to) = period(req)?;
    let policy = shell::escalation_policy()?;
    let r = findings::report(
        &SpinStore::open()?,
        (&policy, &shell::survey_policy()?),
        from,
        to,
    )?;
    Ok(page::findings(lang, &r, from, to))
}

fn outbox(_req: &Request, lang: Lang) -> Result<String, ApiError> {
    Ok(page::outbox(
        lang,
        &console::held_messages(&SpinStore::open()?)?,
    ))
}

/// The effective policies, each field marked default or set.
fn settings(_req: &Request, lang: Lang) -> Result<String, ApiError> {
    fn fields<T: serde::Serialize>(actual: &T, default: &T) -> Vec<Setting> {
        let as_map = |v: &T| match serde_json::to_value(v) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => Default::default(),
        };
        let default = as_map(default);
        as_map(actual)
            .into_iter()
            .map(|(name, v)| Setting {
                is_default: default.get(&name) == Some(&v),
                value: v.to_string(),
                name,
            })
            .collect()
    }
    use revisit_shared::{contact::ContactRules, policy::SurveyPolicy, task::EscalationPolicy};
    let groups = vec![
        (
            "survey_policy",
            fields(&shell::survey_policy()?, &SurveyPolicy::default()),
        ),
        (
            "escalation_policy",
            fields(&shell::escalation_policy()?, &EscalationPolicy::default()),
        ),
        (
            "contact_rules",
            fields(&shell::contact_rules()?, &ContactRules::default()),
        ),
    ];
    Ok(page::settings(lang, &groups))
}
