//! A submitted answer as the customer's form or an API client's JSON carries it.

use revisit_shared::spin as shell;
use revisit_shared::ApiError;
use serde::Deserialize;
use spin_sdk::http::Request;

#[derive(Deserialize)]
struct JsonAnswer {
    score: Option<serde_json::Value>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    reasons: Vec<String>,
}

pub struct Submitted {
    pub score: Option<String>,
    pub comment: Option<String>,
    pub reasons: Vec<String>,
    /// The survey page's step the form came from (`score`, `reasons`); none
    /// from an API client or a form of the seller's own.
    pub step: Option<String>,
    pub wants_json: bool,
}

pub fn parse_submission(req: &Request) -> Result<Submitted, ApiError> {
    let body = shell::body(req)?;
    let content_type = req
        .header("content-type")
        .and_then(|h| h.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let a: JsonAnswer = revisit_shared::error::parse_json(body)?;
        let score = a.score.map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
        return Ok(Submitted {
            score,
            comment: a.comment,
            reasons: a.reasons,
            step: None,
            wants_json: true,
        });
    }
    let mut s = Submitted {
        score: None,
        comment: None,
        reasons: Vec::new(),
        step: None,
        wants_json: false,
    };
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "score" => s.score = Some(v.into_owned()),
            "comment" => s.comment = Some(v.into_owned()),
            "reasons" => s.reasons.push(v.into_owned()),
            "step" => s.step = Some(v.into_owned()),
            _ => {}
        }
    }
    let accept = req.header("accept").and_then(|h| h.as_str()).unwrap_or("");
    s.wants_json = accept.contains("application/json") && !accept.contains("text/html");
    Ok(s)
}
