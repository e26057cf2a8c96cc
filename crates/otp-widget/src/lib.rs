//! edge-otp's browser widget: phone verification in one element. `mount(element, options)`
//! (or the `<edge-otp>` custom element of `edge-otp.js`) renders either the code mode (phone
//! number, then one real `autocomplete="one-time-code"` input drawn as boxes) or the WhatsApp
//! mode (a wa.me button on phones, a QR code of the same link on desktops, polling until the
//! user confirms), talks to the widget API (`/widget/v1/`), and hands the page a signed
//! verification token through `onVerified` and a bubbling `verified` event.
//!
//! The widget holds no secret: the publishable key only names the instance, and the token it
//! hands over is for the site's backend to check (a JWT). Failures reach the page through
//! `onError` and an `error` event on the element (not bubbling).

mod api;
mod code;
mod dom;
mod link;
pub mod phone;
pub mod qr;
mod strings;
mod style;
mod turnstile;
mod webotp;

pub use code::clean_code;

use dom::{escape, Listener, Timer};
use js_sys::{Function, Object, Reflect};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use strings::Strings;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Element, Event, HtmlElement, HtmlInputElement};

/// A free-list allocator instead of the standard dlmalloc: about 3.3 KB (gzip) less Wasm, which
/// is what the country selector costs. Its O(free blocks) allocations suit a widget's few, small
/// ones. Sound because the widget's Wasm has no threads (built without atomics).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    // SAFETY: wasm32-unknown-unknown without the atomics feature is single-threaded.
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

thread_local! {
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
    /// Mounted widgets, kept alive until `destroy()`: a page that drops the handle `mount`
    /// returned (or lets it be garbage-collected) still has a working widget.
    static LIVE: RefCell<Vec<Rc<Inner>>> = const { RefCell::new(Vec::new()) };
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
    theme: String,
    /// The page's own Turnstile token source: then the widget renders no Turnstile.
    turnstile_token: Option<Function>,
    /// The page's `nonce` for the widget's `<style>` (instead of a constructed stylesheet).
    nonce: Option<String>,
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
    /// The Turnstile site key from the config, once read; the starts waiting for it.
    config: Option<Option<String>>,
    config_wait: Vec<std::task::Waker>,
    /// The current screen's Turnstile, and its latest unused token.
    check: Option<turnstile::Check>,
    token: Option<String>,
    /// The country selector's region (ISO code, `""` for none), and whether the page or the
    /// person chose it (then the service's hint leaves it alone).
    region: String,
    region_chosen: bool,
    /// The selector's options, built once (names sorted in the widget's locale).
    countries: Option<String>,
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
            LIVE.with(|live| live.borrow_mut().retain(|w| !Rc::ptr_eq(w, &me)));
            me.reset();
            me.state.borrow_mut().done = true;
            me.root.set_inner_html("");
            me.show_check();
        }
    }
}

/// Mounts the widget in `element`. Options: `endpoint` (the service's base URL, `""` for the
/// page's own origin), `publishableKey`, `mode` (`code` or `link`), `locale`, `strings`,
/// `theme` (`light`, `dark`, `auto`), `phone` (prefilled), `defaultCountry` (ISO code),
/// `nonce` (for a `<style>`), `onVerified({token, phone})`, `onError({code})`,
/// `turnstileToken()` (the page's own Turnstile: a token or its Promise).
#[wasm_bindgen]
pub fn mount(element: Element, options: JsValue) -> Result<Widget, JsValue> {
    let root: HtmlElement = element.dyn_into()?;
    let doc = root.owner_document().ok_or("element has no document")?;
    let nonce = opt_str(&options, "nonce").filter(|n| !n.is_empty());
    style::inject(&root, &doc, nonce.as_deref());
    let page_lang = doc.document_element().and_then(|e| e.get_attribute("lang"));
    let locale = opt_str(&options, "locale")
        .or_else(|| page_lang.clone())
        .unwrap_or_else(|| "en".into());
    // The selector's first region: the page's choice, else the browser's language, else the
    // page's (`/widget/v1/config` may still suggest one while nobody has chosen).
    let chosen = opt_str(&options, "defaultCountry")
        .and_then(|c| phone::lookup(&c))
        .map(|(r, _)| r);
    let region = chosen
        .or_else(|| {
            let lang = web_sys::window()?.navigator().language()?;
            phone::region_from_locale(&lang)
        })
        .or_else(|| phone::region_from_locale(&page_lang?))
        .unwrap_or_default();
    let mode = opt_str(&options, "mode").unwrap_or_default();
    let theme = opt_str(&options, "theme").unwrap_or_else(|| "auto".into());
    let opts = Options {
        endpoint: opt_str(&options, "endpoint").unwrap_or_default(),
        key: opt_str(&options, "publishableKey").unwrap_or_default(),
        link_mode: matches!(mode.as_str(), "link" | "whatsapp"),
        phone: opt_str(&options, "phone").unwrap_or_default(),
        locale: locale.clone(),
        on_verified: opt_fn(&options, "onVerified"),
        on_error: opt_fn(&options, "onError"),
        theme,
        turnstile_token: opt_fn(&options, "turnstileToken"),
        nonce,
    };
    let text = Strings::new(
        &locale,
        Reflect::get(&options, &"strings".into()).unwrap_or(JsValue::UNDEFINED),
    );
    let _ = root.class_list().add_1("edge-otp");
    let _ = root.set_attribute("data-theme", &opts.theme);
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
        state: RefCell::new(State {
            region: region.to_owned(),
            region_chosen: chosen.is_some(),
            ..State::default()
        }),
    });
    if me.opts.link_mode {
        me.render_link_button();
    } else {
        let phone = me.opts.phone.clone();
        me.render_phone(&phone);
    }
    me.load_config();
    LIVE.with(|live| live.borrow_mut().push(me.clone()));
    Ok(Widget { inner: Some(me) })
}

impl Inner {
    pub(crate) fn el(&self, suffix: &str) -> Option<Element> {
        self.root
            .query_selector(&format!("#{}-{suffix}", self.id))
            .ok()
            .flatten()
    }

    pub(crate) fn input(&self, suffix: &str) -> Option<HtmlInputElement> {
        self.el(suffix)?.dyn_into().ok()
    }

    /// Drops the current screen's listeners and timers.
    pub(crate) fn reset(&self) {
        let mut s = self.state.borrow_mut();
        s.listeners.clear();
        s.timer = None;
        if let Some(c) = s.webotp.take() {
            c.abort();
        }
    }

    pub(crate) fn listen(
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
    pub(crate) fn status(&self, msg: &str, error: bool) {
        if let Some(el) = self.el("status") {
            el.set_text_content(Some(msg));
            let _ = if error {
                el.set_attribute("data-kind", "error")
            } else {
                el.remove_attribute("data-kind")
            };
        }
    }

    pub(crate) fn fail(&self, f: &api::Failure) {
        let t = &self.text;
        let msg = match f.code.as_str() {
            "invalid_request" if !self.opts.link_mode => t.get("phone_invalid"),
            "turnstile_failed" => t.get("check_failed"),
            "rate_limited" | "resend_cooldown" | "recipient_locked" | "too_many_sends"
            | "budget_exhausted" => t.fill("wait", "s", &f.retry_after.unwrap_or(60).to_string()),
            _ => t.get("error"),
        };
        self.status(&msg, true);
        let detail = Object::new();
        let _ = Reflect::set(&detail, &"code".into(), &f.code.as_str().into());
        let _ = Reflect::set(&detail, &"message".into(), &msg.as_str().into());
        // `error` does not bubble (as a resource's error event): a page's window.onerror and
        // error monitoring never mistake it for a script error.
        self.emit("error", &detail, false);
        if let Some(cb) = &self.opts.on_error {
            let _ = cb.call1(&JsValue::NULL, &detail);
        }
    }

    /// Dispatches `name` on the element with `detail` (composed: it leaves a shadow root).
    fn emit(&self, name: &str, detail: &Object, bubbles: bool) {
        let init = web_sys::CustomEventInit::new();
        init.set_detail(detail);
        init.set_bubbles(bubbles);
        init.set_composed(true);
        if let Ok(ev) = web_sys::CustomEvent::new_with_event_init_dict(name, &init) {
            let _ = self.root.dispatch_event(&ev);
        }
    }

    // ----- both modes ------------------------------------------------------------------------

    pub(crate) fn verified(self: &Rc<Self>, b: api::Body) {
        let token = b.str("token").unwrap_or_default();
        let phone = b.str("phone").unwrap_or_default();
        self.reset();
        self.state.borrow_mut().done = true;
        self.root.set_inner_html(&format!(
            r#"<p class="eo-done" role="status" aria-live="polite">✓ {}</p>"#,
            escape(&self.text.fill("verified", "phone", &phone))
        ));
        self.show_check();
        let detail = Object::new();
        let _ = Reflect::set(&detail, &"token".into(), &token.as_str().into());
        let _ = Reflect::set(&detail, &"phone".into(), &phone.as_str().into());
        self.emit("verified", &detail, true);
        if let Some(cb) = &self.opts.on_verified {
            let _ = cb.call1(&JsValue::NULL, &detail);
        }
    }
}
