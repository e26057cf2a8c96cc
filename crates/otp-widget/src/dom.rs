//! Small DOM helpers: an event listener that removes itself when dropped (as gloo's does), a
//! timer that clears itself when dropped, and HTML escaping for the few strings put in markup.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventTarget};

/// A listener on `target` for `kind`, removed when this value is dropped.
pub struct Listener {
    target: EventTarget,
    kind: &'static str,
    closure: Closure<dyn FnMut(Event)>,
}

impl Listener {
    pub fn new(target: &EventTarget, kind: &'static str, f: impl FnMut(Event) + 'static) -> Self {
        let closure = Closure::<dyn FnMut(Event)>::new(f);
        let _ = target.add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref());
        Self {
            target: target.clone(),
            kind,
            closure,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.kind, self.closure.as_ref().unchecked_ref());
    }
}

/// A `setTimeout` (once) or `setInterval` (repeat), cleared when this value is dropped.
pub struct Timer {
    id: i32,
    repeat: bool,
    _closure: Closure<dyn FnMut()>,
}

impl Timer {
    pub fn once(ms: i32, f: impl FnMut() + 'static) -> Self {
        Self::start(ms, false, f)
    }

    pub fn every(ms: i32, f: impl FnMut() + 'static) -> Self {
        Self::start(ms, true, f)
    }

    fn start(ms: i32, repeat: bool, f: impl FnMut() + 'static) -> Self {
        let closure = Closure::<dyn FnMut()>::new(f);
        let w = web_sys::window().expect_throw("no window");
        let cb = closure.as_ref().unchecked_ref();
        let id = if repeat {
            w.set_interval_with_callback_and_timeout_and_arguments_0(cb, ms)
        } else {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(cb, ms)
        }
        .unwrap_or(0);
        Self {
            id,
            repeat,
            _closure: closure,
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(w) = web_sys::window() {
            if self.repeat {
                w.clear_interval_with_handle(self.id);
            } else {
                w.clear_timeout_with_handle(self.id);
            }
        }
    }
}

/// `s` safe inside HTML text and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
