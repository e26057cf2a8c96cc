//! WebOTP: where the browser has it (`OTPCredential`, Chrome on Android), the code of an SMS
//! bound to this origin fills the input by itself. The request is aborted when the code
//! screen goes (success, another number, destroy).

use crate::Inner;
use js_sys::{Function, Object, Reflect};
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;

impl Inner {
    /// Fills the code from an SMS where the browser offers WebOTP (Chrome on Android).
    pub(crate) fn web_otp(self: &Rc<Self>) {
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
}
