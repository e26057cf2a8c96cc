//! Cloudflare Turnstile before `start`, when the instance asks for it. At mount the widget reads
//! `GET /widget/v1/config` (its `default_country`, when the service gives one, is the country
//! selector's suggestion); a `turnstile_site_key` there means every `start` carries a
//! `turnstile_token`. The widget renders Turnstile itself (explicit rendering, the script added
//! once per document) in a slot of each screen that can start, keeps the latest token, and
//! resets Turnstile after each start (a token works once). A page that passes its own
//! `turnstileToken` function gets no Turnstile from the widget: that function is asked instead.

use crate::{api, Inner};
use js_sys::{Function, Object, Promise, Reflect};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::Element;

const SCRIPT_ID: &str = "edge-otp-turnstile";
const SCRIPT_SRC: &str = "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit";

/// The Turnstile widget on the current screen, and its callbacks (alive as long as it is).
pub(crate) struct Check {
    id: JsValue,
    _token: Closure<dyn FnMut(JsValue)>,
    _expired: Closure<dyn FnMut()>,
}

/// `window.turnstile`, once its script has run.
fn turnstile() -> Option<JsValue> {
    let t = Reflect::get(&js_sys::global(), &"turnstile".into()).ok()?;
    t.is_object().then_some(t)
}

/// Calls `turnstile[method](args…)`.
fn call(method: &str, args: &js_sys::Array) -> Option<JsValue> {
    let t = turnstile()?;
    let f: Function = Reflect::get(&t, &method.into()).ok()?.dyn_into().ok()?;
    f.apply(&t, args).ok()
}

/// Turnstile's script element, added to the document unless it is there (with the page's
/// `nonce`, for a Content-Security-Policy that lists scripts by nonce).
fn script(nonce: Option<&str>) -> Option<Element> {
    let doc = web_sys::window()?.document()?;
    if let Some(s) = doc.get_element_by_id(SCRIPT_ID) {
        return Some(s);
    }
    let s = doc.create_element("script").ok()?;
    s.set_id(SCRIPT_ID);
    let _ = s.set_attribute("src", SCRIPT_SRC);
    let _ = s.set_attribute("async", "");
    if let Some(n) = nonce {
        let _ = s.set_attribute("nonce", n);
    }
    doc.head()?.append_child(&s).ok()?;
    Some(s)
}

/// The page's `turnstileToken()`: a string, or a Promise of one.
async fn page_token(f: &Function) -> Option<String> {
    let v = f.call0(&JsValue::NULL).ok()?;
    JsFuture::from(Promise::resolve(&v)).await.ok()?.as_string()
}

impl Inner {
    /// Reads the widget config once, at mount: the Turnstile site key, if any (none, too, when
    /// the config cannot be read: a `start` refused for want of a token then says why).
    pub(crate) fn load_config(self: &Rc<Self>) {
        let me = Rc::downgrade(self);
        let endpoint = self.opts.endpoint.clone();
        let route = format!(
            "config?key={}",
            js_sys::encode_uri_component(&self.opts.key)
        );
        spawn_local(async move {
            // A widget destroyed at once (before this task ran) asks for nothing.
            if me.upgrade().is_none_or(|me| me.state.borrow().done) {
                return;
            }
            let config = api::get(&endpoint, &route).await.ok();
            let field = |name| config.as_ref().and_then(|b| b.str(name));
            let key = field("turnstile_site_key").filter(|k| !k.is_empty());
            let country = field("default_country");
            let Some(me) = me.upgrade() else { return };
            if let Some((region, _)) = country.as_deref().and_then(crate::phone::lookup) {
                me.hint_region(region);
            }
            let waiting = {
                let mut s = me.state.borrow_mut();
                s.config = Some(key);
                std::mem::take(&mut s.config_wait)
            };
            waiting.into_iter().for_each(|w| w.wake());
            me.show_check();
        });
    }

    /// The Turnstile site key, once the config is read.
    async fn site_key(&self) -> Option<String> {
        poll_fn(|cx| {
            let mut s = self.state.borrow_mut();
            match &s.config {
                Some(key) => Poll::Ready(key.clone()),
                None => {
                    s.config_wait.push(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Replaces the previous screen's Turnstile with one in this screen's slot (`#{id}-ts`),
    /// if the instance wants Turnstile and the page brings no token source of its own. Before
    /// Turnstile's script has loaded, it adds the script and comes back on its `load`.
    pub(crate) fn show_check(self: &Rc<Self>) {
        let old = {
            let mut s = self.state.borrow_mut();
            s.token = None;
            s.check.take()
        };
        if let Some(old) = old {
            call("remove", &js_sys::Array::of1(&old.id));
        }
        let key = self.state.borrow().config.clone().flatten();
        let (Some(key), Some(slot), None) = (key, self.el("ts"), &self.opts.turnstile_token) else {
            return;
        };
        if turnstile().is_some() {
            self.render_check(&slot, &key);
        } else if let Some(script) = script(self.opts.nonce.as_deref()) {
            // A listener of this screen: gone with it, so a later screen renders its own.
            self.listen(&script, "load", |me, _| me.show_check());
        }
    }

    fn render_check(self: &Rc<Self>, slot: &Element, key: &str) {
        let me = Rc::downgrade(self);
        let token = Closure::<dyn FnMut(JsValue)>::new(move |t: JsValue| {
            if let Some(me) = me.upgrade() {
                me.state.borrow_mut().token = t.as_string();
            }
        });
        let me = Rc::downgrade(self);
        let expired = Closure::<dyn FnMut()>::new(move || {
            if let Some(me) = me.upgrade() {
                me.state.borrow_mut().token = None;
            }
        });
        let params = Object::new();
        let _ = Reflect::set(&params, &"sitekey".into(), &key.into());
        let _ = Reflect::set(&params, &"callback".into(), token.as_ref());
        let _ = Reflect::set(&params, &"expired-callback".into(), expired.as_ref());
        let _ = Reflect::set(&params, &"theme".into(), &self.opts.theme.as_str().into());
        let Some(id) = call("render", &js_sys::Array::of2(slot, &params)) else {
            return;
        };
        self.state.borrow_mut().check = Some(Check {
            id,
            _token: token,
            _expired: expired,
        });
    }

    /// POSTs `start` with `fields`, plus a Turnstile token when there is one, then resets
    /// Turnstile. None (and a polite request to complete the check) when the instance wants a
    /// token and there is none yet.
    pub(crate) async fn start(
        self: &Rc<Self>,
        mut fields: Vec<(&'static str, JsValue)>,
    ) -> Option<Result<api::Body, api::Failure>> {
        let wanted = self.site_key().await.is_some();
        let token = match &self.opts.turnstile_token {
            Some(f) => page_token(f).await,
            None => self.state.borrow().token.clone(),
        };
        match token.filter(|t| !t.is_empty()) {
            Some(t) => fields.push(("turnstile_token", t.into())),
            None if wanted => {
                self.status(&self.text.get("check_needed"), false);
                return None;
            }
            None => {}
        }
        let answer = api::post(&self.opts.endpoint, "start", &fields).await;
        let id = {
            let mut s = self.state.borrow_mut();
            s.token = None;
            s.check.as_ref().map(|c| c.id.clone())
        };
        if let Some(id) = id {
            call("reset", &js_sys::Array::of1(&id));
        }
        Some(answer)
    }
}
