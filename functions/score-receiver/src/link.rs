//! Opening a survey link: the token checked, the survey read
//! (`flows::link::open_link`), the customer's record read when needed.

use std::cell::OnceCell;

use revisit_shared::flows::link::{open_link, refuse_after_rejection, LinkOpen};
use revisit_shared::i18n::{texts, Lang};
use revisit_shared::keys;
use revisit_shared::policy::LowScoreReasons;
use revisit_shared::signing::{purpose, LinkToken, PurposeKeys};
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::storage::StorageExt;
use revisit_shared::survey::{Contact, Survey};
use revisit_shared::ApiError;
use spin_sdk::http::{Request, Response};

use crate::page;
use crate::reply::too_many;

/// What a link leads to, once the token checks out: the survey (one read).
/// The customer's contact is read only when something needs it: a page in
/// their language, a callback's promise.
pub(crate) struct Opened {
    pub token: LinkToken,
    pub survey: Survey,
    pub store: SpinStore,
    /// The keys of the link secret (the token's, the device's).
    pub link_keys: PurposeKeys,
    contact: OnceCell<Contact>,
}

impl Opened {
    /// Count a post that recorded nothing; whether it is to be refused
    /// instead (`flows::link::refuse_after_rejection`).
    pub fn refuse_after_rejection(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        refuse_after_rejection(&self.store, &self.survey.survey_id, now)
    }

    /// The customer's contact record (read once; none stored: a bare one).
    /// A store failure is an error: a callback without the customer's name
    /// and phone would leave the caller guessing.
    /// Keep the customer's record read along with something else.
    pub fn remember_contact(&self, contact: Contact) {
        let _ = self.contact.set(contact);
    }

    pub fn contact(&self) -> Result<&Contact, ApiError> {
        if let Some(c) = self.contact.get() {
            return Ok(c);
        }
        let stored: Option<Contact> = self
            .store
            .get_json(&keys::contact(&self.survey.customer_id))?;
        Ok(self.contact.get_or_init(|| {
            stored.unwrap_or_else(|| Contact {
                customer_id: self.survey.customer_id.clone(),
                ..Default::default()
            })
        }))
    }

    /// The customer's zone (their record, else their phone's country, else
    /// the seller's default); UTC when neither rules nor record can be read.
    pub fn zone(&self) -> revisit_shared::zone::Zone {
        shell::contact_rules()
            .ok()
            .zip(self.contact().ok())
            .map(|(r, c)| r.place(c, shell::now()).tz)
            .unwrap_or_else(revisit_shared::zone::Zone::utc)
    }

    /// What the survey is about, in the customer's language and local date
    /// (none for a survey that does not know when it happened).
    pub fn about(&self) -> Option<String> {
        let s = &self.survey;
        let date = revisit_shared::date_text::day(s.occurred_on?);
        Some(texts(self.lang()).about(s.kind, s.order_id.as_deref(), &date))
    }

    /// The reasons `policy` offers after a low score on this survey,
    /// labelled in the customer's language: `(id, label)`.
    pub fn labelled(&self, policy: &LowScoreReasons) -> Vec<(String, String)> {
        let lang = self.lang();
        policy
            .reasons_for(self.survey.kind)
            .iter()
            .map(|id| (id.clone(), policy.reason_label(lang, id)))
            .collect()
    }

    /// The customer's language; English when their record cannot be read
    /// now (a page must still be shown).
    pub fn lang(&self) -> Lang {
        let locale = self.contact().ok().and_then(|c| c.locale.clone());
        Lang::from_locale(locale.as_deref())
    }
}

/// Decode the token and load the survey (`flows::link::open_link`); the
/// HTML error page otherwise. A network that keeps failing is told to wait
/// (`429`), so tokens cannot be guessed at speed.
pub fn open(req: &Request) -> Result<Opened, Response> {
    let not_found = || {
        let page = page::message(Lang::En, &crate::merchant(), texts(Lang::En).not_found);
        shell::html(404, page)
    };
    let store = SpinStore::open().map_err(|e| shell::error(&e))?;
    let now = shell::now();
    let keys = shell::purpose_keys("link_secret").map_err(|e| shell::error(&e))?;
    let token = shell::path_param(req, "token")
        .ok()
        .and_then(|t| LinkToken::decode(&t, &keys.key(purpose::LINK_TOKEN)));
    let client = req
        .header("spin-client-addr")
        .and_then(|h| h.as_str())
        .unwrap_or("");
    let opened = open_link(&store, token.as_ref(), client, now);
    match opened.map_err(|e| shell::error(&e.into()))? {
        LinkOpen::Open { survey } => Ok(Opened {
            token: token.expect("an open link had a token"),
            survey,
            store,
            link_keys: keys,
            contact: OnceCell::new(),
        }),
        LinkOpen::NotFound => Err(not_found()),
        LinkOpen::TooMany => Err(too_many(now)),
    }
}
