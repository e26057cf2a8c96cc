//! Code mode: the phone step (a country selector beside the number, its E.164 form shown as
//! it is typed), then one real `<input autocomplete="one-time-code">` drawn as boxes
//! (input-otp's model: paste, undo, autofill and screen readers work because it is one input),
//! auto-submit, attempts left, and a resend countdown that is the server's number.

use crate::api;
use crate::dom::escape;
use crate::dom::Timer;
use crate::phone::{self, PhoneError};
use crate::Inner;
use js_sys::{Function, Reflect};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Element, Event, HtmlElement, HtmlSelectElement};

#[wasm_bindgen(inline_js = r#"
export function country_options(table, locale) {
  const escape = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const names = typeof Intl === "object" && Intl.DisplayNames ? new Intl.DisplayNames([locale], { type: "region" }) : null;
  const list = table.match(/[A-Z]{2}[0-9]+/g).map((e) => {
    const region = e.slice(0, 2);
    let name = region;
    try { name = names?.of(region) ?? region; } catch {}
    return [name, region, e.slice(2)];
  });
  list.sort((a, b) => a[0].localeCompare(b[0], locale));
  return list.map(([name, region, code]) => `<option value="${region}">${escape(name)} +${code}</option>`).join("");
}
"#)]
extern "C" {
    /// The selector's options: every region of `table` as "name +code" (the name first: typing
    /// a letter in an open select jumps by the option's text), named in `locale` and sorted by
    /// that name (Intl.DisplayNames, localeCompare; the ISO code where a browser has no names).
    /// In JavaScript because it is mostly calls into Intl: about 1.2 KB (gzip) less Wasm than
    /// the same in Rust.
    fn country_options(table: &str, locale: &str) -> String;
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
    pub(crate) fn render_phone(self: &Rc<Self>, phone: &str) {
        self.reset();
        let (id, t) = (&self.id, &self.text);
        let options = {
            let mut s = self.state.borrow_mut();
            s.countries
                .get_or_insert_with(|| country_options(phone::TABLE, &self.opts.locale))
                .clone()
        };
        self.root.set_inner_html(&format!(
            r#"<form id="{id}-form" novalidate><label for="{id}-phone">{label}</label><div class="eo-tel" dir="ltr"><div class="eo-cc"><span id="{id}-ccv" aria-hidden="true"></span><select id="{id}-cc" aria-label="{country}"><option value="">{country}</option>{options}</select></div><input id="{id}-phone" class="eo-phone" type="tel" autocomplete="tel" inputmode="tel" aria-describedby="{id}-hint {id}-status" value="{phone}"></div><p class="eo-hint" id="{id}-hint">{hint}</p><div class="eo-ts" id="{id}-ts"></div><button type="submit" id="{id}-send">{send}</button><p class="eo-status" id="{id}-status" role="status" aria-live="polite"></p></form>"#,
            label = escape(&t.get("phone_label")),
            country = escape(&t.get("country")),
            hint = escape(&t.get("phone_hint")),
            send = escape(&t.get("send_code")),
            phone = escape(phone),
        ));
        if let Some(form) = self.el("form") {
            self.listen(&form, "submit", |me, e| {
                e.prevent_default();
                me.submit_phone();
            });
            // One listener for both fields: a select fires `input` too.
            self.listen(&form, "input", |me, _| me.sync_phone());
        }
        self.paint_phone();
        self.sync_phone();
        self.show_check();
    }

    fn select(&self) -> Option<HtmlSelectElement> {
        self.el("cc")?.dyn_into().ok()
    }

    /// Reads the phone step after an edit: a region picked in the selector, or a number typed
    /// with `+` (or `00`), which moves the selector to its country; both count as chosen.
    fn sync_phone(&self) {
        let (Some(select), Some(input)) = (self.select(), self.input("phone")) else {
            return;
        };
        let mut region = select.value();
        if let Some(digits) = phone::international(&input.value()) {
            region = phone::region_of(&digits, &region)
                .map(str::to_owned)
                .unwrap_or(region);
        }
        {
            let mut s = self.state.borrow_mut();
            if region != s.region {
                s.region = region;
                s.region_chosen = true;
            }
        }
        self.paint_phone();
    }

    /// The service's default country (`/widget/v1/config`), unless one was chosen.
    pub(crate) fn hint_region(&self, region: &str) {
        {
            let mut s = self.state.borrow_mut();
            if s.region_chosen {
                return;
            }
            s.region = region.to_owned();
        }
        self.paint_phone();
    }

    /// Shows the selected region (the select's value, its flag and code) and, in the hint line,
    /// the number in E.164 as it will be used, once it is one.
    fn paint_phone(&self) {
        let region = self.state.borrow().region.clone();
        let code = phone::lookup(&region).map(|(_, c)| c);
        if let Some(select) = self.select() {
            select.set_value(&region);
        }
        if let Some(shown) = self.el("ccv") {
            let text = match code {
                Some(code) => format!("{} +{code}", phone::flag(&region)),
                None => self.text.get("country"),
            };
            shown.set_text_content(Some(&text));
        }
        if let (Some(input), Some(hint)) = (self.input("phone"), self.el("hint")) {
            let text = match phone::to_e164(&input.value(), &region) {
                Ok(e164) => self
                    .text
                    .fill("phone_preview", "phone", &phone::display(&e164)),
                Err(_) => self.text.get("phone_hint"),
            };
            hint.set_text_content(Some(&text));
        }
    }

    pub(crate) fn submit_phone(self: &Rc<Self>) {
        let Some(input) = self.input("phone") else {
            return;
        };
        let region = self.state.borrow().region.clone();
        match phone::to_e164(&input.value(), &region) {
            Ok(phone) => {
                let _ = input.set_attribute("aria-invalid", "false");
                self.start_code(phone);
            }
            Err(PhoneError::NeedCountry) => {
                self.status(&self.text.get("country_needed"), true);
                if let Some(select) = self.select() {
                    let _ = select.focus();
                }
            }
            Err(PhoneError::Invalid) => {
                let _ = input.set_attribute("aria-invalid", "true");
                self.status(&self.text.get("phone_invalid"), true);
                let _ = input.focus();
            }
        }
    }

    pub(crate) fn set_busy(&self, busy: bool, button: &str) {
        self.state.borrow_mut().busy = busy;
        if let Some(b) = self.el(button) {
            let _ = if busy {
                b.set_attribute("disabled", "")
            } else {
                b.remove_attribute("disabled")
            };
        }
    }

    pub(crate) fn start_code(self: &Rc<Self>, phone: String) {
        if self.state.borrow().busy {
            return;
        }
        self.set_busy(true, "send");
        self.status(&self.text.get("sending"), false);
        let me = self.clone();
        spawn_local(async move {
            let answer = me
                .start(vec![
                    ("publishable_key", me.opts.key.as_str().into()),
                    ("mode", "code".into()),
                    ("phone", phone.as_str().into()),
                    ("locale", me.opts.locale.as_str().into()),
                ])
                .await;
            me.set_busy(false, "send");
            let Some(answer) = answer else { return };
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

    pub(crate) fn render_code(self: &Rc<Self>) {
        self.reset();
        let (id, t) = (&self.id, &self.text);
        let (n, letters, phone) = {
            let s = self.state.borrow();
            (s.code_length, s.letters, s.phone.clone())
        };
        let boxes = r#"<div class="eo-box" aria-hidden="true"></div>"#.repeat(n);
        self.root.set_inner_html(&format!(
            r#"<div class="eo-form"><label for="{id}-code">{label}</label><div class="eo-otp" dir="ltr">{boxes}<input id="{id}-code" class="eo-code" autocomplete="one-time-code" inputmode="{mode}" maxlength="{n}" {pattern} dir="ltr" spellcheck="false" autocapitalize="off" autocorrect="off" aria-label="{aria}" aria-describedby="{id}-status"></div><p class="eo-status" id="{id}-status" role="status" aria-live="polite"></p><div class="eo-ts" id="{id}-ts"></div><div><button type="button" class="eo-link" id="{id}-resend" disabled></button><button type="button" class="eo-link" id="{id}-change">{change}</button></div></div>"#,
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
        self.show_check();
    }

    /// Shows the input's characters in the boxes, and where the next one goes.
    pub(crate) fn paint_boxes(&self, focused: bool) {
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
    pub(crate) fn on_paste(self: &Rc<Self>, e: Event) {
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

    pub(crate) fn on_code_input(self: &Rc<Self>) {
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

    pub(crate) fn verify(self: &Rc<Self>, code: String) {
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

    pub(crate) fn wrong(self: &Rc<Self>, f: &api::Failure) {
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
    pub(crate) fn end_code(&self, msg: &str) {
        self.status(msg, true);
        let mut s = self.state.borrow_mut();
        s.timer = None;
        s.resend_left = 0;
        drop(s);
        self.paint_resend();
    }

    pub(crate) fn paint_resend(&self) {
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
    pub(crate) fn countdown(self: &Rc<Self>, seconds: u32) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_drop_separators_and_stop_at_their_length() {
        assert_eq!(clean_code("123-456", 6, false), "123456");
        assert_eq!(clean_code("12 34 56 78", 6, false), "123456");
        assert_eq!(clean_code("a1b2", 6, false), "12");
        assert_eq!(clean_code("a1b2", 6, true), "a1b2");
    }
}
