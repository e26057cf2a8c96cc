//! Input rules of the Hypersender OTP API v2, with Laravel-style validation messages.
//!
//! Existing clients (Hypersender's Laravel SDK among them) send every field, sometimes as
//! `null` or as numeric strings, so the rules follow Laravel's: `integer` accepts `"6"`,
//! `boolean` accepts `true`, `false`, `0`, `1`, `"0"`, `"1"`; an optional field that is `null`
//! takes its default.

use crate::rules::code::{Alphabet, CodeSpec};
use crate::rules::recipient::Recipient;
use serde_json::{Map, Value};

/// Validation failures in field order: `(field, message)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<(String, String)>);

impl ValidationErrors {
    /// Laravel's top-level message: the first error, plus "(and N more errors)".
    pub fn message(&self) -> String {
        match self.0.as_slice() {
            [] => "The given data was invalid.".into(),
            [(_, first)] => first.clone(),
            [(_, first), rest @ ..] => format!(
                "{first} (and {} more error{})",
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            ),
        }
    }

    fn push(&mut self, field: &str, message: String) {
        self.0.push((field.to_owned(), message));
    }
}

/// A valid request-code body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCode {
    /// The recipient, canonical.
    pub recipient: Recipient,
    /// Length and alphabet.
    pub spec: CodeSpec,
    /// App name for the message, if given.
    pub name: Option<String>,
    /// Lifetime in seconds.
    pub expires: i64,
    /// Extension: the message's locale (`pt-BR`), beside the Hypersender fields.
    pub locale: Option<String>,
}

/// A valid validate-code body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateCode {
    /// The recipient, canonical.
    pub recipient: Recipient,
    /// What the user typed.
    pub code: String,
}

/// Longest `name` accepted, in characters.
pub const NAME_MAX: usize = 255;
/// Longest `code` accepted, in characters (a code with separators typed in).
pub const CODE_INPUT_MAX: usize = 64;

/// Laravel's display name of a field: `chatId` -> `chat id`.
fn attr(field: &str) -> String {
    let mut out = String::new();
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

struct Fields<'a> {
    body: &'a Map<String, Value>,
    errors: ValidationErrors,
    /// For nested objects (`message.prompt`): the parent's key and a dot.
    prefix: &'static str,
}

impl<'a> Fields<'a> {
    fn new(body: &'a Map<String, Value>) -> Self {
        Self {
            body,
            errors: ValidationErrors::default(),
            prefix: "",
        }
    }

    /// The field's value; `None` when absent or `null`.
    fn get(&self, field: &str) -> Option<&'a Value> {
        let key = field.strip_prefix(self.prefix).unwrap_or(field);
        self.body.get(key).filter(|v| !v.is_null())
    }

    fn required_string(&mut self, field: &'static str, max: usize) -> Option<&'a str> {
        match self.get(field) {
            None => {
                self.errors
                    .push(field, format!("The {} field is required.", attr(field)));
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.errors
                    .push(field, format!("The {} field is required.", attr(field)));
                None
            }
            Some(Value::String(s)) => self.max_len(field, s, max),
            Some(_) => {
                self.errors.push(
                    field,
                    format!("The {} field must be a string.", attr(field)),
                );
                None
            }
        }
    }

    fn optional_string(&mut self, field: &'static str, max: usize) -> Option<&'a str> {
        match self.get(field) {
            None => None,
            Some(Value::String(s)) => self.max_len(field, s, max),
            Some(_) => {
                self.errors.push(
                    field,
                    format!("The {} field must be a string.", attr(field)),
                );
                None
            }
        }
    }

    fn max_len(&mut self, field: &'static str, s: &'a str, max: usize) -> Option<&'a str> {
        if s.chars().count() > max {
            self.errors.push(
                field,
                format!(
                    "The {} field must not be greater than {max} characters.",
                    attr(field)
                ),
            );
            return None;
        }
        Some(s)
    }

    fn integer_between(&mut self, field: &'static str, default: i64, min: i64, max: i64) -> i64 {
        let n = match self.get(field) {
            None => return default,
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(_) => None,
        };
        match n {
            None => {
                self.errors.push(
                    field,
                    format!("The {} field must be an integer.", attr(field)),
                );
                default
            }
            Some(n) if !(min..=max).contains(&n) => {
                self.errors.push(
                    field,
                    format!("The {} field must be between {min} and {max}.", attr(field)),
                );
                default
            }
            Some(n) => n,
        }
    }

    fn boolean(&mut self, field: &'static str, default: bool) -> bool {
        match self.get(field) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(v) if v == 0 || v == "0" => false,
            Some(v) if v == 1 || v == "1" => true,
            Some(_) => {
                self.errors.push(
                    field,
                    format!("The {} field must be true or false.", attr(field)),
                );
                default
            }
        }
    }

    fn recipient(&mut self, field: &'static str) -> Option<Recipient> {
        let raw = self.required_string(field, 64)?;
        match Recipient::parse(raw) {
            Ok(r) => Some(r),
            Err(e) => {
                self.errors.push(
                    field,
                    format!(
                        "The {} field must be a WhatsApp chat id (20123456789@c.us) or a phone number in international format; it {e}.",
                        attr(field)
                    ),
                );
                None
            }
        }
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, ValidationErrors> {
        match value {
            Some(v) if self.errors.0.is_empty() => Ok(v),
            _ => Err(self.errors),
        }
    }
}

/// Validates a request-code body. `max_expires` is the instance's cap (at most 1800).
pub fn parse_request_code(
    body: &Map<String, Value>,
    max_expires: i64,
) -> Result<RequestCode, ValidationErrors> {
    let mut f = Fields::new(body);
    let recipient = f.recipient("chatId");
    let length = f.integer_between("length", 6, 4, 10);
    let use_letter = f.boolean("useLetter", false);
    let use_number = f.boolean("useNumber", true);
    let all_capital = f.boolean("allCapital", false);
    let name = f.optional_string("name", NAME_MAX).map(str::to_owned);
    let expires = f.integer_between("expires", 1800.min(max_expires), 60, max_expires);
    let locale = match f.optional_string("locale", 35) {
        None => None,
        Some(raw) => {
            let parsed = crate::rules::messages::parse_locale(raw);
            if parsed.is_none() {
                f.errors.push(
                    "locale",
                    "The locale field must be a language tag such as en or pt-BR.".into(),
                );
            }
            parsed
        }
    };
    let alphabet = Alphabet::from_flags(use_letter, use_number, all_capital);
    if alphabet.is_none() {
        f.errors.push(
            "useNumber",
            "The use number field must be true when use letter is false.".into(),
        );
    }
    let parsed = recipient
        .zip(alphabet)
        .map(|(recipient, alphabet)| RequestCode {
            recipient,
            spec: CodeSpec {
                length: length as u8,
                alphabet,
            },
            name,
            expires,
            locale,
        });
    f.finish(parsed)
}

/// Validates a validate-code body.
pub fn parse_validate_code(body: &Map<String, Value>) -> Result<ValidateCode, ValidationErrors> {
    let mut f = Fields::new(body);
    let recipient = f.recipient("chatId");
    let code = f.required_string("code", CODE_INPUT_MAX);
    let parsed = recipient.zip(code).map(|(recipient, code)| ValidateCode {
        recipient,
        code: code.to_owned(),
    });
    f.finish(parsed)
}

/// A valid generate-link body. Texts are as given (`None`: the instance's defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateLink {
    /// When given, only this chat may claim the link.
    pub recipient: Option<Recipient>,
    /// Lifetime in seconds (60-3600, default 1800).
    pub expires: i64,
    /// App name for `{name}`.
    pub name: Option<String>,
    /// `message.prompt`, `.success`, `.failed`, `.expired`.
    pub prompt: Option<String>,
    pub success: Option<String>,
    pub failed: Option<String>,
    pub expired: Option<String>,
    /// `callback.success` and `callback.failed`, checked by [`crate::url_guard`].
    pub callback_success: Option<String>,
    pub callback_failed: Option<String>,
}

/// Longest message text accepted, in characters (WhatsApp's text limit is 4096).
pub const MESSAGE_MAX: usize = 1024;

/// The `message` or `callback` object: absent, `null` and PHP's empty array `[]` all mean
/// "none given" (the Laravel SDK encodes an empty array that way).
fn nested<'a>(f: &mut Fields<'a>, field: &'static str) -> Option<&'a Map<String, Value>> {
    match f.get(field) {
        None => None,
        Some(Value::Array(a)) if a.is_empty() => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            f.errors
                .push(field, format!("The {field} field must be an object."));
            None
        }
    }
}

/// Validates a generate-link body; `allow_loopback` lets callbacks reach 127.0.0.1 (dev).
pub fn parse_generate_link(
    body: &Map<String, Value>,
    allow_loopback: bool,
) -> Result<GenerateLink, ValidationErrors> {
    let mut f = Fields::new(body);
    let recipient = match f.get("chatId") {
        None => None,
        Some(_) => f.recipient("chatId"),
    };
    let expires = f.integer_between("expires", 1800, 60, 3600);
    let name = f.optional_string("name", NAME_MAX).map(str::to_owned);
    let mut texts: [Option<String>; 4] = Default::default();
    if let Some(m) = nested(&mut f, "message") {
        let mut inner = Fields {
            body: m,
            errors: ValidationErrors::default(),
            prefix: "message.",
        };
        for (slot, key) in texts.iter_mut().zip([
            "message.prompt",
            "message.success",
            "message.failed",
            "message.expired",
        ]) {
            *slot = inner
                .optional_string(key, MESSAGE_MAX)
                .filter(|t| !t.trim().is_empty())
                .map(str::to_owned);
        }
        if texts[1].as_deref().is_some_and(|t| !t.contains("{link}")) {
            inner.errors.push(
                "message.success",
                "The message.success field must contain the {link} placeholder.".into(),
            );
        }
        f.errors.0.extend(inner.errors.0);
    }
    let mut urls: [Option<String>; 2] = Default::default();
    if let Some(m) = nested(&mut f, "callback") {
        let mut inner = Fields {
            body: m,
            errors: ValidationErrors::default(),
            prefix: "callback.",
        };
        for (slot, key) in urls.iter_mut().zip(["callback.success", "callback.failed"]) {
            let Some(url) = inner.optional_string(key, 2048) else {
                continue;
            };
            match crate::url_guard::check_callback_url(url, allow_loopback) {
                Ok(()) => *slot = Some(url.to_owned()),
                Err(why) => inner.errors.push(
                    key,
                    format!("The {key} field is not an allowed URL: {why}."),
                ),
            }
        }
        f.errors.0.extend(inner.errors.0);
    }
    let [prompt, success, failed, expired] = texts;
    let [callback_success, callback_failed] = urls;
    let parsed = GenerateLink {
        recipient,
        expires,
        name,
        prompt,
        success,
        failed,
        expired,
        callback_success,
        callback_failed,
    };
    f.finish(Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_match_the_docs() {
        let r = parse_request_code(&obj(json!({"chatId": "20123456789@c.us"})), 1800).unwrap();
        assert_eq!(
            r.spec,
            CodeSpec {
                length: 6,
                alphabet: Alphabet::Digits
            }
        );
        assert_eq!((r.expires, r.name), (1800, None));
        assert_eq!(r.recipient.digits(), "20123456789");
    }

    #[test]
    fn laravel_sdk_body_with_every_field_and_loose_types() {
        let body = json!({"chatId": "+20123456789", "length": "8", "useLetter": 1,
            "useNumber": "0", "allCapital": true, "name": null, "expires": 600});
        let r = parse_request_code(&obj(body), 1800).unwrap();
        assert_eq!(
            r.spec,
            CodeSpec {
                length: 8,
                alphabet: Alphabet::Upper
            }
        );
        assert_eq!(r.expires, 600);
    }

    #[test]
    fn each_bad_field_gets_a_laravel_message() {
        let cases = [
            (json!({}), "chatId", "The chat id field is required."),
            (
                json!({"chatId": 5}),
                "chatId",
                "The chat id field must be a string.",
            ),
            (
                json!({"chatId": "abc"}),
                "chatId",
                "The chat id field must be a WhatsApp chat id",
            ),
            (
                json!({"chatId": "20123456789", "length": 3}),
                "length",
                "The length field must be between 4 and 10.",
            ),
            (
                json!({"chatId": "20123456789", "length": 11}),
                "length",
                "between 4 and 10",
            ),
            (
                json!({"chatId": "20123456789", "length": 6.5}),
                "length",
                "The length field must be an integer.",
            ),
            (
                json!({"chatId": "20123456789", "length": "six"}),
                "length",
                "must be an integer",
            ),
            (
                json!({"chatId": "20123456789", "expires": 59}),
                "expires",
                "The expires field must be between 60 and 1800.",
            ),
            (
                json!({"chatId": "20123456789", "expires": 1801}),
                "expires",
                "between 60 and 1800",
            ),
            (
                json!({"chatId": "20123456789", "useLetter": "yes"}),
                "useLetter",
                "The use letter field must be true or false.",
            ),
            (
                json!({"chatId": "20123456789", "useLetter": false, "useNumber": false}),
                "useNumber",
                "must be true when use letter is false",
            ),
            (
                json!({"chatId": "20123456789", "name": ["x"]}),
                "name",
                "The name field must be a string.",
            ),
            (
                json!({"chatId": "20123456789", "name": "x".repeat(256)}),
                "name",
                "not be greater than 255 characters",
            ),
        ];
        for (body, field, says) in cases {
            let errs = parse_request_code(&obj(body.clone()), 1800).unwrap_err();
            assert_eq!(errs.0[0].0, field, "{body}");
            assert!(errs.0[0].1.contains(says), "{body}: {:?}", errs.0);
        }
    }

    #[test]
    fn instance_cap_tightens_expires() {
        let errs = parse_request_code(&obj(json!({"chatId": "20123456789", "expires": 900})), 600)
            .unwrap_err();
        assert_eq!(
            errs.message(),
            "The expires field must be between 60 and 600."
        );
        let r = parse_request_code(&obj(json!({"chatId": "20123456789"})), 600).unwrap();
        assert_eq!(r.expires, 600);
    }

    #[test]
    fn several_errors_are_summarised_like_laravel() {
        let errs = parse_request_code(&obj(json!({"length": 99, "expires": 1})), 1800).unwrap_err();
        assert_eq!(errs.0.len(), 3);
        assert_eq!(
            errs.message(),
            "The chat id field is required. (and 2 more errors)"
        );
    }

    #[test]
    fn generate_link_laravel_sdk_body() {
        let body = json!({"expires": 1800, "name": "YourAppName",
            "message": {"prompt": "Give me link to login at YourApp",
                "success": "Welcome! Here is your login link: {link}",
                "failed": "Login failed. Please try again.",
                "expired": "This link has expired. Please request a new one."},
            "callback": {"success": "https://yourdomain.com/api/otp/success",
                "failed": "https://yourdomain.com/api/otp/failed"},
            "chatId": "20123456789@c.us"});
        let g = parse_generate_link(&obj(body), false).unwrap();
        assert_eq!(g.recipient.unwrap().digits(), "20123456789");
        assert_eq!(
            g.prompt.as_deref(),
            Some("Give me link to login at YourApp")
        );
        assert_eq!(
            g.callback_failed.as_deref(),
            Some("https://yourdomain.com/api/otp/failed")
        );
    }

    #[test]
    fn generate_link_accepts_php_empty_arrays_and_defaults() {
        let g = parse_generate_link(&obj(json!({"callback": [], "message": []})), false).unwrap();
        assert_eq!(
            (g.expires, g.recipient, g.callback_success),
            (1800, None, None)
        );
    }

    #[test]
    fn generate_link_refusals() {
        let cases = [
            (json!({"expires": 59}), "expires", "between 60 and 3600"),
            (json!({"expires": 3601}), "expires", "between 60 and 3600"),
            (
                json!({"chatId": "nope"}),
                "chatId",
                "must be a WhatsApp chat id",
            ),
            (json!({"message": "hi"}), "message", "must be an object"),
            (
                json!({"message": {"prompt": 5}}),
                "message.prompt",
                "The message.prompt field must be a string.",
            ),
            (
                json!({"message": {"success": "no link here"}}),
                "message.success",
                "{link}",
            ),
            (
                json!({"callback": {"success": "http://example.com/cb"}}),
                "callback.success",
                "https",
            ),
            (
                json!({"callback": {"failed": "https://10.0.0.1/cb"}}),
                "callback.failed",
                "private",
            ),
            (
                json!({"callback": {"success": "https://localhost/cb"}}),
                "callback.success",
                "not an allowed URL",
            ),
        ];
        for (body, field, says) in cases {
            let errs = parse_generate_link(&obj(body.clone()), false).unwrap_err();
            assert_eq!(errs.0[0].0, field, "{body}");
            assert!(errs.0[0].1.contains(says), "{body}: {:?}", errs.0);
        }
        let ok = json!({"callback": {"success": "http://127.0.0.1:9/cb"}});
        assert!(parse_generate_link(&obj(ok.clone()), true).is_ok());
        assert!(parse_generate_link(&obj(ok), false).is_err());
    }

    #[test]
    fn validate_code_needs_both_fields() {
        let errs = parse_validate_code(&obj(json!({"code": 123456}))).unwrap_err();
        assert_eq!(
            errs.0,
            vec![
                (
                    "chatId".to_string(),
                    "The chat id field is required.".to_string()
                ),
                (
                    "code".to_string(),
                    "The code field must be a string.".to_string()
                )
            ]
        );
        let ok = parse_validate_code(&obj(json!({"chatId": "20123456789@c.us", "code": "1234"})))
            .unwrap();
        assert_eq!(ok.code, "1234");
    }
}
