//! Message texts per language: an instance's own templates, the built-in code message, the
//! `locale` request field, and the WebOTP last line that lets browsers autofill SMS codes.
//!
//! Locale tags are matched the way users write them, not the way BCP 47 negotiates them:
//! case-insensitively, `_` as `-`, then by language alone, then English. Built-in texts use
//! the plural of "minutes" (or a form that reads for any count); callers round lifetimes up
//! to whole minutes, so "1 minutes" is possible in English and accepted as the cost of
//! templates without plural rules. The WebOTP line follows the WebOTP and Android SMS
//! Retriever format (`@<host> #<code>` as the last line); the SMS Retriever's 11-character
//! app hash is not added here.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Templates by locale tag (`"en"`, `"pt-BR"`), each with `{code}`, `{name}`, `{minutes}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Texts(pub BTreeMap<String, String>);

impl Texts {
    /// The template for `locale`: exact tag, then its language, then `en`, else `None`.
    pub fn pick(&self, locale: Option<&str>) -> Option<&str> {
        pick_in(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())), locale)
    }
}

/// The built-in code messages, by language.
const BUILTIN_CODE_TEXTS: &[(&str, &str)] = &[
    (
        "en",
        "{code} is your {name} verification code. It expires in {minutes} minutes.",
    ),
    (
        "ar",
        "{code} هو رمز التحقق الخاص بك لدى {name}. تنتهي صلاحيته خلال {minutes} دقيقة.",
    ),
    (
        "de",
        "{code} ist dein Bestätigungscode für {name}. Er läuft in {minutes} Minuten ab.",
    ),
    (
        "es",
        "{code} es tu código de verificación de {name}. Caduca en {minutes} minutos.",
    ),
    (
        "fr",
        "{code} est votre code de vérification {name}. Il expire dans {minutes} minutes.",
    ),
    (
        "id",
        "{code} adalah kode verifikasi {name} Anda. Kode ini berlaku selama {minutes} menit.",
    ),
    (
        "it",
        "{code} è il tuo codice di verifica {name}. Scade tra {minutes} minuti.",
    ),
    (
        "nl",
        "{code} is je verificatiecode voor {name}. De code verloopt over {minutes} minuten.",
    ),
    (
        "pt",
        "{code} é o seu código de verificação para {name}. Expira em {minutes} minutos.",
    ),
    (
        "ru",
        "{code} — ваш код подтверждения {name}. Он действует {minutes} мин.",
    ),
];

/// The built-in code message template for `locale` (same fallback as [`Texts::pick`]),
/// English when nothing matches.
pub fn builtin_code_text(locale: Option<&str>) -> &'static str {
    pick_in(BUILTIN_CODE_TEXTS.iter().copied(), locale).unwrap_or(BUILTIN_CODE_TEXTS[0].1)
}

/// True when two tags are equal ignoring ASCII case and with `_` read as `-`.
fn same_tag(a: &str, b: &str) -> bool {
    let norm = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| norm(x) == norm(y))
}

pub(crate) fn pick_in<'a, I>(entries: I, locale: Option<&str>) -> Option<&'a str>
where
    I: Iterator<Item = (&'a str, &'a str)> + Clone,
{
    let find = |tag: &str| {
        entries
            .clone()
            .find(|(k, _)| same_tag(k, tag))
            .map(|(_, v)| v)
    };
    let locale = locale.map(str::trim).filter(|l| !l.is_empty());
    locale
        .and_then(find)
        .or_else(|| {
            locale
                .and_then(|l| l.split(['-', '_']).next())
                .and_then(find)
        })
        .or_else(|| find("en"))
}

/// Longest tag accepted (BCP 47's recommended buffer size).
const LOCALE_MAX: usize = 35;

/// A locale tag normalized (`pt_br` -> `pt-BR`, `ZH-hant` -> `zh-Hant`, `es-419`): a 2-3
/// letter language, then optionally a 4-letter script, then optionally a 2-letter or 3-digit
/// region, separated by `-` or `_`; `None` for anything else.
pub fn parse_locale(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s.len() > LOCALE_MAX {
        return None;
    }
    let mut parts = s.split(['-', '_']);
    let language = parts.next()?;
    if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let mut out = language.to_ascii_lowercase();
    let mut next = parts.next();
    if let Some(script) =
        next.filter(|p| p.len() == 4 && p.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        out.push('-');
        out.push_str(&script[..1].to_ascii_uppercase());
        out.push_str(&script[1..].to_ascii_lowercase());
        next = parts.next();
    }
    if let Some(region) = next {
        let letters = region.len() == 2 && region.bytes().all(|b| b.is_ascii_alphabetic());
        let digits = region.len() == 3 && region.bytes().all(|b| b.is_ascii_digit());
        if !(letters || digits) {
            return None;
        }
        out.push('-');
        out.push_str(&region.to_ascii_uppercase());
    }
    parts.next().is_none().then_some(out)
}

/// True for a hostname: dot-separated labels of 1-63 ASCII letters, digits and inner `-`,
/// 253 characters at most; no scheme, port, path or trailing dot.
fn is_hostname(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The WebOTP / SMS Retriever line `@{domain} #{code}` (domain lowercased); `None` when the
/// domain is not a bare hostname or the code is empty or holds whitespace or `#`/`@`.
pub fn webotp_line(domain: &str, code: &str) -> Option<String> {
    let code_ok =
        !code.is_empty() && !code.contains(|c: char| c.is_whitespace() || c == '#' || c == '@');
    (is_hostname(domain) && code_ok).then(|| format!("@{} #{code}", domain.to_ascii_lowercase()))
}

/// `text` with the WebOTP line as its last line after a blank line, when `domain` is a valid
/// hostname; `text` unchanged otherwise, or when it already ends with that line.
pub fn with_webotp_line(text: &str, domain: Option<&str>, code: &str) -> String {
    let Some(line) = domain.and_then(|d| webotp_line(d, code)) else {
        return text.to_owned();
    };
    let body = text.trim_end();
    if body.is_empty() {
        line
    } else if body.lines().last().map(str::trim) == Some(line.as_str()) {
        text.to_owned()
    } else {
        format!("{body}\n\n{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::template::render;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn texts(entries: &[(&str, &str)]) -> Texts {
        Texts(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn pick_prefers_the_exact_tag_in_any_case_and_separator() {
        let t = texts(&[("pt-BR", "br"), ("pt", "pt"), ("en", "en")]);
        for locale in ["pt-BR", "pt_br", "PT-br", " pt-BR "] {
            assert_eq!(t.pick(Some(locale)), Some("br"), "{locale}");
        }
        assert_eq!(texts(&[("pt_br", "br")]).pick(Some("pt-BR")), Some("br"));
    }

    #[test]
    fn pick_falls_back_to_the_language_then_english_then_nothing() {
        let t = texts(&[("pt", "pt"), ("en", "en"), ("zh-Hant", "hant")]);
        assert_eq!(t.pick(Some("pt-PT")), Some("pt"));
        assert_eq!(t.pick(Some("pt_AO")), Some("pt"));
        assert_eq!(t.pick(Some("zh-hant")), Some("hant"));
        assert_eq!(t.pick(Some("zh-Hans")), Some("en"));
        assert_eq!(t.pick(Some("de")), Some("en"));
        assert_eq!(t.pick(Some("")), Some("en"));
        assert_eq!(t.pick(None), Some("en"));
        // A regional key does not answer for its bare language.
        assert_eq!(texts(&[("pt-BR", "br")]).pick(Some("pt")), None);
        assert_eq!(texts(&[("fr", "fr")]).pick(Some("de")), None);
        assert_eq!(Texts::default().pick(Some("en")), None);
    }

    #[test]
    fn texts_are_a_plain_json_object() {
        let t: Texts = serde_json::from_str(r#"{"en": "{code}", "ar": "{code} ar"}"#).unwrap();
        assert_eq!(t.pick(Some("ar")), Some("{code} ar"));
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"ar":"{code} ar","en":"{code}"}"#
        );
    }

    #[test]
    fn builtin_texts_cover_the_required_languages_with_every_placeholder() {
        for lang in ["en", "ar", "es", "fr", "pt", "de", "it", "nl", "id", "ru"] {
            let t = builtin_code_text(Some(lang));
            assert!(BUILTIN_CODE_TEXTS
                .iter()
                .any(|(l, v)| *l == lang && *v == t));
            for p in ["{code}", "{name}", "{minutes}"] {
                assert!(t.contains(p), "{lang} lacks {p}");
            }
        }
        assert_eq!(
            render(
                builtin_code_text(None),
                &[("code", "123456"), ("name", "Acme"), ("minutes", "10")]
            ),
            "123456 is your Acme verification code. It expires in 10 minutes."
        );
    }

    #[test]
    fn builtin_texts_fall_back_like_instance_texts() {
        let en = builtin_code_text(Some("en"));
        assert_eq!(
            builtin_code_text(Some("pt_BR")),
            builtin_code_text(Some("pt"))
        );
        assert_eq!(
            builtin_code_text(Some("AR-eg")),
            builtin_code_text(Some("ar"))
        );
        assert_eq!(builtin_code_text(Some("ja")), en);
        assert_eq!(builtin_code_text(Some("not a tag")), en);
        assert_eq!(builtin_code_text(None), en);
        assert_ne!(builtin_code_text(Some("de")), en);
    }

    #[test]
    fn locales_are_normalized() {
        let cases = [
            ("en", "en"),
            ("EN", "en"),
            ("pt_br", "pt-BR"),
            ("pt-BR", "pt-BR"),
            ("zh-hant", "zh-Hant"),
            ("ZH_HANT_tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
            ("fil", "fil"),
            (" de-at ", "de-AT"),
        ];
        for (input, normal) in cases {
            assert_eq!(parse_locale(input).as_deref(), Some(normal), "{input}");
        }
    }

    #[test]
    fn invalid_locales_are_refused() {
        for input in [
            "",
            "e",
            "engl",
            "e1",
            "en-",
            "en--US",
            "en-USA",
            "en-U1",
            "en-12",
            "en-US-x",
            "en-Latn-US-POSIX",
            "en US",
            "de-DE;q=0.9",
            "é",
            "en-Latn-Latn",
        ] {
            assert_eq!(parse_locale(input), None, "{input:?}");
        }
        assert_eq!(parse_locale(&"a".repeat(36)), None);
    }

    #[test]
    fn webotp_line_needs_a_bare_hostname_and_a_code() {
        assert_eq!(
            webotp_line("example.com", "123456").as_deref(),
            Some("@example.com #123456")
        );
        assert_eq!(
            webotp_line("Login.Example-Site.co.uk", "AB12").as_deref(),
            Some("@login.example-site.co.uk #AB12")
        );
        assert_eq!(
            webotp_line("localhost", "1").as_deref(),
            Some("@localhost #1")
        );
        let long_label = "a".repeat(64);
        for domain in [
            "",
            "https://example.com",
            "example.com:8443",
            "example.com/login",
            "example.com.",
            ".example.com",
            "exa mple.com",
            "-example.com",
            "example-.com",
            "ex_ample.com",
            "exämple.com",
            "a..b",
            long_label.as_str(),
        ] {
            assert_eq!(webotp_line(domain, "123456"), None, "{domain:?}");
        }
        for code in ["", "12 34", "12#34", "1\n2", "@1"] {
            assert_eq!(webotp_line("example.com", code), None, "{code:?}");
        }
    }

    #[test]
    fn the_webotp_line_is_the_last_line_after_a_blank_line() {
        let text = "123456 is your Acme verification code.";
        assert_eq!(
            with_webotp_line(text, Some("example.com"), "123456"),
            "123456 is your Acme verification code.\n\n@example.com #123456"
        );
        assert_eq!(
            with_webotp_line("Code: 1234\n\n", Some("example.com"), "1234"),
            "Code: 1234\n\n@example.com #1234"
        );
        assert_eq!(
            with_webotp_line("", Some("example.com"), "1234"),
            "@example.com #1234"
        );
        let once = with_webotp_line(text, Some("example.com"), "123456");
        assert_eq!(with_webotp_line(&once, Some("example.com"), "123456"), once);
    }

    #[test]
    fn without_a_valid_domain_the_text_is_unchanged() {
        let text = "Code: 1234\n";
        assert_eq!(with_webotp_line(text, None, "1234"), text);
        assert_eq!(with_webotp_line(text, Some("https://x.com"), "1234"), text);
        assert_eq!(with_webotp_line(text, Some("example.com"), ""), text);
    }
}
