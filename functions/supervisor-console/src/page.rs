//! The console's pages: server-rendered HTML in Simplified Chinese and
//! English, no JavaScript. Every text that came from outside is escaped.

use chrono::{DateTime, NaiveDate, Utc};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as esc};
use revisit_shared::findings::FindingsReport;
use revisit_shared::flows::console::{
    state_name, AnswerFilter, HeldMessage, Overview, SurveyDay, TaskFilter,
};
use revisit_shared::model::{Answer, Survey, SurveyState};
use revisit_shared::report::SummaryReport;
use revisit_shared::task::{CallbackTask, TaskReason};

use crate::charts;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhHans,
}

impl Lang {
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhHans => "zh-Hans",
        }
    }

    /// The text in this language.
    pub fn t(self, en: &'static str, zh: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::ZhHans => zh,
        }
    }
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#111;background:#f6f7f9}\
main,.bar{max-width:64rem;margin:0 auto;padding:0 1rem}nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.2rem 1rem;padding:0}\
nav a{color:#0b57d0}nav a[aria-current]{font-weight:700;color:#111}section{background:#fff;border:1px solid #ccd;border-radius:.5rem;padding:.6rem 1rem;margin:.8rem 0}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #dde}td code{overflow-wrap:anywhere}.settings th:last-child,.settings td:last-child{white-space:nowrap}\
.figures{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem}.figures div{min-width:9rem}.figures strong{display:block;font-size:1.5rem}\
svg.chart{width:100%;height:auto}.axis{stroke:#889}.line{fill:none;stroke:#0b57d0;stroke-width:2}.dots circle{fill:#0b57d0}\
.bar{fill:#0b57d0}.tick{font-size:11px;fill:#333}form.inline{display:inline}input,select,button{font:inherit;padding:.2rem .4rem}\
button{border-radius:.3rem;border:1px solid #445;background:#fff;cursor:pointer}button.primary{background:#0b57d0;color:#fff;border-color:#0b57d0}\
:focus-visible{outline:3px solid #e37400;outline-offset:2px}.notice{background:#e6f4ea;border:1px solid #137333;padding:.4rem .8rem;border-radius:.3rem}\
.breached{color:#b3261e;font-weight:700}";

/// Which page a request is on (for the navigation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Overview,
    Surveys,
    Answers,
    Callbacks,
    Findings,
    Outbox,
    Settings,
}

fn layout(lang: Lang, current: Option<Page>, title: &str, body: &str) -> String {
    let nav = match current {
        None => String::new(),
        Some(current) => {
            let items: String = [
                (Page::Overview, "/console", lang.t("Overview", "概览")),
                (Page::Surveys, "/console/surveys", lang.t("Surveys", "问卷")),
                (Page::Answers, "/console/answers", lang.t("Answers", "回答")),
                (
                    Page::Callbacks,
                    "/console/callbacks",
                    lang.t("Callbacks", "回访任务"),
                ),
                (
                    Page::Findings,
                    "/console/findings",
                    lang.t("Findings", "问题根因"),
                ),
                (
                    Page::Outbox,
                    "/console/outbox",
                    lang.t("Outbox", "待发消息"),
                ),
                (
                    Page::Settings,
                    "/console/settings",
                    lang.t("Settings", "设置"),
                ),
            ]
            .iter()
            .map(|(p, href, name)| {
                let here = if *p == current {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                format!(
                    "<li><a href=\"{href}?lang={}\"{here}>{}</a></li>",
                    lang.tag(),
                    esc(name)
                )
            })
            .collect();
            let other = match lang {
                Lang::En => "<li><a href=\"?lang=zh-Hans\" lang=\"zh-Hans\">中文</a></li>",
                Lang::ZhHans => "<li><a href=\"?lang=en\" lang=\"en\">English</a></li>",
            };
            format!(
                "<nav aria-label=\"{}\"><ul>{items}{other}</ul></nav>",
                attr(lang.t("Console", "控制台"))
            )
        }
    };
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{} · Revisit</title><style>{STYLE}</style></head><body><header class=\"bar\">{nav}</header><main><h1>{}</h1>{body}</main></body></html>",
        lang.tag(),
        esc(title),
        esc(title)
    )
}

pub fn login(lang: Lang, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "{error}<form method=\"post\" action=\"/console/login?lang={}\"><label for=\"token\">{}</label> \
<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required> \
<button class=\"primary\" type=\"submit\">{}</button></form>",
        lang.tag(),
        esc(lang.t("Supervisor's token (the admin token)", "主管令牌（管理员令牌）")),
        esc(lang.t("Sign in", "登录"))
    );
    layout(
        lang,
        None,
        lang.t("Revisit console", "Revisit 控制台"),
        &body,
    )
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{}%", charts::fmt(v)))
        .unwrap_or_else(|| "—".into())
}

/// A summary as a table of numbers (what the charts show, for everyone).
fn summary_table(lang: Lang, caption: &str, r: &SummaryReport) -> String {
    let rows: String = r
        .rows
        .iter()
        .map(|row| {
            format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&row.group),
                row.issued,
                row.answers,
                charts::fmt(row.response_rate_pct),
                pct(row.csat_pct),
                row.nps.map(charts::fmt).unwrap_or_else(|| "—".into())
            )
        })
        .collect();
    format!(
        "<table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
<th scope=\"col\">{}</th><th scope=\"col\">CSAT%</th><th scope=\"col\">NPS</th></tr></thead><tbody>{rows}</tbody></table>",
        esc(caption),
        esc(lang.t("Group", "分组")),
        esc(lang.t("Sent", "已发送")),
        esc(lang.t("Answers", "回答")),
        esc(lang.t("Response rate %", "回复率 %")),
    )
}

pub fn overview(lang: Lang, o: &Overview, from: NaiveDate, to: NaiveDate) -> String {
    let l = &o.loop_report;
    let figure =
        |name: &str, v: String| format!("<div>{}<strong>{}</strong></div>", esc(name), esc(&v));
    let n = |k: &str| {
        l[k].as_i64()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "0".into())
    };
    let p = |k: &str| {
        l[k].as_f64()
            .map(|v| format!("{}%", charts::fmt(v)))
            .unwrap_or_else(|| "—".into())
    };
    let total = &o.by_day.total;
    let figures = [
        figure(lang.t("CSAT%", "满意度 CSAT%"), pct(total.csat_pct)),
        figure(
            "NPS",
            total.nps.map(charts::fmt).unwrap_or_else(|| "—".into()),
        ),
        figure(
            lang.t("Response rate", "回复率"),
            format!("{}%", charts::fmt(total.response_rate_pct)),
        ),
        figure(lang.t("Callbacks created", "已创建回访"), n("created")),
        figure(
            lang.t("Closed within deadline", "按时关闭"),
            p("closed_within_deadline_pct"),
        ),
        figure(
            lang.t("Resolution rate", "解决率"),
            p("resolution_rate_pct"),
        ),
        figure(lang.t("Recovery rate", "挽回率"), p("recovery_rate_pct")),
        figure(lang.t("Open now", "当前未关闭"), o.open_now.to_string()),
        figure(
            lang.t("Breached now", "当前已超时"),
            o.breached_now.to_string(),
        ),
    ]
    .concat();
    let csat_points: Vec<(String, Option<f64>)> = o
        .by_day
        .rows
        .iter()
        .map(|r| (r.group.clone(), r.csat_pct))
        .collect();
    let nps_points: Vec<(String, Option<f64>)> = o
        .by_day
        .rows
        .iter()
        .map(|r| (r.group.clone(), r.nps))
        .collect();
    let per = |r: &SummaryReport| -> Vec<(String, f64)> {
        r.rows
            .iter()
            .map(|row| (row.group.clone(), row.answers as f64))
            .collect()
    };
    let period = format!(
        "<form method=\"get\" action=\"/console\"><input type=\"hidden\" name=\"lang\" value=\"{}\">\
<label>{} <input type=\"date\" name=\"from\" value=\"{from}\"></label> <label>{} <input type=\"date\" name=\"to\" value=\"{to}\"></label> \
<button type=\"submit\">{}</button></form>",
        lang.tag(),
        esc(lang.t("From", "从")),
        esc(lang.t("to", "至")),
        esc(lang.t("Show", "显示"))
    );
    let body = format!(
        "{period}<section><h2>{}</h2><div class=\"figures\">{figures}</div></section>\
<section><h2>{}</h2><h3>CSAT%</h3>{}<h3>NPS</h3>{}<details><summary>{}</summary>{}</details></section>\
<section><h2>{}</h2>{}{}</section><section><h2>{}</h2>{}{}</section>",
        esc(lang.t("The period at a glance", "本期概况")),
        esc(lang.t("Day by day", "逐日")),
        charts::line(lang.t("CSAT% by day", "每日满意度 CSAT%"), &csat_points, (0.0, 100.0)),
        charts::line(lang.t("NPS by day", "每日 NPS"), &nps_points, (-100.0, 100.0)),
        esc(lang.t("The numbers, day by day", "逐日数字")),
        summary_table(lang, lang.t("By day", "按日"), &o.by_day),
        esc(lang.t("Answers by agent", "按员工的回答数")),
        charts::bars(lang.t("Answers by agent", "按员工的回答数"), &per(&o.by_agent)),
        summary_table(lang, lang.t("By agent", "按员工"), &o.by_agent),
        esc(lang.t("Answers by channel", "按渠道的回答数")),
        charts::bars(lang.t("Answers by channel", "按渠道的回答数"), &per(&o.by_channel)),
        summary_table(lang, lang.t("By channel", "按渠道"), &o.by_channel),
    );
    layout(
        lang,
        Some(Page::Overview),
        lang.t("Overview", "概览"),
        &body,
    )
}

pub fn callbacks(
    lang: Lang,
    tasks: &[CallbackTask],
    filter: &TaskFilter,
    now: DateTime<Utc>,
    notice: Option<&str>,
) -> String {
    let notice = notice
        .map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>", esc(n)))
        .unwrap_or_default();
    let reasons: String = TaskReason::ALL
        .iter()
        .map(|r| {
            let sel = if filter.reason == Some(*r) {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{0}\"{sel}>{0}</option>", r.as_str())
        })
        .collect();
    let check = |on: bool| if on { " checked" } else { "" };
    let form = format!(
        "<form method=\"get\" action=\"/console/callbacks\"><input type=\"hidden\" name=\"lang\" value=\"{}\">\
<label>{} <input name=\"owner\" value=\"{}\"></label> <label>{} <select name=\"reason\"><option value=\"\">—</option>{reasons}</select></label> \
<label><input type=\"checkbox\" name=\"breached\" value=\"1\"{}> {}</label> <label><input type=\"checkbox\" name=\"due_today\" value=\"1\"{}> {}</label> \
<button type=\"submit\">{}</button></form>",
        lang.tag(),
        esc(lang.t("Owner", "负责人")),
        attr(filter.owner.as_deref().unwrap_or("")),
        esc(lang.t("Reason", "原因")),
        check(filter.breached_only),
        esc(lang.t("breached only", "仅已超时")),
        check(filter.due_today),
        esc(lang.t("due today", "今日到期")),
        esc(lang.t("Filter", "筛选")),
    );
    let rows: String = tasks
        .iter()
        .map(|t| {
            let name = t.context.customer.name.as_deref().unwrap_or(&t.customer_id);
            let reasons: Vec<&str> = t.reasons.iter().map(|r| r.as_str()).collect();
            let due = if t.breached {
                format!("<span class=\"breached\">{} {}</span>", esc(&revisit_shared::date_text::minute(&t.due_by)), esc(lang.t("(breached)", "（已超时）")))
            } else {
                esc(&revisit_shared::date_text::minute(&t.due_by)).into_owned()
            };
            let left = (t.due_by - now).num_hours();
            format!(
                "<tr><th scope=\"row\"><a href=\"/console/callbacks/{}?lang={}\">{}</a></th><td>{}</td><td>{}</td><td>{due} UTC ({left} h)</td><td>{}</td>\
<td><form class=\"inline\" method=\"post\" action=\"/console/callbacks/{}/owner?lang={}\"><label>{} <input name=\"owner\" value=\"{}\" size=\"10\"></label> \
<button type=\"submit\">{}</button></form></td></tr>",
                attr(&t.task_id),
                lang.tag(),
                esc(name),
                esc(&reasons.join(", ")),
                t.priority,
                esc(&t.owner),
                attr(&t.task_id),
                lang.tag(),
                esc(lang.t("Owner", "负责人")),
                attr(&t.owner),
                esc(lang.t("Reassign", "转派")),
            )
        })
        .collect();
    let body = format!(
        "{notice}{form}<section><table><caption>{} ({})</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
<th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>{rows}</tbody></table>\
<p><a href=\"/console/export/callbacks.csv\">{}</a></p></section>",
        esc(lang.t("Callbacks not closed yet", "未关闭的回访")),
        tasks.len(),
        esc(lang.t("Customer", "客户")),
        esc(lang.t("Reasons", "原因")),
        esc(lang.t("Priority", "优先级")),
        esc(lang.t("Due", "截止")),
        esc(lang.t("Owner", "负责人")),
        esc(lang.t("Reassign", "转派")),
        esc(lang.t("Export all callbacks (CSV)", "导出全部回访（CSV）")),
    );
    layout(
        lang,
        Some(Page::Callbacks),
        lang.t("Callbacks", "回访任务"),
        &body,
    )
}

pub fn surveys(lang: Lang, day: NaiveDate, view: &SurveyDay, notice: Option<&str>) -> String {
    let notice = notice
        .map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>", esc(n)))
        .unwrap_or_default();
    let counts: String = [
        "planned",
        "deferred",
        "sending",
        "sent",
        "answered",
        "expired",
        "cancelled",
    ]
    .iter()
    .map(|s| {
        let n = view.counts.get(s).copied().unwrap_or(0);
        format!(
            "<div>{}<strong>{n}</strong></div>",
            esc(state_label(lang, s))
        )
    })
    .collect();
    let rows: String = view
        .surveys
        .iter()
        .map(|(s, answer)| survey_row(lang, day, s, answer.as_ref()))
        .collect();
    let body = format!(
        "{notice}<form method=\"get\" action=\"/console/surveys\"><input type=\"hidden\" name=\"lang\" value=\"{}\">\
<label>{} <input type=\"date\" name=\"day\" value=\"{day}\"></label> <button type=\"submit\">{}</button></form>\
<section><h2>{}</h2><div class=\"figures\">{counts}</div></section><section><table><caption>{}</caption><thead><tr>\
<th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
<th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>{rows}</tbody></table>\
<p><a href=\"/console/export/answers.csv\">{}</a></p></section>",
        lang.tag(),
        esc(lang.t("Due on", "到期日")),
        esc(lang.t("Show", "显示")),
        esc(lang.t("The pipeline", "问卷流程")),
        esc(lang.t("Surveys due that day", "当日到期的问卷")),
        esc(lang.t("Survey", "问卷")),
        esc(lang.t("Kind", "类型")),
        esc(lang.t("Customer", "客户")),
        esc(lang.t("State", "状态")),
        esc(lang.t("Held back for", "暂缓原因")),
        esc(lang.t("Last step", "最近一步")),
        esc(lang.t("Answer", "回答")),
        esc(lang.t("Actions", "操作")),
        esc(lang.t("Export the answers of the last 28 days (CSV)", "导出最近 28 天的回答（CSV）")),
    );
    layout(lang, Some(Page::Surveys), lang.t("Surveys", "问卷"), &body)
}

/// A survey state in words.
fn state_label(lang: Lang, state: &str) -> &'static str {
    match state {
        "planned" => lang.t("planned", "已计划"),
        "deferred" => lang.t("deferred", "已暂缓"),
        "sending" => lang.t("sending", "发送中"),
        "sent" => lang.t("sent", "已发送"),
        "answered" => lang.t("answered", "已回答"),
        "expired" => lang.t("expired", "已过期"),
        _ => lang.t("cancelled", "已取消"),
    }
}

/// One survey's line: its state, why it was held back, its last step, its
/// answer, and the actions the rules allow (a planned survey only).
fn survey_row(lang: Lang, day: NaiveDate, s: &Survey, answer: Option<&Answer>) -> String {
    let reasons: Vec<String> = s
        .skip_reasons()
        .iter()
        .filter_map(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
        })
        .collect();
    // The whole timeline, folded under its last step.
    let step = |t: &revisit_shared::model::TimelineEntry| {
        let detail = t
            .detail
            .as_deref()
            .map(|d| format!(" — {d}"))
            .unwrap_or_default();
        format!(
            "{} {}{detail}",
            revisit_shared::date_text::month_day_minute(&t.at),
            t.what
        )
    };
    let steps: String = s
        .timeline
        .iter()
        .map(|t| format!("<li>{}</li>", esc(&step(t))))
        .collect();
    let last = s
        .timeline
        .last()
        .map(|t| {
            format!(
                "<details><summary>{}</summary><ol>{steps}</ol></details>",
                esc(&step(t))
            )
        })
        .unwrap_or_default();
    let said = answer
        .map(|a| {
            format!(
                "{}{}",
                a.score,
                a.comment
                    .as_deref()
                    .map(|c| format!(" — {c}"))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_default();
    let actions = if s.state == SurveyState::Planned {
        let form = |what: &str, label: &str| {
            format!(
                "<form class=\"inline\" method=\"post\" action=\"/console/surveys/{}/{what}?lang={}&amp;day={day}\"><button type=\"submit\">{}</button></form>",
                attr(&s.survey_id),
                lang.tag(),
                esc(label)
            )
        };
        format!(
            "{} {}",
            form("send", lang.t("Send now", "立即发送")),
            form("cancel", lang.t("Cancel", "取消"))
        )
    } else {
        String::new()
    };
    format!(
        "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{actions}</td></tr>",
        esc(&s.survey_id),
        esc(s.kind.as_str()),
        esc(&s.customer_id),
        esc(state_label(lang, state_name(s.state))),
        esc(&reasons.join(", ")),
        last,
        esc(&said),
    )
}

/// A reason a customer gave (a policy id), as the survey page labels it.
fn customer_reason(lang: Lang, id: &str) -> &str {
    if id == revisit_shared::report::OTHER_REASON {
        return lang.t("Other", "其他");
    }
    let customer_lang = match lang {
        Lang::En => revisit_shared::i18n::Lang::En,
        Lang::ZhHans => revisit_shared::i18n::Lang::ZhHans,
    };
    revisit_shared::i18n::texts(customer_lang)
        .reason(id)
        .unwrap_or(id)
}

pub fn findings(lang: Lang, r: &FindingsReport, from: NaiveDate, to: NaiveDate) -> String {
    let bars: Vec<(String, f64)> = r
        .departments
        .iter()
        .map(|d| (d.department.clone(), d.total as f64))
        .collect();
    let rows: String = r
        .departments
        .iter()
        .flat_map(|d| d.causes.iter().map(move |c| (d, c)))
        .filter(|(_, c)| c.total > 0)
        .map(|(d, c)| {
            let weeks: String = c
                .weeks
                .iter()
                .map(|w| {
                    format!(
                        "{}: {}",
                        w.week,
                        w.counts.low_scores + w.counts.complaints + w.counts.other
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ");
            let said: Vec<String> = c
                .customer_reasons
                .iter()
                .map(|(id, n)| format!("{} ({n})", customer_reason(lang, id)))
                .collect();
            format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&d.department),
                esc(&c.cause),
                c.total,
                esc(&weeks),
                esc(&said.join(" · "))
            )
        })
        .collect();
    let fixes: String = r
        .fixes
        .iter()
        .map(|f| {
            format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{} / {}%</td><td>{} / {}%</td></tr>",
                esc(&revisit_shared::date_text::day(f.fix.fixed_at.date_naive())),
                esc(&f.fix.cause),
                esc(&f.fix.change),
                charts::fmt(f.before.per_week),
                charts::fmt(f.before.share_pct),
                charts::fmt(f.after.per_week),
                charts::fmt(f.after.share_pct),
            )
        })
        .collect();
    let body = format!(
        "<p>{from} – {to}</p><section><h2>{}</h2>{}<table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th>\
<th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>{rows}</tbody></table></section>\
<section><h2>{}</h2><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
<th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>{fixes}</tbody></table></section>",
        esc(lang.t("Root causes by department", "按部门的问题根因")),
        charts::bars(lang.t("Closed repairs by department", "按部门的已关闭问题"), &bars),
        esc(lang.t("Causes, week by week", "各根因的每周数量")),
        esc(lang.t("Department", "部门")),
        esc(lang.t("Cause", "根因")),
        esc(lang.t("Total", "合计")),
        esc(lang.t("By week", "按周")),
        esc(lang.t("Customers said", "客户所选原因")),
        esc(lang.t("Fixes and their effect", "整改及其效果")),
        esc(lang.t("Fixed on", "整改日期")),
        esc(lang.t("Cause", "根因")),
        esc(lang.t("What changed", "整改内容")),
        esc(lang.t("Before: per week / share", "之前：每周 / 占比")),
        esc(lang.t("After: per week / share", "之后：每周 / 占比")),
    );
    layout(
        lang,
        Some(Page::Findings),
        lang.t("Findings", "问题根因"),
        &body,
    )
}

pub fn outbox(lang: Lang, held: &[HeldMessage]) -> String {
    let rows: String = held
        .iter()
        .map(|h| {
            let m = &h.message;
            let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
            let link = s("link");
            let link = if link.is_empty() {
                "—".to_string()
            } else {
                format!("<a href=\"{}\">{}</a>", attr(&link), esc(&link))
            };
            format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{link}</td></tr>",
                esc(&revisit_shared::date_text::minute(&h.received_at)),
                esc(&s("channel")),
                esc(&s("to")),
                esc(&s("text")),
            )
        })
        .collect();
    let body = format!(
        "<p>{}</p><section><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
<th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>{rows}</tbody></table></section>",
        esc(lang.t(
            "No sender is set (`sender_url`): what would have been sent is kept here, newest first, with its live link.",
            "尚未设置发送服务（sender_url）：本应发送的消息保存在这里（最新的在前），链接可直接打开。"
        )),
        esc(lang.t("Held at", "时间")),
        esc(lang.t("Channel", "渠道")),
        esc(lang.t("To", "收件人")),
        esc(lang.t("Text", "内容")),
        esc(lang.t("Link", "链接")),
    );
    layout(
        lang,
        Some(Page::Outbox),
        lang.t("Outbox (development)", "待发消息（开发）"),
        &body,
    )
}

/// One setting: its name, its value as shown, and whether it is the default.
pub struct Setting {
    pub name: String,
    pub value: String,
    pub is_default: bool,
}

pub fn settings(lang: Lang, groups: &[(&'static str, Vec<Setting>)]) -> String {
    let sections: String = groups
        .iter()
        .map(|(variable, settings)| {
            let rows: String = settings
                .iter()
                .map(|s| {
                    format!(
                        "<tr><th scope=\"row\">{}</th><td><code>{}</code></td><td>{}</td></tr>",
                        esc(&s.name),
                        esc(&s.value),
                        esc(if s.is_default { lang.t("default", "默认") } else { lang.t("set", "已设置") })
                    )
                })
                .collect();
            format!(
                "<section><h2><code>{}</code></h2><table class=\"settings\"><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
<th scope=\"col\">{}</th></tr></thead><tbody>{rows}</tbody></table></section>",
                esc(variable),
                esc(lang.t("Setting", "设置项")),
                esc(lang.t("Value", "值")),
                esc(lang.t("Source", "来源")),
            )
        })
        .collect();
    let body = format!(
        "<p>{}</p>{sections}",
        esc(lang.t(
            "Read-only: these come from Spin variables (see the README).",
            "只读：这些设置来自 Spin 变量（见 README）。"
        ))
    );
    layout(
        lang,
        Some(Page::Settings),
        lang.t("Settings", "设置"),
        &body,
    )
}

/// One callback with everything the caller reads before dialling, as
/// `GET /callbacks/:id` gives it (current contact, timeline, work order).
pub fn task(lang: Lang, t: &serde_json::Value) -> String {
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let row = |label: &str, value: String| {
        if value.is_empty() {
            String::new()
        } else {
            format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                esc(label),
                esc(&value)
            )
        }
    };
    let list = |v: &serde_json::Value, f: &dyn Fn(&serde_json::Value) -> String| -> String {
        let items: String = v
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| format!("<li>{}</li>", esc(&f(x))))
                    .collect()
            })
            .unwrap_or_default();
        if items.is_empty() {
            format!("<p>{}</p>", esc(lang.t("None.", "无。")))
        } else {
            format!("<ul>{items}</ul>")
        }
    };
    let c = &t["context"];
    let customer = &c["customer"];
    let answer = &c["answer"];
    let said = if answer.is_null() {
        String::new()
    } else {
        let picked: Vec<&str> = answer["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str())
            .map(|id| customer_reason(lang, id))
            .collect();
        match picked.is_empty() {
            true => format!("{} — {}", s(&answer["score"]), s(&answer["comment"])),
            false => format!(
                "{} — {} ({})",
                s(&answer["score"]),
                s(&answer["comment"]),
                picked.join(", ")
            ),
        }
    };
    let wo = &t["work_order"];
    let work_order = if wo.is_null() {
        String::new()
    } else {
        format!("{} ({})", s(&wo["work_order_id"]), s(&wo["state"]))
    };
    let orders: Vec<String> = t["orders"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    let who = [
        row(lang.t("Customer", "客户"), s(&customer["name"])),
        row(lang.t("Phone", "电话"), s(&t["phone"])),
        row(lang.t("E-mail", "邮箱"), s(&customer["email"])),
        row(
            lang.t("Their local time", "客户当地时间"),
            s(&t["customer_local_time"]),
        ),
        row(lang.t("State", "状态"), s(&t["state"])),
        row(lang.t("Owner", "负责人"), s(&t["owner"])),
        row(lang.t("Due", "截止"), s(&t["due_by"])),
        row(
            lang.t("Reasons", "原因"),
            t["reasons"]
                .as_array()
                .map(|a| a.iter().map(s).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
        ),
        row(lang.t("They said", "客户原话"), said),
        row(lang.t("Question", "问题"), s(&c["question"])),
        row(lang.t("Orders", "订单"), orders.join(", ")),
        row(lang.t("Work order", "工单"), work_order),
        row(lang.t("Root cause", "根本原因"), s(&t["root_cause"])),
        row(lang.t("Resolution", "处理结果"), s(&t["resolution"])),
    ]
    .concat();
    let body = format!(
        "<section><table>{who}</table></section><section><h2>{}</h2>{}</section><section><h2>{}</h2>{}</section>\
<section><h2>{}</h2>{}</section><section><h2>{}</h2>{}</section><section><h2>{}</h2>{}</section>\
<p><a href=\"/console/callbacks?lang={}\">{}</a></p>",
        esc(lang.t("Merged into this task", "合并到此任务")),
        list(&c["merged"], &|m| format!("{} · {} · {} {}", s(&m["at"]), s(&m["source_id"]), s(&m["order_id"]), s(&m["topic"]))),
        esc(lang.t("Their timeline", "客户经历")),
        list(&c["events"], &|e| format!("{} {} {} {}", s(&e["occurred_at"]), s(&e["type"]), s(&e["order_id"]), s(&e["topic"]))),
        esc(lang.t("Earlier answers", "以往评分")),
        list(&c["history"], &|a| format!("{} {} {}", s(&a["answered_at"]), s(&a["score"]), s(&a["comment"]))),
        esc(lang.t("Earlier callbacks", "以往回访")),
        list(&c["earlier_tasks"], &|e| format!("{} {} {}", s(&e["reason"]), s(&e["state"]), s(&e["resolution"]))),
        esc(lang.t("Attempts", "联系记录")),
        list(&t["attempts"], &|a| format!("{} {} {}", s(&a["at"]), s(&a["outcome"]), s(&a["note"]))),
        lang.tag(),
        esc(lang.t("All callbacks", "全部回访")),
    );
    layout(
        lang,
        Some(Page::Callbacks),
        &format!("{} {}", lang.t("Callback", "回访"), s(&t["task_id"])),
        &body,
    )
}

/// The answers of a period, filtered, with the customers' own words.
pub fn answers(
    lang: Lang,
    from: NaiveDate,
    to: NaiveDate,
    filter: &AnswerFilter,
    list: &[(Survey, Answer)],
) -> String {
    let check = if filter.low_only { " checked" } else { "" };
    let form = format!(
        "<form method=\"get\" action=\"/console/answers\"><input type=\"hidden\" name=\"lang\" value=\"{}\">\
<label>{} <input type=\"date\" name=\"from\" value=\"{from}\"></label> <label>{} <input type=\"date\" name=\"to\" value=\"{to}\"></label> \
<label>{} <input name=\"agent\" value=\"{}\"></label> <label>{} <input name=\"channel\" value=\"{}\"></label> \
<label><input type=\"checkbox\" name=\"low\" value=\"1\"{check}> {}</label> <button type=\"submit\">{}</button></form>",
        lang.tag(),
        esc(lang.t("From", "从")),
        esc(lang.t("to", "至")),
        esc(lang.t("Agent", "员工")),
        attr(filter.agent.as_deref().unwrap_or("")),
        esc(lang.t("Channel", "渠道")),
        attr(filter.channel.as_deref().unwrap_or("")),
        esc(lang.t("low scores only", "仅低分")),
        esc(lang.t("Filter", "筛选")),
    );
    let rows: String = list
        .iter()
        .map(|(s, a)| {
            format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&revisit_shared::date_text::minute(&a.answered_at)),
                esc(&s.customer_id),
                esc(a.kind.as_str()),
                esc(a.channel.as_str()),
                a.score,
                esc(a.comment.as_deref().unwrap_or("")),
                esc(s.agent_id.as_deref().unwrap_or("")),
            )
        })
        .collect();
    let body = format!(
        "{form}<section><table><caption>{} ({})</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
<th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead>\
<tbody>{rows}</tbody></table><p><a href=\"/console/export/answers.csv?from={from}&amp;to={to}\">{}</a></p></section>",
        esc(lang.t("Answers to the surveys due in the period", "本期到期问卷的回答")),
        list.len(),
        esc(lang.t("Answered", "回答时间")),
        esc(lang.t("Customer", "客户")),
        esc(lang.t("Kind", "类型")),
        esc(lang.t("Channel", "渠道")),
        esc(lang.t("Score", "评分")),
        esc(lang.t("Comment", "留言")),
        esc(lang.t("Agent", "员工")),
        esc(lang.t("Export these answers (CSV)", "导出这些回答（CSV）")),
    );
    layout(lang, Some(Page::Answers), lang.t("Answers", "回答"), &body)
}
