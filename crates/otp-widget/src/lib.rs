//! edge-otp's browser widget: phone verification in one element. `mount(element, options)`
//! (or the `<edge-otp>` custom element of `edge-otp.js`) renders either the code mode (phone
//! number, then one real `autocomplete="one-time-code"` input drawn as boxes) or the WhatsApp
//! mode (a wa.me button on phones, a QR code of the same link on desktops, polling until the
//! user confirms), talks to the widget API (`/widget/v1/`), and hands the page a signed
//! verification token through `onVerified` and a bubbling `verified` event.
//!
//! The widget holds no secret: the publishable key only names the instance, and the token it
//! hands over is for the site's backend to check (an HS256 JWT).

mod api;
mod dom;
pub mod qr;
mod strings;
mod style;

use dom::{escape, Listener, Timer};
use js_sys::{Function, Object, Reflect};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use strings::Strings;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Element, Event, HtmlElement, HtmlInputElement};

/// Longest wait between two polls, in milliseconds.
const MAX_POLL_MS: f64 = 10_000.0;

thread_local! {
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
}

/// What the page passed to `mount`.
struct Options {
    endpoint: String,
    key: String,
    link_mode: bool,
    phone: String,
    locale: String,
    on_verified: Option<Function>,
    on_error: Option<Function>,
}

fn opt_str(o: &JsValue, key: &str) -> Option<String> {
    Reflect::get(o, &key.into()).ok()?.as_string()
}

fn opt_fn(o: &JsValue, key: &str) -> Option<Function> {
    Reflect::get(o, &key.into()).ok()?.dyn_into().ok()
}

/// What the widget is doing.
#[derive(Default)]
struct State {
    /// Listeners of the current screen; replaced with it.
    listeners: Vec<Listener>,
    /// The resend countdown or the next poll.
    timer: Option<Timer>,
    session: Option<String>,
    phone: String,
    code_length: usize,
    letters: bool,
    resend_left: u32,
    busy: bool,
    poll_secret: String,
    poll_ms: f64,
    expires_at_ms: f64,
    webotp: Option<web_sys::AbortController>,
    done: bool,
}

struct Inner {
    root: HtmlElement,
    id: String,
    opts: Options,
    text: Strings,
    state: RefCell<State>,
}

/// A mounted widget; `destroy()` removes it and everything it listens to.
#[wasm_bindgen]
pub struct Widget {
    inner: Option<Rc<Inner>>,
}

#[wasm_bindgen]
impl Widget {
    /// Removes the widget from its element, stops its timers, polls and listeners.
    pub fn destroy(&mut self) {
        if let Some(me) = self.inner.take() {
            me.reset();
            me.state.borrow_mut().done = true;
            me.root.set_inner_html("");
        }
    }
}

/// Mounts the widget in `element`. Options: `endpoint` (the service's base URL, `""` for the
/// page's own origin), `publishableKey`, `mode` (`code` or `link`), `locale`, `strings`,
/// `theme` (`light`, `dark`, `auto`), `phone` (prefilled), `onVerified({token, phone})`,
/// `onError({code})`.
#[wasm_bindgen]
pub fn mount(element: Element, options: JsValue) -> Result<Widget, JsValue> {
    let root: HtmlElement = element.dyn_into()?;
    let doc = root.owner_document().ok_or("element has no document")?;
    style::inject(&doc);
    let locale = opt_str(&options, "locale")
        .or_else(|| doc.document_element()?.get_attribute("lang"))
        .unwrap_or_else(|| "en".into());
    let mode = opt_str(&options, "mode").unwrap_or_default();
    let opts = Options {
        endpoint: opt_str(&options, "endpoint").unwrap_or_default(),
        key: opt_str(&options, "publishableKey").unwrap_or_default(),
        link_mode: matches!(mode.as_str(), "link" | "whatsapp"),
        phone: opt_str(&options, "phone").unwrap_or_default(),
        locale: locale.clone(),
        on_verified: opt_fn(&options, "onVerified"),
        on_error: opt_fn(&options, "onError"),
    };
    let text = Strings::new(
        &locale,
        Reflect::get(&options, &"strings".into()).unwrap_or(JsValue::UNDEFINED),
    );
    let _ = root.class_list().add_1("edge-otp");
    let theme = opt_str(&options, "theme").unwrap_or_else(|| "auto".into());
    let _ = root.set_attribute("data-theme", &theme);
    if text.rtl {
        let _ = root.set_attribute("dir", "rtl");
    }
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        format!("eo{id}")
    });
    let me = Rc::new(Inner {
        root,
        id,
        opts,
        text,
        state: RefCell::new(State::default()),
    });
    if me.opts.link_mode {
        me.render_link_button();
    } else {
        let phone = me.opts.phone.clone();
        me.render_phone(&phone);
    }
    Ok(Widget { inner: Some(me) })
}

/// A phone number as `+` and digits, if it is one: 8-15 digits, the first not 0; spaces,
/// dashes, dots and brackets are ignored.
pub fn normalize_phone(input: &str) -> Option<String> {
    let trimmed = input.trim();
    let rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let mut digits = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
            _ => return None,
        }
    }
    ((8..=15).contains(&digits.len()) && !digits.starts_with('0')).then(|| format!("+{digits}"))
}

/// What a typed or pasted code becomes: separators dropped, only the alphabet's characters,
/// at most `len` of them.
pub fn clean_code(input: &str, len: usize, letters: bool) -> String {
    input
        .chars()
        .filter(|c| c.is_ascii_digit() || (letters && c.is_ascii_alphabetic()))
        .take(len)
        .collect()
}

/// Types `text` into the focused input through `document.execCommand("insertText")`, which
/// keeps the browser's undo history (setting `value` would clear it); false where unsupported.
fn insert_text(text: &str) -> bool {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return false;
    };
    let Ok(exec) = Reflect::get(&doc, &"execCommand".into()).and_then(|f| f.dyn_into::<Function>())
    else {
        return false;
    };
    exec.call3(&doc, &"insertText".into(), &false.into(), &text.into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

impl Inner {
    fn el(&self, suffix: &str) -> Option<Element> {
        self.root
            .query_selector(&format!("#{}-{suffix}", self.id))
            .ok()
            .flatten()
    }

    fn input(&self, suffix: &str) -> Option<HtmlInputElement> {
        self.el(suffix)?.dyn_into().ok()
    }

    /// Drops the current screen's listeners and timers.
    fn reset(&self) {
        let mut s = self.state.borrow_mut();
        s.listeners.clear();
        s.timer = None;
        if let Some(c) = s.webotp.take() {
            c.abort();
        }
    }

    fn listen(
        self: &Rc<Self>,
        target: &Element,
        kind: &'static str,
        f: impl Fn(&Rc<Self>, Event) + 'static,
    ) {
        let me = Rc::downgrade(self);
        let l = Listener::new(target, kind, move |e| {
            if let Some(me) = me.upgrade() {
                f(&me, e)
            }
        });
        self.state.borrow_mut().listeners.push(l);
    }

    /// Says `msg` in the live region; `error` marks it (and the input) as an error.
    fn status(&self, msg: &str, error: bool) {
        if let Some(el) = self.el("status") {
            el.set_text_content(Some(msg));
            let _ = if error {
                el.set_attribute("data-kind", "error")
            } else {
                el.remove_attribute("data-kind")
            };
        }
    }

    fn fail(&self, f: &api::Failure) {
        let t = &self.text;
        let msg = match f.code.as_str() {
            "invalid_request" if !self.opts.link_mode => t.get("phone_invalid"),
            "rate_limited" | "resend_cooldown" | "recipient_locked" | "too_many_sends"
            | "budget_exhausted" => t.fill("wait", "s", &f.retry_after.unwrap_or(60).to_string()),
            _ => t.get("error"),
        };
        self.status(&msg, true);
        if let Some(cb) = &self.opts.on_error {
            let detail = Object::new();
            let _ = Reflect::set(&detail, &"code".into(), &f.code.as_str().into());
            let _ = cb.call1(&JsValue::NULL, &detail);
        }
    }

    // ----- code mode ---------------------------------------------------------------------

    fn render_phone(self: &Rc<Self>, phone: &str) {
        self.reset();
        let (id, t) = (&self.id, &self.text);
        self.root.set_inner_html(&format!(
            r#"<form id="{id}-form" novalidate><label for="{id}-phone">{label}</label><input id="{id}-phone" class="eo-phone" type="tel" autocomplete="tel" inputmode="tel" dir="ltr" aria-describedby="{id}-hint {id}-status" value="{phone}"><p class="eo-hint" id="{id}-hint">{hint}</p><button type="submit" id="{id}-send">{send}</button><p class="eo-status" id="{id}-status" role="status" aria-live="polite"></p></form>"#,
            label = escape(&t.get("phone_label")),
            hint = escape(&t.get("phone_hint")),
            send = escape(&t.get("send_code")),
            phone = escape(phone),
        ));
        if let Some(form) = self.el("form") {
            self.listen(&form, "submit", |me, e| {
                e.prevent_default();
                me.submit_phone();
            });
        }
    }

    fn submit_phone(self: &Rc<Self>) {
        let Some(input) = self.input("phone") else {
            return;
        };
        match normalize_phone(&input.value()) {
            Some(phone) => {
                let _ = input.set_attribute("aria-invalid", "false");
                self.start_code(phone);
            }
            None => {
                let _ = input.set_attribute("aria-invalid", "true");
                self.status(&self.text.get("phone_invalid"), true);
                let _ = input.focus();
            }
        }
    }

    fn set_busy(&self, busy: bool, button: &str) {
        self.state.borrow_mut().busy = busy;
        if let Some(b) = self.el(button) {
            let _ = if busy {
                b.set_attribute("disabled", "")
            } else {
                b.remove_attribute("disabled")
            };
        }
    }

    fn start_code(self: &Rc<Self>, phone: String) {
        if self.state.borrow().busy {
            return;
        }
        self.set_busy(true, "send");
        self.status(&self.text.get("sending"), false);
        let me = self.clone();
        spawn_local(async move {
            let answer = api::post(
                &me.opts.endpoint,
                "start",
                &[
                    ("publishable_key", me.opts.key.as_str().into()),
                    ("mode", "code".into()),
                    ("phone", phone.as_str().into()),
                    ("locale", me.opts.locale.as_str().into()),
                ],
            )
            .await;
            me.set_busy(false, "send");
            if me.state.borrow().done {
                return;
            }
            match answer {
                Ok(b) => {
                    {
                        let mut s = me.state.borrow_mut();
                        s.session = b.str("session");
                        s.phone = b.str("phone").unwrap_or(phone);
                        s.code_length = b.num("code_length").unwrap_or(6.0) as usize;
                        s.letters = b.str("alphabet").as_deref() == Some("alphanumeric");
                    }
                    me.render_code();
                    me.countdown(b.num("resend_in").unwrap_or(30.0) as u32);
                }
                Err(f) => {
                    me.fail(&f);
                    // A cooldown on "resend" is a countdown, not a dead end.
                    if f.code == "resend_cooldown" && me.el("resend").is_some() {
                        me.countdown(f.retry_after.unwrap_or(30));
                    }
                }
            }
        });
    }

    fn render_code(self: &Rc<Self>) {
        self.reset();
        let (id, t) = (&self.id, &self.text);
        let (n, letters, phone) = {
            let s = self.state.borrow();
            (s.code_length, s.letters, s.phone.clone())
        };
        let boxes = r#"<div class="eo-box" aria-hidden="true"></div>"#.repeat(n);
        self.root.set_inner_html(&format!(
            r#"<div class="eo-form"><label for="{id}-code">{label}</label><div class="eo-otp" dir="ltr">{boxes}<input id="{id}-code" class="eo-code" autocomplete="one-time-code" inputmode="{mode}" maxlength="{n}" {pattern} dir="ltr" spellcheck="false" autocapitalize="off" autocorrect="off" aria-label="{aria}" aria-describedby="{id}-status"></div><p class="eo-status" id="{id}-status" role="status" aria-live="polite"></p><div><button type="button" class="eo-link" id="{id}-resend" disabled></button><button type="button" class="eo-link" id="{id}-change">{change}</button></div></div>"#,
            label = escape(&t.fill("code_label", "phone", &phone)),
            aria = escape(&t.fill("code_input", "n", &n.to_string())),
            mode = if letters { "text" } else { "numeric" },
            pattern = if letters { "" } else { r#"pattern="[0-9]*""# },
            change = escape(&t.get("change_number")),
        ));
        if let Some(input) = self.el("code") {
            self.listen(&input, "input", |me, _| me.on_code_input());
            self.listen(&input, "paste", |me, e| me.on_paste(e));
            self.listen(&input, "focus", |me, _| me.paint_boxes(true));
            self.listen(&input, "blur", |me, _| me.paint_boxes(false));
            if let Ok(h) = input.dyn_into::<HtmlElement>() {
                let _ = h.focus();
            }
        }
        if let Some(b) = self.el("resend") {
            self.listen(&b, "click", |me, _| {
                let phone = me.state.borrow().phone.clone();
                me.start_code(phone);
            });
        }
        if let Some(b) = self.el("change") {
            self.listen(&b, "click", |me, _| {
                let phone = me.state.borrow().phone.clone();
                me.render_phone(&phone);
            });
        }
        self.paint_boxes(true);
        self.web_otp();
    }

    /// Shows the input's characters in the boxes, and where the next one goes.
    fn paint_boxes(&self, focused: bool) {
        let Some(input) = self.input("code") else {
            return;
        };
        let value: Vec<char> = input.value().chars().collect();
        let Ok(boxes) = self.root.query_selector_all(".eo-box") else {
            return;
        };
        let n = boxes.length() as usize;
        for i in 0..n {
            let Some(b) = boxes
                .item(i as u32)
                .and_then(|b| b.dyn_into::<Element>().ok())
            else {
                continue;
            };
            let c = value.get(i).map(|c| c.to_string());
            b.set_text_content(c.as_deref());
            let active = focused && i == value.len().min(n.saturating_sub(1));
            let _ = if active {
                b.set_attribute("data-active", "")
            } else {
                b.remove_attribute("data-active")
            };
        }
    }

    /// A pasted code may carry separators ("123-456", "12 34 56") that `maxlength` would cut
    /// before they are dropped: clean it first, then insert it as typing would (undo keeps it).
    fn on_paste(self: &Rc<Self>, e: Event) {
        let Some(input) = self.input("code") else {
            return;
        };
        let text = Reflect::get(&e, &"clipboardData".into())
            .ok()
            .filter(|d| d.is_object())
            .and_then(|d| {
                let get: Function = Reflect::get(&d, &"getData".into()).ok()?.dyn_into().ok()?;
                get.call1(&d, &"text".into()).ok()?.as_string()
            });
        let Some(text) = text else { return };
        e.prevent_default();
        let (n, letters) = {
            let s = self.state.borrow();
            (s.code_length, s.letters)
        };
        let clean = clean_code(&text, n, letters);
        if clean.chars().count() == n {
            input.select();
        }
        if !insert_text(&clean) {
            let value = clean_code(&(input.value() + &clean), n, letters);
            input.set_value(&value);
            self.on_code_input();
        }
    }

    fn on_code_input(self: &Rc<Self>) {
        let Some(input) = self.input("code") else {
            return;
        };
        let (n, letters) = {
            let s = self.state.borrow();
            (s.code_length, s.letters)
        };
        let raw = input.value();
        let clean = clean_code(&raw, n, letters);
        if clean != raw {
            input.set_value(&clean);
        }
        let _ = self.root.remove_attribute("data-invalid");
        let _ = input.set_attribute("aria-invalid", "false");
        self.paint_boxes(true);
        if clean.chars().count() == n {
            self.verify(clean);
        }
    }

    fn verify(self: &Rc<Self>, code: String) {
        if self.state.borrow().busy {
            return;
        }
        let Some(session) = self.state.borrow().session.clone() else {
            return;
        };
        self.state.borrow_mut().busy = true;
        self.status(&self.text.get("checking"), false);
        let me = self.clone();
        spawn_local(async move {
            let answer = api::post(
                &me.opts.endpoint,
                "verify",
                &[
                    ("publishable_key", me.opts.key.as_str().into()),
                    ("session", session.as_str().into()),
                    ("code", code.as_str().into()),
                ],
            )
            .await;
            me.state.borrow_mut().busy = false;
            match answer {
                Ok(b) => me.verified(b),
                Err(f) => me.wrong(&f),
            }
        });
    }

    fn wrong(self: &Rc<Self>, f: &api::Failure) {
        let t = &self.text;
        if let Some(input) = self.input("code") {
            input.set_value("");
            let _ = input.set_attribute("aria-invalid", "true");
            let _ = input.focus();
        }
        let _ = self.root.set_attribute("data-invalid", "");
        self.paint_boxes(true);
        match (f.code.as_str(), f.attempts_left) {
            ("invalid_code", Some(0)) => self.end_code(&t.get("wrong_code_last")),
            ("invalid_code", Some(n)) => {
                self.status(&t.fill("wrong_code", "n", &n.to_string()), true)
            }
            ("too_many_attempts", _) => self.end_code(&t.get("wrong_code_last")),
            (
                "session_expired" | "session_superseded" | "session_failed" | "session_not_found",
                _,
            ) => self.end_code(&t.get("expired")),
            _ => self.fail(f),
        }
    }

    /// The code can no longer work: say why and offer a new one at once.
    fn end_code(&self, msg: &str) {
        self.status(msg, true);
        let mut s = self.state.borrow_mut();
        s.timer = None;
        s.resend_left = 0;
        drop(s);
        self.paint_resend();
    }

    fn paint_resend(&self) {
        let Some(b) = self.el("resend") else { return };
        let left = self.state.borrow().resend_left;
        if left == 0 {
            b.set_text_content(Some(&self.text.get("resend")));
            let _ = b.remove_attribute("disabled");
        } else {
            b.set_text_content(Some(&self.text.fill("resend_in", "s", &left.to_string())));
            let _ = b.set_attribute("disabled", "");
        }
    }

    /// Counts the resend button down from the server's `seconds`.
    fn countdown(self: &Rc<Self>, seconds: u32) {
        self.state.borrow_mut().resend_left = seconds;
        self.paint_resend();
        if seconds == 0 {
            return;
        }
        let me = Rc::downgrade(self);
        let timer = Timer::every(1000, move || {
            let Some(me) = me.upgrade() else { return };
            let left = {
                let mut s = me.state.borrow_mut();
                s.resend_left = s.resend_left.saturating_sub(1);
                s.resend_left
            };
            me.paint_resend();
            if left == 0 {
                me.state.borrow_mut().timer = None;
            }
        });
        self.state.borrow_mut().timer = Some(timer);
    }

    /// Fills the code from an SMS where the browser offers WebOTP (Chrome on Android).
    fn web_otp(self: &Rc<Self>) {
        let Some(window) = web_sys::window() else {
            return;
        };
        if !Reflect::has(&window, &"OTPCredential".into()).unwrap_or(false) {
            return;
        }
        let Ok(controller) = web_sys::AbortController::new() else {
            return;
        };
        let otp = Object::new();
        let _ = Reflect::set(
            &otp,
            &"transport".into(),
            &js_sys::Array::of1(&"sms".into()),
        );
        let req = Object::new();
        let _ = Reflect::set(&req, &"otp".into(), &otp);
        let _ = Reflect::set(&req, &"signal".into(), &controller.signal());
        let credentials = Reflect::get(&window.navigator(), &"credentials".into()).ok();
        let get = credentials
            .as_ref()
            .and_then(|c| Reflect::get(c, &"get".into()).ok())
            .and_then(|f| f.dyn_into::<Function>().ok());
        let (Some(c), Some(get)) = (credentials, get) else {
            return;
        };
        let Ok(promise) = get.call1(&c, &req) else {
            return;
        };
        let Ok(promise) = promise.dyn_into::<js_sys::Promise>() else {
            return;
        };
        self.state.borrow_mut().webotp = Some(controller);
        let me = Rc::downgrade(self);
        spawn_local(async move {
            let Ok(cred) = wasm_bindgen_futures::JsFuture::from(promise).await else {
                return;
            };
            let code = Reflect::get(&cred, &"code".into())
                .ok()
                .and_then(|c| c.as_string());
            if let (Some(me), Some(code)) = (me.upgrade(), code) {
                if let Some(input) = me.input("code") {
                    input.set_value(&code);
                    me.on_code_input();
                }
            }
        });
    }

    // ----- both modes ------------------------------------------------------------------------

    fn verified(self: &Rc<Self>, b: api::Body) {
        let token = b.str("token").unwrap_or_default();
        let phone = b.str("phone").unwrap_or_default();
        self.reset();
        self.state.borrow_mut().done = true;
        self.root.set_inner_html(&format!(
            r#"<p class="eo-done" role="status" aria-live="polite">✓ {}</p>"#,
            escape(&self.text.fill("verified", "phone", &phone))
        ));
        let detail = Object::new();
        let _ = Reflect::set(&detail, &"token".into(), &token.as_str().into());
        let _ = Reflect::set(&detail, &"phone".into(), &phone.as_str().into());
        let init = web_sys::CustomEventInit::new();
        init.set_detail(&detail);
        init.set_bubbles(true);
        init.set_composed(true);
        if let Ok(ev) = web_sys::CustomEvent::new_with_event_init_dict("verified", &init) {
            let _ = self.root.dispatch_event(&ev);
        }
        if let Some(cb) = &self.opts.on_verified {
            let _ = cb.call1(&JsValue::NULL, &detail);
        }
    }

    // ----- WhatsApp mode ---------------------------------------------------------------------

    fn render_link_button(self: &Rc<Self>) {
        self.reset();
        let id = &self.id;
        self.root.set_inner_html(&format!(
            r#"<div class="eo-form"><button type="button" id="{id}-start">{label}</button><p class="eo-status" id="{id}-status" role="status" aria-live="polite"></p></div>"#,
            label = escape(&self.text.get("whatsapp_button")),
        ));
        if let Some(b) = self.el("start") {
            self.listen(&b, "click", |me, _| me.start_link());
        }
    }

    fn start_link(self: &Rc<Self>) {
        if self.state.borrow().busy {
            return;
        }
        self.set_busy(true, "start");
        let me = self.clone();
        spawn_local(async move {
            let answer = api::post(
                &me.opts.endpoint,
                "start",
                &[
                    ("publishable_key", me.opts.key.as_str().into()),
                    ("mode", "link".into()),
                    ("locale", me.opts.locale.as_str().into()),
                ],
            )
            .await;
            me.set_busy(false, "start");
            match answer {
                Ok(b) => me.render_link(b),
                Err(f) => me.fail(&f),
            }
        });
    }

    fn render_link(self: &Rc<Self>, b: api::Body) {
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
        self.schedule_poll();
    }

    fn schedule_poll(self: &Rc<Self>) {
        let delay = self.state.borrow().poll_ms;
        let me = Rc::downgrade(self);
        let timer = Timer::once(delay as i32, move || {
            if let Some(me) = me.upgrade() {
                me.poll();
            }
        });
        self.state.borrow_mut().timer = Some(timer);
    }

    fn poll(self: &Rc<Self>) {
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
            match answer.as_ref().map(|b| b.str("status")) {
                Ok(Some(s)) if s == "verified" => {
                    if let Ok(b) = answer {
                        me.verified(b);
                    }
                    return;
                }
                Ok(Some(s)) if s == "expired" || s == "failed" => return me.link_ended(),
                Ok(Some(s)) if s == "claimed" => me.status(&me.text.get("whatsapp_claimed"), false),
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

    fn link_ended(self: &Rc<Self>) {
        self.reset();
        let id = &self.id;
        self.root.set_inner_html(&format!(
            r#"<div class="eo-form"><p class="eo-status" id="{id}-status" role="status" aria-live="polite" data-kind="error">{msg}</p><button type="button" id="{id}-start">{again}</button></div>"#,
            msg = escape(&self.text.get("whatsapp_expired")),
            again = escape(&self.text.get("try_again")),
        ));
        if let Some(b) = self.el("start") {
            self.listen(&b, "click", |me, _| me.start_link());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_normalized() {
        for (input, want) in [
            ("+1 (415) 555-0100", Some("+14155550100")),
            ("20 123 456 789", Some("+20123456789")),
            ("+0123456789", None),
            ("+1234567", None),
            ("+1234567890123456", None),
            ("+1415555010a", None),
            ("", None),
        ] {
            assert_eq!(normalize_phone(input).as_deref(), want, "{input}");
        }
    }

    #[test]
    fn codes_drop_separators_and_stop_at_their_length() {
        assert_eq!(clean_code("123-456", 6, false), "123456");
        assert_eq!(clean_code("12 34 56 78", 6, false), "123456");
        assert_eq!(clean_code("a1b2", 6, false), "12");
        assert_eq!(clean_code("a1b2", 6, true), "a1b2");
    }
}
