//! Every component's public routes, exactly as `spin.toml` declares them.
//! Components dispatch on these (Spin's `spin-matched-route` header) and on
//! nothing else; `shared/tests/routes.rs` checks this table against
//! `spin.toml` both ways, and that no component dispatches on a literal.

/// `survey-link-issuer`: events in, survey links out.
pub mod issuer {
    pub const EVENTS: &str = "/events";
    pub const SHOPIFY: &str = "/webhooks/shopify";
    pub const WOOCOMMERCE: &str = "/webhooks/woocommerce";
    pub const TICK: &str = "/issuer/tick";
    pub const SURVEY: &str = "/surveys/:survey_id";
    pub const ALL: &[&str] = &[EVENTS, SHOPIFY, WOOCOMMERCE, TICK, SURVEY];
}

/// `score-receiver`: the customer's page and answer, reports, erasure.
pub mod receiver {
    pub const LINK: &str = "/s/:token";
    pub const SUMMARY: &str = "/reports/summary";
    pub const INTEGRITY: &str = "/reports/integrity";
    pub const CUSTOMER: &str = "/customers/:customer_id";
    pub const FINDINGS_REPORT: &str = "/reports/findings";
    pub const FIXES: &str = "/findings/fixes";
    pub const ALL: &[&str] = &[LINK, SUMMARY, INTEGRITY, CUSTOMER, FINDINGS_REPORT, FIXES];
}

/// `low-score-escalator`: callback tasks. It also has a private route, reached
/// only by service chaining (see `spin::CHAINED_ROUTE`).
pub mod escalator {
    pub const CALLBACKS: &str = "/callbacks";
    pub const CALLBACK: &str = "/callbacks/:task_id";
    pub const OUTCOME: &str = "/callbacks/:task_id/outcome";
    pub const CLAIM: &str = "/callbacks/:task_id/claim";
    pub const TICK: &str = "/escalator/tick";
    pub const LOOP_REPORT: &str = "/reports/loop";
    pub const DELIVERIES: &str = "/webhooks/deliveries";
    pub const ALL: &[&str] = &[
        CALLBACKS,
        CALLBACK,
        OUTCOME,
        CLAIM,
        TICK,
        LOOP_REPORT,
        DELIVERIES,
    ];
    /// The path of the private hand-off endpoint, under the chained route.
    pub const ESCALATIONS_PATH: &str = "/internal/escalations";
}

/// `callback-window-checker`: may we call now, and the agents' queue.
pub mod window {
    pub const WINDOW: &str = "/callbacks/:task_id/window";
    pub const QUEUE: &str = "/queue";
    pub const QUEUE_PAGE: &str = "/queue/page";
    pub const LOGIN: &str = "/queue/login";
    pub const ALL: &[&str] = &[WINDOW, QUEUE, QUEUE_PAGE, LOGIN];
}

/// `supervisor-console`: the supervisor's pages. It also has a private
/// route, the development outbox (see `spin::CHAINED_ROUTE`).
pub mod console {
    pub const ROOT: &str = "/";
    pub const OVERVIEW: &str = "/console";
    pub const LOGIN: &str = "/console/login";
    pub const CALLBACKS: &str = "/console/callbacks";
    pub const TASK: &str = "/console/callbacks/:task_id";
    pub const REASSIGN: &str = "/console/callbacks/:task_id/owner";
    pub const SURVEYS: &str = "/console/surveys";
    pub const CANCEL_SURVEY: &str = "/console/surveys/:survey_id/cancel";
    pub const SEND_SURVEY: &str = "/console/surveys/:survey_id/send";
    pub const ANSWERS: &str = "/console/answers";
    pub const FINDINGS: &str = "/console/findings";
    pub const OUTBOX: &str = "/console/outbox";
    pub const SETTINGS: &str = "/console/settings";
    pub const EXPORT_CALLBACKS: &str = "/console/export/callbacks.csv";
    pub const EXPORT_ANSWERS: &str = "/console/export/answers.csv";
    pub const ALL: &[&str] = &[
        ROOT,
        OVERVIEW,
        LOGIN,
        CALLBACKS,
        TASK,
        REASSIGN,
        SURVEYS,
        ANSWERS,
        CANCEL_SURVEY,
        SEND_SURVEY,
        EXPORT_ANSWERS,
        FINDINGS,
        OUTBOX,
        SETTINGS,
        EXPORT_CALLBACKS,
    ];
    /// The path of the development outbox, under the chained route.
    pub const DEV_OUTBOX_PATH: &str = "/dev-outbox";
}

/// Each component of `spin.toml` with its public routes.
pub const COMPONENTS: &[(&str, &[&str])] = &[
    ("survey-link-issuer", issuer::ALL),
    ("score-receiver", receiver::ALL),
    ("low-score-escalator", escalator::ALL),
    ("callback-window-checker", window::ALL),
    ("supervisor-console", console::ALL),
];
