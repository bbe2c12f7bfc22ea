//! Customer-facing texts in the customer's language: en, zh-Hans, zh-Hant, es,
//! de, fr, ja, pt (fallback en). `{m}` stands for the merchant's name.

use crate::model::{Scale, SurveyKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhHans,
    ZhHant,
    Es,
    De,
    Fr,
    Ja,
    Pt,
}

pub const ALL_LANGS: [Lang; 8] = [
    Lang::En,
    Lang::ZhHans,
    Lang::ZhHant,
    Lang::Es,
    Lang::De,
    Lang::Fr,
    Lang::Ja,
    Lang::Pt,
];

impl Lang {
    /// The best supported language for a BCP 47 tag.
    pub fn from_locale(tag: Option<&str>) -> Lang {
        let tag = tag.unwrap_or("en").to_ascii_lowercase().replace('_', "-");
        let mut parts = tag.split('-');
        match parts.next().unwrap_or("") {
            "zh" => {
                let rest: Vec<&str> = parts.collect();
                if rest
                    .iter()
                    .any(|p| matches!(*p, "hant" | "tw" | "hk" | "mo"))
                {
                    Lang::ZhHant
                } else {
                    Lang::ZhHans
                }
            }
            "es" => Lang::Es,
            "de" => Lang::De,
            "fr" => Lang::Fr,
            "ja" => Lang::Ja,
            "pt" => Lang::Pt,
            _ => Lang::En,
        }
    }

    /// The BCP 47 tag for `lang=` attributes.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhHans => "zh-Hans",
            Lang::ZhHant => "zh-Hant",
            Lang::Es => "es",
            Lang::De => "de",
            Lang::Fr => "fr",
            Lang::Ja => "ja",
            Lang::Pt => "pt",
        }
    }
}

/// The reasons a customer can give for a low score that have built-in
/// labels in every language; a policy may name others with its own labels.
pub const REASON_IDS: [&str; 11] = [
    "late_delivery",
    "damaged",
    "not_as_described",
    "hard_to_use",
    "price",
    "not_fixed",
    "technician_late",
    "staff_attitude",
    "left_a_mess",
    "broke_again",
    "not_working",
];

/// All the texts of one language.
pub struct Texts {
    /// The message that carries the link: `{m}` merchant, `{k}` what is asked about.
    pub message: &'static str,
    /// The SMS: short enough for one segment with its link (`{m}` merchant).
    pub sms: &'static str,
    /// The SMS that acknowledges a missed call at once (`{m}` merchant).
    pub missed_call_ack: &'static str,
    pub nps_question: &'static str,
    pub csat_question: &'static str,
    pub comment_label: &'static str,
    pub submit: &'static str,
    pub thanks: &'static str,
    /// After a low answer: someone will call, within calling hours.
    pub thanks_low: &'static str,
    pub already_answered: &'static str,
    pub expired: &'static str,
    pub not_found: &'static str,
    pub not_likely: &'static str,
    pub very_likely: &'static str,
    /// The ends of the satisfaction (CSAT) scale, so nobody has to guess which is good.
    pub not_satisfied: &'static str,
    pub very_satisfied: &'static str,
    /// The reasons offered after a low score (step two of the page).
    pub reasons_legend: &'static str,
    /// `{score}`: the score chosen on step one, shown on step two.
    pub your_score: &'static str,
    /// Step two says the answer is not sent until its button is pressed.
    pub not_sent_yet: &'static str,
    /// What the survey is about: `{order}` and `{date}` (the customer's local date).
    pub about_order: &'static str,
    pub about_visit: &'static str,
    pub about_purchase: &'static str,
    /// The e-mail's line under its one-tap buttons, before the plain link.
    pub open_survey: &'static str,
    /// Labels of the built-in reasons, in the order of [`REASON_IDS`].
    pub reasons: [&'static str; REASON_IDS.len()],
    pub kinds: [&'static str; 4],
}

pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::En => &EN,
        Lang::ZhHans => &ZH_HANS,
        Lang::ZhHant => &ZH_HANT,
        Lang::Es => &ES,
        Lang::De => &DE,
        Lang::Fr => &FR,
        Lang::Ja => &JA,
        Lang::Pt => &PT,
    }
}

impl Texts {
    pub fn kind(&self, kind: SurveyKind) -> &'static str {
        self.kinds[match kind {
            SurveyKind::Service => 0,
            SurveyKind::Usage => 1,
            SurveyKind::Installation => 2,
            SurveyKind::Product => 3,
        }]
    }

    pub fn question(&self, scale: Scale, kind: SurveyKind, merchant: &str) -> String {
        let q = match scale {
            Scale::Nps => self.nps_question,
            Scale::Csat => self.csat_question,
        };
        q.replace("{m}", merchant).replace("{k}", self.kind(kind))
    }

    /// What a survey is about, so a customer with several orders or visits
    /// knows which one is meant: the order (or purchase) and its date for a
    /// product, the visit's date otherwise; `date` is the customer's own.
    pub fn about(&self, kind: SurveyKind, order: Option<&str>, date: &str) -> String {
        let text = match (kind, order) {
            (SurveyKind::Product, Some(order)) => self.about_order.replace("{order}", order),
            (SurveyKind::Product, None) => self.about_purchase.to_string(),
            _ => self.about_visit.to_string(),
        };
        text.replace("{date}", date)
    }

    /// The built-in label of reason `id`, if it has one.
    pub fn reason(&self, id: &str) -> Option<&'static str> {
        REASON_IDS
            .iter()
            .position(|r| *r == id)
            .map(|i| self.reasons[i])
    }

    pub fn message(&self, kind: SurveyKind, merchant: &str) -> String {
        self.message
            .replace("{m}", merchant)
            .replace("{k}", self.kind(kind))
    }
}

static EN: Texts = Texts {
    missed_call_ack: "{m}: sorry we missed your call. We will call you back within the hour.",
    message: "{m}: how was {k}? One tap tells us:",
    sms: "{m}: how did we do? Tap to rate:",
    nps_question: "How likely are you to recommend {m} to a friend?",
    csat_question: "How satisfied are you with {k}?",
    comment_label: "Anything you want to tell us? (optional)",
    submit: "Send",
    thanks: "Thank you! Your answer was recorded.",
    thanks_low: "Thank you, and we are sorry. Someone from our team will call you by {when}, at a reasonable hour.",
    already_answered: "You already answered this survey. This is what we received:",
    expired: "This survey link has expired. Thank you anyway.",
    not_found: "This survey link is not valid.",
    not_likely: "Not likely",
    very_likely: "Very likely",
    not_satisfied: "Very dissatisfied",
    very_satisfied: "Very satisfied",
    reasons_legend: "What went wrong? Choose any that apply.",
    your_score: "Your score: {score}",
    not_sent_yet: "Not sent yet: press the button below to finish.",
    about_order: "About order {order} of {date}",
    about_visit: "About our visit on {date}",
    about_purchase: "About your purchase of {date}",
    open_survey: "Buttons not working? Open the survey:",
    reasons: ["Late delivery", "Damaged or faulty", "Not as described", "Hard to use", "Price", "Problem not fixed", "Technician came late", "Staff attitude", "Left a mess", "Broke again", "Does not work"],
    kinds: ["our service", "the product in use", "the installation", "your order"],
};

static ZH_HANS: Texts = Texts {
    missed_call_ack: "{m}：抱歉未能接听您的来电，我们将在一小时内回电。",
    message: "{m}：{k}满意吗？点一下告诉我们：",
    sms: "{m}回访，请评分：",
    nps_question: "您有多大可能向朋友推荐{m}？",
    csat_question: "您对{k}满意吗？",
    comment_label: "还有什么想告诉我们的吗？（选填）",
    submit: "提交",
    thanks: "谢谢！您的评价已记录。",
    thanks_low: "谢谢，也非常抱歉。我们的同事会在{when}之前、在合适的时间给您回电。",
    already_answered: "您已经回答过这份问卷。我们收到的是：",
    expired: "此问卷链接已过期。仍然感谢您。",
    not_found: "此问卷链接无效。",
    not_likely: "不太可能",
    very_likely: "非常可能",
    not_satisfied: "非常不满意",
    very_satisfied: "非常满意",
    reasons_legend: "哪里没做好？可多选。",
    your_score: "您的评分：{score}",
    not_sent_yet: "尚未发送，请点击下方按钮完成。",
    about_order: "关于订单 {order}（{date}）",
    about_visit: "关于 {date} 的上门服务",
    about_purchase: "关于您 {date} 的购买",
    open_survey: "按钮无法点击？打开问卷：",
    reasons: [
        "送货延迟",
        "损坏或有故障",
        "与描述不符",
        "难以使用",
        "价格",
        "问题未解决",
        "技师迟到",
        "服务态度",
        "留下脏乱",
        "再次损坏",
        "无法使用",
    ],
    kinds: ["本次服务", "产品使用", "安装", "您的订单"],
};

static ZH_HANT: Texts = Texts {
    missed_call_ack: "{m}：抱歉未能接聽您的來電，我們將在一小時內回電。",
    message: "{m}：{k}滿意嗎？點一下告訴我們：",
    sms: "{m}回訪，請評分：",
    nps_question: "您有多大可能向朋友推薦{m}？",
    csat_question: "您對{k}滿意嗎？",
    comment_label: "還有什麼想告訴我們的嗎？（選填）",
    submit: "提交",
    thanks: "謝謝！您的評價已記錄。",
    thanks_low: "謝謝，也非常抱歉。我們的同事會在{when}之前、在合適的時間給您回電。",
    already_answered: "您已經回答過這份問卷。我們收到的是：",
    expired: "此問卷連結已過期。仍然感謝您。",
    not_found: "此問卷連結無效。",
    not_likely: "不太可能",
    very_likely: "非常可能",
    not_satisfied: "非常不滿意",
    very_satisfied: "非常滿意",
    reasons_legend: "哪裡沒做好？可複選。",
    your_score: "您的評分：{score}",
    not_sent_yet: "尚未送出，請按下方按鈕完成。",
    about_order: "關於訂單 {order}（{date}）",
    about_visit: "關於 {date} 的到府服務",
    about_purchase: "關於您 {date} 的購買",
    open_survey: "按鈕無法點選？開啟問卷：",
    reasons: [
        "送貨延遲",
        "損壞或有故障",
        "與描述不符",
        "難以使用",
        "價格",
        "問題未解決",
        "技師遲到",
        "服務態度",
        "留下髒亂",
        "再次損壞",
        "無法使用",
    ],
    kinds: ["本次服務", "產品使用", "安裝", "您的訂單"],
};

static ES: Texts = Texts {
    missed_call_ack: "{m}: perdone, no pudimos atender su llamada. Le llamaremos en menos de una hora.",
    message: "{m}: ¿qué tal {k}? Díganoslo con un toque:",
    sms: "{m}: ¿qué tal? Califique el servicio:",
    nps_question: "¿Qué probabilidad hay de que recomiende {m} a un amigo?",
    csat_question: "¿Qué tan satisfecho está con {k}?",
    comment_label: "¿Algo que quiera contarnos? (opcional)",
    submit: "Enviar",
    thanks: "¡Gracias! Hemos registrado su respuesta.",
    thanks_low: "Gracias, y lo sentimos. Alguien de nuestro equipo le llamará antes de {when}, a una hora razonable.",
    already_answered: "Ya respondió esta encuesta. Esto es lo que recibimos:",
    expired: "Este enlace de encuesta ha caducado. Gracias de todos modos.",
    not_found: "Este enlace de encuesta no es válido.",
    not_likely: "Poco probable",
    very_likely: "Muy probable",
    not_satisfied: "Muy insatisfecho",
    very_satisfied: "Muy satisfecho",
    reasons_legend: "¿Qué salió mal? Elija todas las que correspondan.",
    your_score: "Su puntuación: {score}",
    not_sent_yet: "Aún no se ha enviado: pulse el botón de abajo para terminar.",
    about_order: "Sobre el pedido {order} del {date}",
    about_visit: "Sobre nuestra visita del {date}",
    about_purchase: "Sobre su compra del {date}",
    open_survey: "¿Los botones no funcionan? Abra la encuesta:",
    reasons: ["Entrega tardía", "Dañado o defectuoso", "No es como se describía", "Difícil de usar", "Precio", "Problema no resuelto", "El técnico llegó tarde", "Trato del personal", "Dejaron suciedad", "Se volvió a averiar", "No funciona"],
    kinds: ["nuestro servicio", "el producto en uso", "la instalación", "su pedido"],
};

static DE: Texts = Texts {
    missed_call_ack: "{m}: Entschuldigung, wir haben Ihren Anruf verpasst. Wir rufen Sie innerhalb einer Stunde zurück.",
    message: "{m}: Wie war {k}? Ein Tipp genügt:",
    sms: "{m}: Wie war es? Bewerten Sie uns:",
    nps_question: "Wie wahrscheinlich empfehlen Sie {m} weiter?",
    csat_question: "Wie zufrieden sind Sie mit {k}?",
    comment_label: "Möchten Sie uns noch etwas sagen? (optional)",
    submit: "Senden",
    thanks: "Danke! Ihre Antwort ist gespeichert.",
    thanks_low: "Danke, und es tut uns leid. Jemand aus unserem Team ruft Sie bis {when} zu einer angemessenen Uhrzeit an.",
    already_answered: "Sie haben diese Umfrage schon beantwortet. Das haben wir erhalten:",
    expired: "Dieser Umfragelink ist abgelaufen. Trotzdem danke.",
    not_found: "Dieser Umfragelink ist ungültig.",
    not_likely: "Unwahrscheinlich",
    very_likely: "Sehr wahrscheinlich",
    not_satisfied: "Sehr unzufrieden",
    very_satisfied: "Sehr zufrieden",
    reasons_legend: "Was lief schief? Wählen Sie alles Zutreffende.",
    your_score: "Ihre Bewertung: {score}",
    not_sent_yet: "Noch nicht gesendet: Drücken Sie zum Abschluss die Schaltfläche unten.",
    about_order: "Zur Bestellung {order} vom {date}",
    about_visit: "Zu unserem Besuch am {date}",
    about_purchase: "Zu Ihrem Kauf vom {date}",
    open_survey: "Schaltflächen funktionieren nicht? Umfrage öffnen:",
    reasons: ["Späte Lieferung", "Beschädigt oder defekt", "Nicht wie beschrieben", "Schwer zu bedienen", "Preis", "Problem nicht behoben", "Techniker kam zu spät", "Verhalten des Personals", "Unordnung hinterlassen", "Wieder kaputt", "Funktioniert nicht"],
    kinds: ["unser Service", "das Produkt im Einsatz", "die Installation", "Ihre Bestellung"],
};

static FR: Texts = Texts {
    missed_call_ack: "{m} : désolés d'avoir manqué votre appel. Nous vous rappelons dans l'heure.",
    message: "{m} : comment était {k} ? Un clic suffit :",
    sms: "{m} : votre avis compte :",
    nps_question: "Recommanderiez-vous {m} à un ami ?",
    csat_question: "Êtes-vous satisfait de {k} ?",
    comment_label: "Quelque chose à nous dire ? (facultatif)",
    submit: "Envoyer",
    thanks: "Merci ! Votre réponse est enregistrée.",
    thanks_low: "Merci, et nous sommes désolés. Quelqu'un de notre équipe vous appellera avant {when}, à une heure raisonnable.",
    already_answered: "Vous avez déjà répondu à ce questionnaire. Voici ce que nous avons reçu :",
    expired: "Ce lien de questionnaire a expiré. Merci quand même.",
    not_found: "Ce lien de questionnaire n'est pas valide.",
    not_likely: "Peu probable",
    very_likely: "Très probable",
    not_satisfied: "Très insatisfait",
    very_satisfied: "Très satisfait",
    reasons_legend: "Qu’est-ce qui n’a pas été ? Choisissez tout ce qui s’applique.",
    your_score: "Votre note : {score}",
    not_sent_yet: "Pas encore envoyé : appuyez sur le bouton ci-dessous pour terminer.",
    about_order: "À propos de la commande {order} du {date}",
    about_visit: "À propos de notre visite du {date}",
    about_purchase: "À propos de votre achat du {date}",
    open_survey: "Les boutons ne fonctionnent pas ? Ouvrez l’enquête :",
    reasons: ["Livraison en retard", "Endommagé ou défectueux", "Non conforme à la description", "Difficile à utiliser", "Prix", "Problème non résolu", "Technicien en retard", "Attitude du personnel", "Désordre laissé", "Nouvelle panne", "Ne fonctionne pas"],
    kinds: ["notre service", "le produit à l'usage", "l'installation", "votre commande"],
};

static JA: Texts = Texts {
    missed_call_ack: "{m}：お電話に出られず申し訳ありません。1時間以内に折り返しお電話いたします。",
    message: "{m}：{k}はいかがでしたか？ワンタップで回答：",
    sms: "{m}アンケート：",
    nps_question: "{m}を友人に勧める可能性はどのくらいですか？",
    csat_question: "{k}にどのくらい満足していますか？",
    comment_label: "ご意見があればお書きください（任意）",
    submit: "送信",
    thanks: "ありがとうございます。回答を記録しました。",
    thanks_low: "ありがとうございます。ご不便をおかけし申し訳ありません。{when}までに適切な時間に担当者からお電話します。",
    already_answered: "このアンケートには回答済みです。受け取った内容：",
    expired: "このアンケートのリンクは期限切れです。ありがとうございました。",
    not_found: "このアンケートのリンクは無効です。",
    not_likely: "可能性は低い",
    very_likely: "可能性は高い",
    not_satisfied: "とても不満",
    very_satisfied: "とても満足",
    reasons_legend: "何が問題でしたか？当てはまるものをすべて選んでください。",
    your_score: "あなたの評価：{score}",
    not_sent_yet: "まだ送信されていません。下のボタンを押して完了してください。",
    about_order: "ご注文 {order}（{date}）について",
    about_visit: "{date} の訪問について",
    about_purchase: "{date} のご購入について",
    open_survey: "ボタンが使えない場合は、こちらからアンケートを開いてください：",
    reasons: ["配送の遅れ", "破損・不良", "説明と違う", "使いにくい", "価格", "問題が解決していない", "技術者の遅刻", "スタッフの態度", "片付けられていない", "再び故障した", "動かない"],
    kinds: ["サービス", "製品の使用感", "設置", "ご注文"],
};

static PT: Texts = Texts {
    missed_call_ack: "{m}: desculpe, não atendemos a sua chamada. Ligamos de volta dentro de uma hora.",
    message: "{m}: como foi {k}? Responda com um toque:",
    sms: "{m}: como foi? Avalie:",
    nps_question: "Qual a probabilidade de recomendar {m} a um amigo?",
    csat_question: "Qual o seu grau de satisfação com {k}?",
    comment_label: "Algo que queira nos dizer? (opcional)",
    submit: "Enviar",
    thanks: "Obrigado! A sua resposta foi registada.",
    thanks_low: "Obrigado, e pedimos desculpa. Alguém da nossa equipa vai ligar-lhe até {when}, a uma hora razoável.",
    already_answered: "Já respondeu a este inquérito. Foi isto que recebemos:",
    expired: "Este link de inquérito expirou. Obrigado na mesma.",
    not_found: "Este link de inquérito não é válido.",
    not_likely: "Pouco provável",
    very_likely: "Muito provável",
    not_satisfied: "Muito insatisfeito",
    very_satisfied: "Muito satisfeito",
    reasons_legend: "O que correu mal? Escolha todas as opções aplicáveis.",
    your_score: "A sua pontuação: {score}",
    not_sent_yet: "Ainda não enviado: toque no botão abaixo para concluir.",
    about_order: "Sobre a encomenda {order} de {date}",
    about_visit: "Sobre a nossa visita de {date}",
    about_purchase: "Sobre a sua compra de {date}",
    open_survey: "Os botões não funcionam? Abra o inquérito:",
    reasons: ["Entrega atrasada", "Danificado ou com defeito", "Diferente do descrito", "Difícil de usar", "Preço", "Problema não resolvido", "Técnico atrasado", "Atitude da equipa", "Deixaram sujidade", "Avariou de novo", "Não funciona"],
    kinds: ["o nosso serviço", "o produto em uso", "a instalação", "a sua encomenda"],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_tags_resolve() {
        assert_eq!(Lang::from_locale(Some("zh-CN")), Lang::ZhHans);
        assert_eq!(Lang::from_locale(Some("zh-Hant-TW")), Lang::ZhHant);
        assert_eq!(Lang::from_locale(Some("zh_HK")), Lang::ZhHant);
        assert_eq!(Lang::from_locale(Some("pt-BR")), Lang::Pt);
        assert_eq!(Lang::from_locale(Some("de-AT")), Lang::De);
        assert_eq!(Lang::from_locale(Some("ko-KR")), Lang::En);
        assert_eq!(Lang::from_locale(None), Lang::En);
    }

    #[test]
    fn every_language_has_every_text() {
        for lang in ALL_LANGS {
            let t = texts(lang);
            assert!(
                t.question(Scale::Nps, SurveyKind::Product, "Shop")
                    .contains("Shop"),
                "{lang:?}"
            );
            assert!(t.message(SurveyKind::Product, "Shop").contains("Shop"));
            assert!(t.thanks_low.contains("{when}"), "{lang:?}");
            assert!(t.your_score.contains("{score}"), "{lang:?}");
            assert!(t.about_order.contains("{order}") && t.about_order.contains("{date}"));
            assert!(t.about_visit.contains("{date}") && t.about_purchase.contains("{date}"));
            assert_eq!(t.reason("damaged").is_some(), true, "{lang:?}");
            let mut labels = t.reasons.to_vec();
            labels.sort();
            labels.dedup();
            assert_eq!(
                labels.len(),
                REASON_IDS.len(),
                "{lang:?}: two reasons read alike"
            );
        }
    }
}
