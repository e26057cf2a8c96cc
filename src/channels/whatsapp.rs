//! Meta's WhatsApp Cloud API.

use super::{post, Channel, DeliveryError, Net, Outbound};
use otp_core::config::WhatsappConfig;
use otp_core::wire::meta;

/// Meta's WhatsApp Cloud API: `POST {api_base}/{version}/{phone_number_id}/messages` with the
/// instance's access token. Codes go as the configured authentication template (copy-code
/// button) or as text; link replies as an interactive message with a URL button (`cta_url`; the
/// user has just written, so WhatsApp's 24-hour window is open), as text when the body is over
/// the 1024 characters `cta_url` allows; operator templates as their approved template.
pub struct WhatsappCloud<'a> {
    pub config: &'a WhatsappConfig,
    pub access_token: &'a str,
    pub net: Net,
}

impl Channel for WhatsappCloud<'_> {
    async fn send(&self, msg: &Outbound<'_>) -> Result<Option<String>, DeliveryError> {
        let (to, text) = (msg.to.digits(), msg.text());
        let body = match (&self.config.template, msg.code, msg.form.0.as_slice()) {
            (Some(t), Some(code), _) => meta::template_message(to, &t.name, &t.language, code),
            (_, _, [kind, name, language, params @ ..]) if kind == "template" => {
                meta::approved_template_message(to, name, language, params)
            }
            (_, _, [kind, label, url]) if kind == "cta_url" && text.chars().count() <= 1024 => {
                meta::cta_url_message(to, &text, label, url)
            }
            _ => meta::text_message(to, &text),
        };
        let url = format!(
            "{}/{}/{}/messages",
            self.config.api_base.trim_end_matches('/'),
            self.config.api_version,
            self.config.phone_number_id
        );
        let auth = format!("Bearer {}", self.access_token);
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ];
        let (status, raw) = post(&url, &headers, body.to_string(), self.net).await?;
        if (200..300).contains(&status) {
            return Ok(meta::message_id(&raw));
        }
        let (code, message) = meta::send_error(&raw).unwrap_or((0, String::new()));
        let why = format!("whatsapp answered {status} (code {code}): {message}");
        Err(if meta::error_is_permanent(status, code) {
            DeliveryError::Permanent(why)
        } else {
            DeliveryError::Retryable(why)
        })
    }
}
