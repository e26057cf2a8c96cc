//! WhatsApp mode: a wa.me button on phones, a QR code of the same link on desktops, then
//! polling (from the server's `poll_interval`, ×1.5 up to 10 s) until the challenge is verified
//! on any device, or has expired.

use crate::dom::{escape, Timer};
use crate::{api, qr, Inner};
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;

/// Longest wait between two polls, in milliseconds.
const MAX_POLL_MS: f64 = 10_000.0;

impl Inner {
    pub(crate) fn render_link_button(self: &Rc<Self>) {
        self.reset();
        let id = &self.id;
        self.root.set_inner_html(&format!(
            r#"<div class="eo-form"><div class="eo-ts" id="{id}-ts"></div><button type="button" id="{id}-start">{label}</button><p class="eo-status" id="{id}-status" role="status" aria-live="polite"></p></div>"#,
            label = escape(&self.text.get("whatsapp_button")),
        ));
        if let Some(b) = self.el("start") {
            self.listen(&b, "click", |me, _| me.start_link());
        }
        self.show_check();
    }

    pub(crate) fn start_link(self: &Rc<Self>) {
        if self.state.borrow().busy {
            return;
        }
        self.set_busy(true, "start");
        let me = self.clone();
        spawn_local(async move {
            let answer = me
                .start(vec![
                    ("publishable_key", me.opts.key.as_str().into()),
                    ("mode", "link".into()),
                    ("locale", me.opts.locale.as_str().into()),
                ])
                .await;
            me.set_busy(false, "start");
            match answer {
                None => {}
                Some(Ok(b)) => me.render_link(b),
                Some(Err(f)) => me.fail(&f),
            }
        });
    }

    pub(crate) fn render_link(self: &Rc<Self>, b: api::Body) {
        self.reset();
        let (id, t) = (&self.id, &self.text);
        let link = b.str("link").unwrap_or_default();
        {
            let mut s = self.state.borrow_mut();
            s.session = b.str("session");
            s.poll_secret = b.str("poll_secret").unwrap_or_default();
            s.poll_ms = b.num("poll_interval").unwrap_or(2.0) * 1000.0;
            s.expires_at_ms = js_sys::Date::now() + b.num("expires_in").unwrap_or(600.0) * 1000.0;
        }
        let phone = web_sys::window()
            .and_then(|w| w.match_media("(pointer: coarse)").ok().flatten())
            .is_some_and(|m| m.matches());
        let open = format!(
            r#"<a class="eo-button" id="{id}-open" href="{href}" target="_blank" rel="noopener noreferrer">{label}</a>"#,
            href = escape(&link),
            label = escape(&t.get("whatsapp_open")),
        );
        let body = if phone {
            format!(r#"<p>{}</p>{open}"#, escape(&t.get("whatsapp_phone")))
        } else {
            let qr = qr::svg(&link, &t.get("qr_label")).unwrap_or_default();
            format!(r#"<p>{}</p>{qr}{open}"#, escape(&t.get("whatsapp_scan")))
        };
        self.root.set_inner_html(&format!(
            r#"<div class="eo-form" data-link="{href}">{body}<p class="eo-status" id="{id}-status" role="status" aria-live="polite">{waiting}</p></div>"#,
            href = escape(&link),
            waiting = escape(&t.get("whatsapp_waiting")),
        ));
        self.show_check();
        self.schedule_poll();
    }

    pub(crate) fn schedule_poll(self: &Rc<Self>) {
        let delay = self.state.borrow().poll_ms;
        let me = Rc::downgrade(self);
        let timer = Timer::once(delay as i32, move || {
            if let Some(me) = me.upgrade() {
                me.poll();
            }
        });
        self.state.borrow_mut().timer = Some(timer);
    }

    pub(crate) fn poll(self: &Rc<Self>) {
        let (session, secret, expires) = {
            let s = self.state.borrow();
            (
                s.session.clone().unwrap_or_default(),
                s.poll_secret.clone(),
                s.expires_at_ms,
            )
        };
        if js_sys::Date::now() > expires {
            return self.link_ended();
        }
        let me = self.clone();
        spawn_local(async move {
            let answer = api::post(
                &me.opts.endpoint,
                "poll",
                &[
                    ("publishable_key", me.opts.key.as_str().into()),
                    ("session", session.as_str().into()),
                    ("poll_secret", secret.as_str().into()),
                ],
            )
            .await;
            if me.state.borrow().done {
                return;
            }
            // `pending` with `claimed_at`: the user's message arrived, the login URL is out.
            match answer
                .as_ref()
                .map(|b| (b.str("status"), b.str("claimed_at").is_some()))
            {
                Ok((Some(s), _)) if s == "verified" => {
                    if let Ok(b) = answer {
                        me.verified(b);
                    }
                    return;
                }
                Ok((Some(s), _)) if s == "expired" || s == "failed" => return me.link_ended(),
                Ok((_, true)) => me.status(&me.text.get("whatsapp_claimed"), false),
                Err(f) if f.status == 404 => return me.link_ended(),
                _ => {}
            }
            {
                let mut s = me.state.borrow_mut();
                s.poll_ms = (s.poll_ms * 1.5).min(MAX_POLL_MS);
            }
            me.schedule_poll();
        });
    }

    pub(crate) fn link_ended(self: &Rc<Self>) {
        self.reset();
        let id = &self.id;
        self.root.set_inner_html(&format!(
            r#"<div class="eo-form"><p class="eo-status" id="{id}-status" role="status" aria-live="polite" data-kind="error">{msg}</p><div class="eo-ts" id="{id}-ts"></div><button type="button" id="{id}-start">{again}</button></div>"#,
            msg = escape(&self.text.get("whatsapp_expired")),
            again = escape(&self.text.get("try_again")),
        ));
        if let Some(b) = self.el("start") {
            self.listen(&b, "click", |me, _| me.start_link());
        }
        self.show_check();
    }
}
