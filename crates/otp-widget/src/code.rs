//! Code mode: the phone step, then one real `<input autocomplete="one-time-code">` drawn as
//! boxes (input-otp's model: paste, undo, autofill and screen readers work because it is one
//! input), auto-submit, attempts left, and a resend countdown that is the server's number.

use crate::api;
use crate::dom::escape;
use crate::dom::Timer;
use crate::Inner;
use js_sys::{Function, Reflect};
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Element, Event, HtmlElement};

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
    pub(crate) fn render_phone(self: &Rc<Self>, phone: &str) {
        self.reset();
        let (id, t) = (&self.id, &self.text);
        self.root.set_inner_html(&format!(
            r#"<form id="{id}-form" novalidate><label for="{id}-phone">{label}</label><input id="{id}-phone" class="eo-phone" type="tel" autocomplete="tel" inputmode="tel" dir="ltr" aria-describedby="{id}-hint {id}-status" value="{phone}"><p class="eo-hint" id="{id}-hint">{hint}</p><div class="eo-ts" id="{id}-ts"></div><button type="submit" id="{id}-send">{send}</button><p class="eo-status" id="{id}-status" role="status" aria-live="polite"></p></form>"#,
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
        self.show_check();
    }

    pub(crate) fn submit_phone(self: &Rc<Self>) {
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
