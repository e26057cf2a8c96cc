//! Cloudflare Turnstile's siteverify: whether a browser passed the human check.

use super::{post, Net};

#[derive(serde::Deserialize)]
struct SiteverifyAnswer {
    success: bool,
}

/// Checks `token` at `siteverify_url` with the instance's `secret`. Anything but a clear
/// success is `false`: a check that cannot run (in time) fails closed.
pub async fn passed(siteverify_url: &str, secret: &str, token: &str, ip: &str, net: Net) -> bool {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("secret", secret)
        .append_pair("response", token);
    if ip != "local" {
        form.append_pair("remoteip", ip);
    }
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    match post(siteverify_url, &headers, form.finish(), net).await {
        Ok((200, body)) => otp_core::json::from_bytes::<SiteverifyAnswer>(&body)
            .is_some_and(|answer| answer.success),
        Ok((status, _)) => {
            crate::log::Line::new("turnstile.error")
                .num("status", i64::from(status))
                .error();
            false
        }
        Err(e) => {
            crate::log::Line::new("turnstile.error")
                .text("error", &format!("{e:?}"))
                .error();
            false
        }
    }
}
