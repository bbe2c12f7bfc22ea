//! The agent's queue page: server-rendered HTML in Simplified Chinese and
//! English, no JavaScript, no build step. Every customer text is escaped.

use chrono::{DateTime, Utc};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as esc};
use revisit_shared::task::TaskReason;
use revisit_shared::window::{WindowReason, WorkOrderState};
use spin_sdk::http::Request;

use revisit_shared::flows::queue::{Queue, QueueEntry};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhHans,
}

pub struct Texts {
    pub title: &'static str,
    pub call_now: &'static str,
    pub later: &'static str,
    pub nothing: &'static str,
    pub nothing_later: &'static str,
    pub local_time: &'static str,
    pub due_in: &'static str,
    pub overdue: &'static str,
    pub said: &'static str,
    pub next_window: &'static str,
    pub reached: &'static str,
    pub unreachable: &'static str,
    pub resolved: &'static str,
    pub refused: &'static str,
    pub resolution: &'static str,
    pub satisfied: &'static str,
    pub login: &'static str,
    pub token: &'static str,
    pub bad_token: &'static str,
    pub signed_in_as: &'static str,
    pub phone: &'static str,
    pub order: &'static str,
    pub work_order: &'static str,
    /// Booked, completed, not reported.
    pub work_order_states: [&'static str; 3],
    pub also: &'static str,
    pub root_cause: &'static str,
}

static EN: Texts = Texts {
    title: "Callback queue",
    call_now: "Call now",
    later: "Not now",
    nothing: "Nobody to call right now.",
    nothing_later: "Nothing waiting.",
    local_time: "Their local time",
    due_in: "Due in",
    overdue: "Overdue by",
    said: "They said",
    next_window: "Next window",
    reached: "Reached",
    unreachable: "No answer",
    resolved: "Resolved",
    refused: "Refused",
    resolution: "What was done",
    satisfied: "Customer satisfied",
    login: "Sign in",
    token: "Your access token",
    bad_token: "That token is not valid.",
    signed_in_as: "Signed in as",
    phone: "Phone",
    order: "Order",
    work_order: "Work order",
    work_order_states: [
        "booked, technician not there yet: do not ask if it is fixed",
        "completed",
        "never reported booked or done",
    ],
    also: "Also",
    root_cause: "Root cause",
};

static ZH: Texts = Texts {
    title: "回访队列",
    call_now: "现在可以回访",
    later: "暂不可回访",
    nothing: "现在没有需要回访的客户。",
    nothing_later: "没有等待中的回访。",
    local_time: "客户当地时间",
    due_in: "剩余时间",
    overdue: "已超时",
    said: "客户原话",
    next_window: "下一个可回访时段",
    reached: "已接通",
    unreachable: "未接通",
    resolved: "已解决",
    refused: "客户拒绝",
    resolution: "处理结果",
    satisfied: "客户满意",
    login: "登录",
    token: "您的访问令牌",
    bad_token: "令牌无效。",
    signed_in_as: "当前用户",
    phone: "电话",
    order: "订单",
    work_order: "工单",
    work_order_states: [
        "已预约，师傅尚未上门：不要问是否已修好",
        "已完成",
        "未收到预约或完工记录",
    ],
    also: "另有",
    root_cause: "根本原因",
};

impl Lang {
    /// `?lang=`, else the browser's `Accept-Language`, else English.
    pub fn from_request(req: &Request) -> Lang {
        if revisit_shared::spin::staff_reads_chinese(req) {
            Lang::ZhHans
        } else {
            Lang::En
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhHans => "zh-Hans",
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::ZhHans => &ZH,
        }
    }

    /// A reason the customer gave (a policy id), labelled as the survey page
    /// labelled it; an id without a built-in label as it is.
    fn customer_reason(self, id: &str) -> &str {
        let lang = match self {
            Lang::En => revisit_shared::i18n::Lang::En,
            Lang::ZhHans => revisit_shared::i18n::Lang::ZhHans,
        };
        revisit_shared::i18n::texts(lang).reason(id).unwrap_or(id)
    }

    fn reason(self, r: TaskReason) -> &'static str {
        use TaskReason::*;
        match (self, r) {
            (Lang::En, LowScore) => "low score",
            (Lang::En, Dropping) => "dropping score",
            (Lang::En, MissedCall) => "missed call",
            (Lang::En, Complaint) => "complaint",
            (Lang::En, FirstPromoter) => "first top score: say thank you",
            (Lang::En, Recovered) => "satisfied again after a complaint",
            (Lang::En, Birthday) => "birthday this month",
            (Lang::En, LateDelivery) => "delivery was late",
            (Lang::En, VipRepeat) => "VIP, repeated complaint",
            (Lang::En, WorkOrderOverdue) => "work order open over 48 h: call first",
            (Lang::ZhHans, LowScore) => "低分",
            (Lang::ZhHans, Dropping) => "评分下降",
            (Lang::ZhHans, MissedCall) => "未接来电",
            (Lang::ZhHans, Complaint) => "投诉",
            (Lang::ZhHans, FirstPromoter) => "首次满分：致谢",
            (Lang::ZhHans, Recovered) => "投诉后重新满意",
            (Lang::ZhHans, Birthday) => "本月生日",
            (Lang::ZhHans, LateDelivery) => "配送延迟",
            (Lang::ZhHans, VipRepeat) => "VIP 重复投诉",
            (Lang::ZhHans, WorkOrderOverdue) => "工单超过 48 小时未完成：主动联系",
        }
    }

    fn why_not(self, r: WindowReason) -> &'static str {
        use WindowReason::*;
        match (self, r) {
            (Lang::En, ServiceNotCompleted) => "service not completed yet",
            (Lang::En, TooLate) => "too late",
            (Lang::En, QuietHours) => "quiet hours",
            (Lang::En, ContactLimit) => "contact limit",
            (Lang::En, OptedOut) => "opted out",
            (Lang::En, RetrySpacing) => "too soon after the last try",
            (Lang::En, TaskClosed) => "closed",
            (Lang::ZhHans, ServiceNotCompleted) => "服务尚未完成",
            (Lang::ZhHans, TooLate) => "已过有效期",
            (Lang::ZhHans, QuietHours) => "休息时间",
            (Lang::ZhHans, ContactLimit) => "已达联系上限",
            (Lang::ZhHans, OptedOut) => "客户已退订",
            (Lang::ZhHans, RetrySpacing) => "距上次尝试太近",
            (Lang::ZhHans, TaskClosed) => "已关闭",
        }
    }
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#111;background:#f6f7f9}\
main{max-width:60rem;margin:0 auto;padding:1rem}header{display:flex;justify-content:space-between;align-items:baseline}\
ol{list-style:none;padding:0}li.task{background:#fff;border:1px solid #ccd;border-radius:.5rem;padding:.8rem 1rem;margin:.6rem 0}\
li.task h3{margin:.1rem 0}.meta{color:#333;font-size:.9rem}.p1{border-left:6px solid #b3261e}.p2{border-left:6px solid #e37400}\
blockquote{margin:.4rem 0;padding:.3rem .7rem;border-left:3px solid #889;background:#f2f2f6}.picked{margin:.2rem 0;font-weight:600}\
form{display:inline-block;margin:.3rem .3rem 0 0}button{font:inherit;padding:.35rem .8rem;border-radius:.3rem;border:1px solid #445;background:#fff;cursor:pointer}\
button.primary{background:#0b57d0;color:#fff;border-color:#0b57d0}button:focus-visible,input:focus-visible{outline:3px solid #e37400;outline-offset:2px}\
.notice{background:#e6f4ea;border:1px solid #137333;padding:.4rem .8rem;border-radius:.3rem}";

fn layout(lang: Lang, body: &str) -> String {
    let t = lang.texts();
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        lang.tag(),
        esc(t.title)
    )
}

pub fn login(lang: Lang, error: Option<&str>) -> String {
    let t = lang.texts();
    let error = error
        .map(|e| format!("<p role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    layout(
        lang,
        &format!(
            "<h1>{}</h1>{error}<form method=\"post\" action=\"/queue/login?lang={}\"><label for=\"token\">{}</label> \
<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required> \
<button class=\"primary\" type=\"submit\">{}</button></form>",
            esc(t.title),
            lang.tag(),
            esc(t.token),
            esc(t.login)
        ),
    )
}

fn duration_words(lang: Lang, minutes: i64) -> String {
    let (h, m) = (minutes / 60, minutes % 60);
    match lang {
        Lang::En => format!("{h} h {m} min"),
        Lang::ZhHans => format!("{h}小时{m}分钟"),
    }
}

/// The phone number, the order, the work order's state and every merged
/// escalation with its source: what the caller reads before dialling.
fn context_lines(lang: Lang, e: &QueueEntry) -> String {
    let t = lang.texts();
    let mut parts = Vec::new();
    if let Some(phone) = &e.phone {
        parts.push(format!(
            "{}: <a href=\"tel:{}\">{}</a>",
            esc(t.phone),
            attr(phone),
            esc(phone)
        ));
    }
    if let Some(order) = &e.order_id {
        parts.push(format!("{}: {}", esc(t.order), esc(order)));
    }
    if let Some(w) = &e.work_order {
        let state = t.work_order_states[match w.state {
            WorkOrderState::Booked => 0,
            WorkOrderState::Completed => 1,
            WorkOrderState::NotReported => 2,
        }];
        parts.push(format!(
            "{} {}: <strong class=\"wo-{}\">{}</strong>",
            esc(t.work_order),
            esc(&w.work_order_id),
            attr(&format!("{:?}", w.state).to_lowercase()),
            esc(state)
        ));
    }
    let mut html = String::new();
    if !parts.is_empty() {
        html.push_str(&format!(
            "<div class=\"meta ctx\">{}</div>",
            parts.join(" · ")
        ));
    }
    for m in &e.merged {
        let reasons: Vec<&str> = m.reasons.iter().map(|r| lang.reason(*r)).collect();
        let mut line = format!("{}: {}", t.also, reasons.join(", "));
        for (label, v) in [(t.order, &m.order_id), ("", &m.topic)] {
            if let Some(v) = v {
                line.push_str(&if label.is_empty() {
                    format!(" — {v}")
                } else {
                    format!(" · {label} {v}")
                });
            }
        }
        html.push_str(&format!(
            "<div class=\"meta merged\" title=\"{}\">{}</div>",
            attr(&m.source_id),
            esc(&line)
        ));
    }
    html
}

fn entry(
    lang: Lang,
    e: &QueueEntry,
    now: DateTime<Utc>,
    callable: bool,
    causes: &[String],
) -> String {
    let t = lang.texts();
    let name = e.customer_name.as_deref().unwrap_or(&e.customer_id);
    let reasons: Vec<&str> = e.reasons.iter().map(|r| lang.reason(*r)).collect();
    let left = (e.due_by - now).num_minutes();
    let countdown = if left >= 0 {
        format!("{} {}", t.due_in, duration_words(lang, left))
    } else {
        format!("{} {}", t.overdue, duration_words(lang, -left))
    };
    let said = match (&e.score, &e.comment) {
        (Some(score), Some(c)) => format!(
            "<blockquote><strong>{score}</strong> — {}</blockquote>",
            esc(c)
        ),
        (Some(score), None) => format!("<blockquote><strong>{score}</strong></blockquote>"),
        (None, Some(c)) => format!("<blockquote>{}</blockquote>", esc(c)),
        (None, None) => String::new(),
    };
    // The reasons the customer picked, in the agent's language.
    let picked: Vec<&str> = e
        .customer_reasons
        .iter()
        .map(|id| lang.customer_reason(id))
        .collect();
    let said = match picked.is_empty() {
        true => said,
        false => format!("{said}<p class=\"picked\">{}</p>", esc(&picked.join(" · "))),
    };
    let said = if said.is_empty() {
        said
    } else {
        format!("<div class=\"meta\">{}:</div>{said}", esc(t.said))
    };
    let local = e
        .customer_local_time
        .get(11..16)
        .unwrap_or(&e.customer_local_time);
    let mut html = format!(
        "<li class=\"task p{}\" id=\"task-{}\" data-task-id=\"{}\"><h3>{}</h3><div class=\"meta\">{} · {}: {} · {}</div>{said}",
        e.priority,
        attr(&e.task_id),
        attr(&e.task_id),
        esc(name),
        esc(&reasons.join(", ")),
        esc(t.local_time),
        esc(local),
        esc(&countdown),
    );
    html.push_str(&context_lines(lang, e));
    if callable {
        let action = format!("/callbacks/{}/outcome", attr(&e.task_id));
        for (outcome, label) in [
            ("reached", t.reached),
            ("unreachable", t.unreachable),
            ("refused", t.refused),
        ] {
            html.push_str(&format!(
                "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"outcome\" value=\"{outcome}\">\
<button type=\"submit\" name=\"do\" value=\"{outcome}\">{}</button></form>",
                esc(label)
            ));
        }
        // A repair resolves only with the customer's confirmation (required)
        // and names its root cause (the outer loop).
        let (required, cause) = if e.repair {
            let options: String = causes
                .iter()
                .map(|c| format!("<option value=\"{}\">{}</option>", attr(c), esc(c)))
                .collect();
            (
                " required",
                format!(" <label>{} <select name=\"root_cause\" required><option value=\"\"></option>{options}</select></label>", esc(t.root_cause)),
            )
        } else {
            ("", String::new())
        };
        html.push_str(&format!(
            "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"outcome\" value=\"resolved\">\
<label>{} <input name=\"resolution\" required></label>{cause} <label><input type=\"checkbox\" name=\"customer_satisfied\" value=\"true\"{required}> {}</label> \
<button class=\"primary\" type=\"submit\" name=\"do\" value=\"resolved\">{}</button></form>",
            esc(t.resolution),
            esc(t.satisfied),
            esc(t.resolved)
        ));
    } else {
        let why: Vec<&str> = e.reasons_not_now.iter().map(|r| lang.why_not(*r)).collect();
        let next = e
            .next_window
            .map(|w| format!("{} UTC", revisit_shared::date_text::minute(&w.start)))
            .unwrap_or_else(|| "—".into());
        html.push_str(&format!(
            "<div class=\"meta\">{} · {}: {}</div>",
            esc(&why.join(", ")),
            esc(t.next_window),
            esc(&next)
        ));
    }
    html.push_str("</li>");
    html
}

pub fn queue(lang: Lang, who: &str, q: &Queue, now: DateTime<Utc>, notice: Option<&str>) -> String {
    let t = lang.texts();
    let other = match lang {
        Lang::En => "<a href=\"?lang=zh-Hans\" lang=\"zh-Hans\">中文</a>",
        Lang::ZhHans => "<a href=\"?lang=en\" lang=\"en\">English</a>",
    };
    let notice = notice
        .map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>", esc(n)))
        .unwrap_or_default();
    let list = |entries: &[QueueEntry], callable: bool| {
        if entries.is_empty() {
            let empty = if callable { t.nothing } else { t.nothing_later };
            return format!("<p>{}</p>", esc(empty));
        }
        let items: String = entries
            .iter()
            .map(|e| entry(lang, e, now, callable, &q.root_causes))
            .collect();
        format!("<ol>{items}</ol>")
    };
    layout(
        lang,
        &format!(
            "<header><h1>{}</h1><span>{} {} · {other}</span></header>{notice}\
<section id=\"now\"><h2>{} ({})</h2>{}</section><section id=\"later\"><h2>{} ({})</h2>{}</section>",
            esc(t.title),
            esc(t.signed_in_as),
            esc(who),
            esc(t.call_now),
            q.callable_now.len(),
            list(&q.callable_now, true),
            esc(t.later),
            q.later.len(),
            list(&q.later, false),
        ),
    )
}
