//! Twilio's Messages API (SMS and WhatsApp).

use super::{post, Channel, DeliveryError, Net, Outbound};
use otp_core::config::TwilioConfig;
use otp_core::wire::twilio;

/// Twilio's Messages API, SMS or WhatsApp: form-encoded, HTTP Basic auth. SMS codes end with
/// the WebOTP line (`@<domain> #<code>`) when the instance names its domain.
pub struct TwilioChannel<'a> {
    pub config: &'a TwilioConfig,
    pub auth_token: &'a str,
    pub whatsapp: bool,
    pub web_otp_domain: Option<&'a str>,
    /// Where Twilio posts delivery statuses (needs `PUBLIC_URL`).
    pub status_callback: Option<String>,
    pub net: Net,
}

impl Channel for TwilioChannel<'_> {
    async fn send(&self, msg: &Outbound<'_>) -> Result<Option<String>, DeliveryError> {
        let from = if self.whatsapp {
            self.config.whatsapp_from.as_deref()
        } else {
            self.config.from.as_deref()
        }
        .ok_or_else(|| DeliveryError::Permanent("twilio sender is not configured".into()))?;
        let mut text = msg.text();
        if let (false, Some(code)) = (self.whatsapp, msg.code) {
            text = otp_core::rules::messages::with_webotp_line(&text, self.web_otp_domain, code);
        }
        let form = twilio::message_form(
            &msg.to.e164(),
            from,
            &text,
            self.status_callback.as_deref(),
            self.whatsapp,
        );
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.api_base.trim_end_matches('/'),
            self.config.account_sid
        );
        let basic = base64_basic(&self.config.account_sid, self.auth_token);
        let headers = [
            ("authorization", basic.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        let (status, raw) = post(&url, &headers, twilio::form_encode(&form), self.net).await?;
        if (200..300).contains(&status) {
            return Ok(twilio::message_sid(&raw));
        }
        let err = twilio::send_error(&raw);
        let why = format!(
            "twilio answered {status} (code {}): {}",
            err.as_ref().map(|e| e.0).unwrap_or_default(),
            err.as_ref().map(|e| e.1.as_str()).unwrap_or_default()
        );
        Err(if twilio::error_is_permanent(status, err.map(|e| e.0)) {
            DeliveryError::Permanent(why)
        } else {
            DeliveryError::Retryable(why)
        })
    }
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}
