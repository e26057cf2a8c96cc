//! The widget's behaviour as a user meets it, in headless Chromium (`wasm-pack test --headless
//! --chrome crates/otp-widget`). `window.fetch` is replaced by a fake widget API that answers
//! per docs/widget.md and records every request, so the widget's real fetch path runs. Its
//! `/config` has no Turnstile unless a test gives a `site_key`; those tests install a stub
//! `window.turnstile` before mounting, so no script is loaded.

use edge_otp_widget::{mount, qr, Widget};
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{Element, HtmlElement, HtmlInputElement};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
export function fake_api(cfg) {
  const state = { requests: [], attempts: cfg.attempts ?? 3, polls: 0, verified: [] };
  window.__edgeOtp = state;
  window.fetch = async (input, init) => {
    const req = input instanceof Request ? input : new Request(input, init);
    const body = req.method === "GET" ? null : await req.json();
    const url = new URL(req.url, location.href);
    const route = url.pathname;
    state.requests.push({ route, body, method: req.method, query: url.search });
    const json = (status, value) => new Response(JSON.stringify(value),
      { status, headers: { "content-type": "application/json" } });
    if (route.endsWith("/widget/v1/config")) {
      return json(200, { name: "test", modes: ["code", "link"], code_length: 6, alphabet: "digits",
        channel: "whatsapp", resend_cooldown: 30, turnstile_site_key: cfg.site_key ?? null,
        ...(cfg.default_country ? { default_country: cfg.default_country } : {}) });
    }
    if (route.endsWith("/widget/v1/start") && cfg.turnstile_fail) {
      return json(403, { error: { code: "turnstile_failed", message: "the human check failed",
        field: "turnstile_token" } });
    }
    if (route.endsWith("/widget/v1/start") && body.mode === "link") {
      return json(200, { session: "L1", mode: "link", link: cfg.link, poll_secret: "ps1",
        expires_at: "2026-12-04T12:00:00+00:00", expires_in: cfg.expires_in ?? 600,
        poll_interval: cfg.poll_interval ?? 0.05 });
    }
    if (route.endsWith("/widget/v1/start") && cfg.rate_limited) {
      return json(429, { error: { code: "rate_limited", message: "slow down", retry_after: 42 } });
    }
    if (route.endsWith("/widget/v1/start")) {
      if (cfg.cooldown && state.requests.filter(r => r.route.endsWith("/start")).length > 1) {
        return json(429, { error: { code: "resend_cooldown", message: "wait", field: "phone",
          retry_after: cfg.cooldown } });
      }
      return json(200, { session: "S1", mode: "code", phone: body.phone, channel: "whatsapp",
        code_length: cfg.code_length ?? 6, alphabet: cfg.alphabet ?? "digits",
        expires_at: "2026-12-04T12:00:00+00:00", expires_in: 300, resend_in: cfg.resend_in ?? 30 });
    }
    if (route.endsWith("/widget/v1/verify")) {
      if (body.code === (cfg.code ?? "123456")) {
        return json(200, { status: "verified", phone: "+14155550100", token: "tok.en.jwt", expires_in: 600 });
      }
      state.attempts -= 1;
      return json(422, { error: { code: "invalid_code", message: "wrong code", field: "code",
        attempts_left: state.attempts } });
    }
    if (route.endsWith("/widget/v1/poll")) {
      state.polls += 1;
      if (cfg.poll_status) return json(200, { status: cfg.poll_status });
      if (state.polls >= (cfg.polls_until_verified ?? 2)) {
        return json(200, { status: "verified", phone: "+14155550100", token: "link.tok.jwt", expires_in: 600 });
      }
      return json(200, { status: "pending" });
    }
    return json(404, { error: { code: "not_found", message: "no route" } });
  };
  return state;
}

export function options(mode, locale) {
  const o = { endpoint: "/_otp", publishableKey: "pk_test_widget", mode,
    onVerified: (v) => window.__edgeOtp.verified.push(v) };
  if (locale) o.locale = locale;
  return o;
}

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

export function requests(route) {
  return window.__edgeOtp.requests.filter((r) => r.route.endsWith(route)).map((r) => r.body);
}

export function queries(route) {
  return window.__edgeOtp.requests.filter((r) => r.route.endsWith(route))
    .map((r) => r.method + " " + r.query);
}

// A stand-in for Cloudflare's `window.turnstile`: render keeps the options (the widget's
// callback among them) and returns an id; reset and remove are counted.
export function stub_turnstile() {
  const t = { renders: [], resets: [], removes: [],
    render(el, params) { t.renders.push({ el, params }); return "ts" + t.renders.length; },
    reset(id) { t.resets.push(id); },
    remove(id) { t.removes.push(id); },
    // What Turnstile does when the user passes: the latest widget's callback gets a token.
    pass(token) { t.renders[t.renders.length - 1].params.callback(token); },
  };
  window.turnstile = t;
  return t;
}

export function unstub_turnstile() { delete window.turnstile; }

export function type_into(input, value) {
  input.value = value;
  input.dispatchEvent(new InputEvent("input", { bubbles: true, inputType: "insertText" }));
}

export function paste_into(input, text) {
  input.focus();
  const data = new DataTransfer();
  data.setData("text/plain", text);
  input.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
}

export function pick(select, value) {
  select.value = value;
  select.dispatchEvent(new Event("input", { bubbles: true }));
  select.dispatchEvent(new Event("change", { bubbles: true }));
}

export function language() { return navigator.language; }

export function adopted_widget_sheets() {
  return document.adoptedStyleSheets.filter((s) =>
    [...s.cssRules].some((r) => r.selectorText === ".edge-otp")).length;
}

export function submit(form) {
  form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
}

export function on_event(el, name) {
  const seen = [];
  el.addEventListener(name, (e) => seen.push(e.detail));
  return seen;
}
"#)]
extern "C" {
    fn fake_api(cfg: &JsValue) -> JsValue;
    fn options(mode: &str, locale: Option<String>) -> JsValue;
    fn sleep(ms: u32) -> js_sys::Promise;
    fn requests(route: &str) -> js_sys::Array;
    fn queries(route: &str) -> js_sys::Array;
    fn stub_turnstile() -> JsValue;
    fn unstub_turnstile();
    fn type_into(input: &HtmlInputElement, value: &str);
    fn paste_into(input: &HtmlInputElement, text: &str);
    fn submit(form: &Element);
    fn pick(select: &Element, value: &str);
    fn language() -> String;
    fn adopted_widget_sheets() -> u32;
    fn on_event(el: &Element, name: &str) -> js_sys::Array;
}

const LINK: &str = "https://wa.me/15550001234?text=Verify%20me%3A%20ABC123";

fn cfg(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap_throw();
    }
    Reflect::set(&o, &"link".into(), &LINK.into()).unwrap_throw();
    o.into()
}

async fn wait(ms: u32) {
    JsFuture::from(sleep(ms)).await.unwrap_throw();
}

/// Waits (up to 3 s) until `selector` matches inside `host`.
async fn find(host: &Element, selector: &str) -> Element {
    for _ in 0..300 {
        if let Some(e) = host.query_selector(selector).unwrap_throw() {
            return e;
        }
        wait(10).await;
    }
    panic!("{selector} never appeared");
}

/// Waits (up to 3 s) until `f` holds.
async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        wait(10).await;
    }
    panic!("timed out waiting for {what}");
}

fn host() -> Element {
    let doc = web_sys::window().unwrap_throw().document().unwrap_throw();
    let el = doc.create_element("div").unwrap_throw();
    doc.body().unwrap_throw().append_child(&el).unwrap_throw();
    el
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_throw()
}

fn text(el: &Element) -> String {
    el.text_content().unwrap_or_default()
}

fn boxes(host: &Element) -> String {
    let list = host.query_selector_all(".eo-box").unwrap_throw();
    (0..list.length())
        .map(|i| {
            list.item(i)
                .unwrap_throw()
                .text_content()
                .unwrap_or_default()
        })
        .map(|t| if t.is_empty() { "_".into() } else { t })
        .collect()
}

/// Mounts a code-mode widget and gets it past the phone step.
async fn code_step(
    fake: &[(&str, JsValue)],
    locale: Option<&str>,
) -> (Element, Widget, HtmlInputElement) {
    fake_api(&cfg(fake));
    let host = host();
    let widget = mount(host.clone(), options("code", locale.map(String::from))).unwrap_throw();
    let phone: HtmlInputElement = find(&host, ".eo-phone").await.unchecked_into();
    phone.set_value("+1 (415) 555-0100");
    submit(&find(&host, "form").await);
    let code: HtmlInputElement = find(&host, ".eo-code").await.unchecked_into();
    (host, widget, code)
}

#[wasm_bindgen_test]
async fn phone_step_starts_with_the_normalized_number() {
    let (_host, mut w, _) = code_step(&[], None).await;
    let starts = requests("/_otp/widget/v1/start");
    assert_eq!(starts.length(), 1);
    let body = starts.get(0);
    assert_eq!(get(&body, "phone"), "+14155550100");
    assert_eq!(get(&body, "mode"), "code");
    assert_eq!(get(&body, "publishable_key"), "pk_test_widget");
    w.destroy();
}

#[wasm_bindgen_test]
async fn invalid_phone_shows_inline_error_and_sends_nothing() {
    fake_api(&cfg(&[]));
    let host = host();
    let mut w = mount(host.clone(), options("code", None)).unwrap_throw();
    let phone: HtmlInputElement = find(&host, ".eo-phone").await.unchecked_into();
    pick(&find(&host, "select").await, "US");
    phone.set_value("555-0100");
    submit(&find(&host, "form").await);
    assert_eq!(phone.get_attribute("aria-invalid").as_deref(), Some("true"));
    let status = find(&host, ".eo-status").await;
    assert_eq!(status.get_attribute("aria-live").as_deref(), Some("polite"));
    assert!(
        text(&status).contains("does not look like a phone number"),
        "{}",
        text(&status)
    );
    let described = phone.get_attribute("aria-describedby").unwrap_or_default();
    assert!(described.contains(&status.id()));
    wait(50).await;
    assert_eq!(requests("/widget/v1/start").length(), 0);
    w.destroy();
}

#[wasm_bindgen_test]
async fn typing_digits_fills_boxes_and_letters_are_refused() {
    let (host, mut w, code) = code_step(&[], None).await;
    type_into(&code, "12");
    assert_eq!(boxes(&host), "12____");
    type_into(&code, "12a3");
    assert_eq!(code.value(), "123");
    assert_eq!(boxes(&host), "123___");
    w.destroy();
}

#[wasm_bindgen_test]
async fn backspace_removes_the_last_character() {
    let (host, mut w, code) = code_step(&[], None).await;
    type_into(&code, "1234");
    type_into(&code, "123");
    assert_eq!(boxes(&host), "123___");
    assert_eq!(requests("/widget/v1/verify").length(), 0);
    w.destroy();
}

#[wasm_bindgen_test]
async fn pasted_code_with_dashes_fills_and_submits_exactly_the_code() {
    let (host, mut w, code) = code_step(&[], None).await;
    paste_into(&code, "123-456");
    assert_eq!(code.value(), "123456");
    assert_eq!(boxes(&host), "123456");
    until("a verify request", || {
        requests("/widget/v1/verify").length() == 1
    })
    .await;
    let body = requests("/_otp/widget/v1/verify").get(0);
    assert_eq!(get(&body, "code"), "123456");
    assert_eq!(get(&body, "session"), "S1");
    w.destroy();
}

#[wasm_bindgen_test]
async fn pasted_code_with_spaces_fills_and_submits() {
    let (host, mut w, code) = code_step(&[], None).await;
    paste_into(&code, " 12 34 56 ");
    assert_eq!(boxes(&host), "123456");
    until("a verify request", || {
        requests("/widget/v1/verify").length() == 1
    })
    .await;
    assert_eq!(get(&requests("/widget/v1/verify").get(0), "code"), "123456");
    w.destroy();
}

#[wasm_bindgen_test]
async fn wrong_code_announces_attempts_left_and_clears_the_input() {
    let (host, mut w, code) = code_step(&[], None).await;
    type_into(&code, "999999");
    let status = find(&host, ".eo-status").await;
    until("the attempts message", || {
        text(&status).contains("2 attempts left")
    })
    .await;
    assert_eq!(status.get_attribute("aria-live").as_deref(), Some("polite"));
    assert_eq!(code.value(), "");
    assert_eq!(boxes(&host), "______");
    assert_eq!(code.get_attribute("aria-invalid").as_deref(), Some("true"));
    type_into(&code, "1");
    assert_eq!(code.get_attribute("aria-invalid").as_deref(), Some("false"));
    w.destroy();
}

#[wasm_bindgen_test]
async fn verified_code_calls_on_verified_and_dispatches_the_event() {
    let (host, mut w, code) = code_step(&[], None).await;
    let events = on_event(&host.parent_element().unwrap_throw(), "verified");
    type_into(&code, "123456");
    until("onVerified", || events.length() == 1).await;
    let state = web_sys::window()
        .map(|w| get(&w, "__edgeOtp"))
        .unwrap_throw();
    let verified = get(&state, "verified");
    assert_eq!(Reflect::get(&verified, &"length".into()).unwrap_throw(), 1);
    let first = Reflect::get_u32(&verified, 0).unwrap_throw();
    assert_eq!(get(&first, "token"), "tok.en.jwt");
    assert_eq!(get(&first, "phone"), "+14155550100");
    assert_eq!(get(&events.get(0), "token"), "tok.en.jwt");
    assert!(host.query_selector(".eo-code").unwrap_throw().is_none());
    w.destroy();
}

#[wasm_bindgen_test]
async fn resend_counts_down_from_the_servers_seconds() {
    let (host, mut w, _) =
        code_step(&[("resend_in", 2.into()), ("cooldown", 7.into())], None).await;
    let resend = find(&host, "[id$=-resend]").await;
    assert!(text(&resend).contains("in 2 s"), "{}", text(&resend));
    assert!(resend.has_attribute("disabled"));
    until("the countdown's end", || !resend.has_attribute("disabled")).await;
    assert!(!text(&resend).contains(" s"), "{}", text(&resend));
    // The server refuses the resend with its own cooldown: the button counts that down.
    resend.unchecked_ref::<HtmlElement>().click();
    until("the server's cooldown", || text(&resend).contains("in 7 s")).await;
    assert!(resend.has_attribute("disabled"));
    w.destroy();
}

#[wasm_bindgen_test]
async fn code_input_is_one_labelled_left_to_right_one_time_code_field() {
    let (host, mut w, code) = code_step(&[], Some("ar")).await;
    assert_eq!(host.get_attribute("dir").as_deref(), Some("rtl"));
    assert_eq!(code.get_attribute("dir").as_deref(), Some("ltr"));
    assert_eq!(
        find(&host, ".eo-otp").await.get_attribute("dir").as_deref(),
        Some("ltr")
    );
    assert_eq!(
        code.get_attribute("autocomplete").as_deref(),
        Some("one-time-code")
    );
    assert_eq!(code.get_attribute("inputmode").as_deref(), Some("numeric"));
    assert_eq!(code.get_attribute("maxlength").as_deref(), Some("6"));
    assert!(code
        .get_attribute("aria-label")
        .is_some_and(|l| !l.is_empty()));
    assert_eq!(host.query_selector_all("input").unwrap_throw().length(), 1);
    let start = requests("/widget/v1/start").get(0);
    assert_eq!(get(&start, "locale"), "ar");
    w.destroy();
    assert_eq!(host.child_element_count(), 0);
}

#[wasm_bindgen_test]
async fn alphanumeric_codes_take_letters_in_a_text_input() {
    let fake = [
        ("alphabet", "alphanumeric".into()),
        ("code", "AB12CD".into()),
    ];
    let (host, mut w, code) = code_step(&fake, None).await;
    assert_eq!(code.get_attribute("inputmode").as_deref(), Some("text"));
    paste_into(&code, "AB-12-CD");
    assert_eq!(boxes(&host), "AB12CD");
    w.destroy();
}

/// The dark modules of a rendered QR code SVG, decoded back to its text.
fn decode_svg(svg: &str) -> String {
    let view = svg
        .split("viewBox=\"0 0 ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let side: usize = view.parse().unwrap();
    let path = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let mut dark = vec![false; side * side];
    for square in path.split('M').filter(|s| !s.is_empty()) {
        let (x, rest) = square.split_once(',').unwrap();
        let y: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
        dark[y * side + x] = true;
    }
    const PX: usize = 4;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(side * PX, side * PX, |x, y| {
        if dark[(y / PX) * side + x / PX] {
            0
        } else {
            255
        }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn qr_code_decodes_to_the_link() {
    let svg = qr::svg(LINK, "QR").unwrap();
    assert_eq!(decode_svg(&svg), LINK);
}

#[wasm_bindgen_test]
async fn link_mode_shows_a_qr_code_of_the_link_and_polls_until_verified() {
    fake_api(&cfg(&[
        ("poll_interval", 0.05.into()),
        ("polls_until_verified", 3.into()),
    ]));
    let host = host();
    let mut w = mount(host.clone(), options("link", None)).unwrap_throw();
    find(&host, "button")
        .await
        .unchecked_into::<HtmlElement>()
        .click();
    let svg = find(&host, "svg.eo-qr").await;
    assert_eq!(decode_svg(&svg.outer_html()), LINK);
    let open = find(&host, "a[href]").await;
    assert_eq!(open.get_attribute("href").as_deref(), Some(LINK));
    let events = on_event(&host, "verified");
    until("the verified poll", || events.length() == 1).await;
    assert_eq!(get(&events.get(0), "token"), "link.tok.jwt");
    let polls = requests("/_otp/widget/v1/poll");
    assert_eq!(polls.length(), 3);
    assert_eq!(get(&polls.get(0), "poll_secret"), "ps1");
    assert_eq!(get(&polls.get(0), "session"), "L1");
    w.destroy();
}

#[wasm_bindgen_test]
async fn link_mode_offers_a_restart_when_the_link_expires() {
    fake_api(&cfg(&[("poll_status", "expired".into())]));
    let host = host();
    let mut w = mount(host.clone(), options("link", None)).unwrap_throw();
    find(&host, "button")
        .await
        .unchecked_into::<HtmlElement>()
        .click();
    find(&host, "svg.eo-qr").await;
    until("the expiry", || text(&host).contains("expired")).await;
    find(&host, "button")
        .await
        .unchecked_into::<HtmlElement>()
        .click();
    find(&host, "svg.eo-qr").await;
    assert_eq!(requests("/widget/v1/start").length(), 2);
    w.destroy();
}

#[wasm_bindgen_test]
async fn destroy_stops_polling_and_empties_the_element() {
    fake_api(&cfg(&[
        ("poll_interval", 0.05.into()),
        ("polls_until_verified", 1000.into()),
    ]));
    let host = host();
    let mut w = mount(host.clone(), options("link", None)).unwrap_throw();
    find(&host, "button")
        .await
        .unchecked_into::<HtmlElement>()
        .click();
    until("a first poll", || requests("/widget/v1/poll").length() >= 1).await;
    w.destroy();
    let polls = requests("/widget/v1/poll").length();
    wait(300).await;
    assert_eq!(requests("/widget/v1/poll").length(), polls);
    assert_eq!(host.child_element_count(), 0);
}

#[wasm_bindgen_test]
async fn theme_is_one_shared_stylesheet_and_a_data_attribute() {
    fake_api(&cfg(&[]));
    let (a, b) = (host(), host());
    let o = options("code", None);
    Reflect::set(&o, &"theme".into(), &"dark".into()).unwrap_throw();
    let mut wa = mount(a.clone(), o).unwrap_throw();
    let mut wb = mount(b.clone(), options("code", None)).unwrap_throw();
    assert_eq!(a.get_attribute("data-theme").as_deref(), Some("dark"));
    assert_eq!(b.get_attribute("data-theme").as_deref(), Some("auto"));
    // A constructed sheet, adopted once: no <style> a Content-Security-Policy would refuse.
    assert_eq!(adopted_widget_sheets(), 1);
    let doc = web_sys::window().unwrap_throw().document().unwrap_throw();
    assert!(doc
        .query_selector("style#edge-otp-style:not([nonce])")
        .unwrap_throw()
        .is_none());
    wa.destroy();
    wb.destroy();
}

#[wasm_bindgen_test]
async fn a_nonce_option_styles_the_widget_with_a_style_element_carrying_it() {
    fake_api(&cfg(&[]));
    let host = host();
    let o = options("code", None);
    Reflect::set(&o, &"nonce".into(), &"n0nce".into()).unwrap_throw();
    let mut w = mount(host.clone(), o).unwrap_throw();
    let doc = web_sys::window().unwrap_throw().document().unwrap_throw();
    let style = doc
        .query_selector("head style#edge-otp-style")
        .unwrap_throw()
        .expect("a <style> in head");
    assert_eq!(get(&style, "nonce"), "n0nce");
    assert!(text(&style).contains(".edge-otp{"));
    w.destroy();
    style.remove();
}

fn len(v: &JsValue) -> u32 {
    Reflect::get(v, &"length".into())
        .unwrap_throw()
        .as_f64()
        .unwrap_or(0.0) as u32
}

fn pass(stub: &JsValue, token: &str) {
    let f: js_sys::Function = get(stub, "pass").unchecked_into();
    f.call1(stub, &token.into()).unwrap_throw();
}

#[wasm_bindgen_test]
async fn config_is_read_at_mount_and_without_turnstile_start_carries_no_token() {
    let (host, mut w, _) = code_step(&[], None).await;
    let config = queries("/_otp/widget/v1/config");
    assert_eq!(config.length(), 1);
    assert_eq!(config.get(0), "GET ?key=pk_test_widget");
    let start = requests("/widget/v1/start").get(0);
    assert!(get(&start, "turnstile_token").is_undefined());
    assert!(host
        .query_selector(".eo-ts:not(:empty)")
        .unwrap_throw()
        .is_none());
    w.destroy();
}

#[wasm_bindgen_test]
async fn turnstile_token_goes_with_start_and_is_used_once() {
    fake_api(&cfg(&[("site_key", "0xSITE".into())]));
    let stub = stub_turnstile();
    let host = host();
    let mut w = mount(host.clone(), options("code", None)).unwrap_throw();
    until("Turnstile rendered", || len(&get(&stub, "renders")) == 1).await;
    let render = Reflect::get_u32(&get(&stub, "renders"), 0).unwrap_throw();
    let params = get(&render, "params");
    assert_eq!(get(&params, "sitekey"), "0xSITE");
    assert_eq!(get(&params, "theme"), "auto");
    // Rendered in the widget, before the Send button.
    let slot: Element = get(&render, "el").unchecked_into();
    assert!(host.contains(Some(&slot)));
    let send = find(&host, "button[type=submit]").await;
    assert!(slot
        .next_element_sibling()
        .is_some_and(|n| n.is_same_node(Some(&send))));

    // No token yet: a polite request, and no start.
    let phone: HtmlInputElement = find(&host, ".eo-phone").await.unchecked_into();
    phone.set_value("+1 (415) 555-0100");
    submit(&find(&host, "form").await);
    let status = find(&host, ".eo-status").await;
    until("the check request", || {
        text(&status).contains("Complete the check above")
    })
    .await;
    assert_eq!(status.get_attribute("aria-live").as_deref(), Some("polite"));
    wait(50).await;
    assert_eq!(requests("/widget/v1/start").length(), 0);
    assert!(send.get_attribute("disabled").is_none());

    pass(&stub, "tok-1");
    submit(&find(&host, "form").await);
    find(&host, ".eo-code").await;
    let starts = requests("/widget/v1/start");
    assert_eq!(starts.length(), 1);
    assert_eq!(get(&starts.get(0), "turnstile_token"), "tok-1");
    // Tokens are single use: the check is reset after the start.
    let resets = get(&stub, "resets");
    assert_eq!(len(&resets), 1);
    assert_eq!(Reflect::get_u32(&resets, 0).unwrap_throw(), "ts1");
    // The code screen has its own check for a resend.
    until("a check for the resend", || {
        len(&get(&stub, "renders")) == 2
    })
    .await;
    w.destroy();
    unstub_turnstile();
}

#[wasm_bindgen_test]
async fn turnstile_failed_resets_the_check_and_says_so() {
    fake_api(&cfg(&[
        ("site_key", "0xSITE".into()),
        ("turnstile_fail", true.into()),
    ]));
    let stub = stub_turnstile();
    let host = host();
    let mut w = mount(host.clone(), options("code", Some("es".into()))).unwrap_throw();
    until("Turnstile rendered", || len(&get(&stub, "renders")) == 1).await;
    find(&host, ".eo-phone")
        .await
        .unchecked_into::<HtmlInputElement>()
        .set_value("+34 612 345 678");
    pass(&stub, "tok-bad");
    submit(&find(&host, "form").await);
    let status = find(&host, ".eo-status").await;
    until("the failure", || {
        text(&status).contains("verificación ha fallado")
    })
    .await;
    assert_eq!(status.get_attribute("data-kind").as_deref(), Some("error"));
    assert_eq!(len(&get(&stub, "resets")), 1);
    assert_eq!(
        get(&requests("/widget/v1/start").get(0), "turnstile_token"),
        "tok-bad"
    );
    // The used token is gone: the next try waits for a new one.
    submit(&find(&host, "form").await);
    until("the check request", || text(&status).contains("Completa")).await;
    assert_eq!(requests("/widget/v1/start").length(), 1);
    w.destroy();
    unstub_turnstile();
}

#[wasm_bindgen_test]
async fn link_mode_sends_the_turnstile_token_with_start() {
    fake_api(&cfg(&[("site_key", "0xSITE".into())]));
    let stub = stub_turnstile();
    let host = host();
    let mut w = mount(host.clone(), options("link", None)).unwrap_throw();
    until("Turnstile rendered", || len(&get(&stub, "renders")) == 1).await;
    let render = Reflect::get_u32(&get(&stub, "renders"), 0).unwrap_throw();
    let slot: Element = get(&render, "el").unchecked_into();
    let button = find(&host, "button").await;
    assert!(slot
        .next_element_sibling()
        .is_some_and(|n| n.is_same_node(Some(&button))));
    button.unchecked_ref::<HtmlElement>().click();
    until("the check request", || {
        text(&host).contains("Complete the check above")
    })
    .await;
    assert_eq!(requests("/widget/v1/start").length(), 0);
    pass(&stub, "tok-link");
    button.unchecked_ref::<HtmlElement>().click();
    find(&host, "svg.eo-qr").await;
    assert_eq!(
        get(&requests("/widget/v1/start").get(0), "turnstile_token"),
        "tok-link"
    );
    assert_eq!(len(&get(&stub, "resets")), 1);
    // The QR screen starts nothing: its check is removed.
    assert_eq!(len(&get(&stub, "removes")), 1);
    w.destroy();
    unstub_turnstile();
}

#[wasm_bindgen_test]
async fn a_pages_own_token_source_replaces_the_widgets_turnstile() {
    fake_api(&cfg(&[("site_key", "0xSITE".into())]));
    let stub = stub_turnstile();
    let host = host();
    let o = options("code", None);
    let source = js_sys::Function::new_no_args("return Promise.resolve('page-tok')");
    Reflect::set(&o, &"turnstileToken".into(), &source).unwrap_throw();
    let mut w = mount(host.clone(), o).unwrap_throw();
    find(&host, ".eo-phone")
        .await
        .unchecked_into::<HtmlInputElement>()
        .set_value("+1 415 555 0100");
    until("the config", || queries("/widget/v1/config").length() == 1).await;
    wait(20).await;
    submit(&find(&host, "form").await);
    find(&host, ".eo-code").await;
    assert_eq!(
        get(&requests("/widget/v1/start").get(0), "turnstile_token"),
        "page-tok"
    );
    assert_eq!(len(&get(&stub, "renders")), 0);
    w.destroy();
    unstub_turnstile();
}

#[wasm_bindgen_test]
async fn turnstile_waits_for_its_script_and_renders_on_its_load() {
    // The script element is already in the page (another widget added it) and has not loaded:
    // the widgets add no second one, and render once it fires `load`. No network involved.
    let doc = web_sys::window().unwrap_throw().document().unwrap_throw();
    let script = doc.create_element("script").unwrap_throw();
    script.set_id("edge-otp-turnstile");
    script.set_attribute("type", "text/plain").unwrap_throw();
    doc.head()
        .unwrap_throw()
        .append_child(&script)
        .unwrap_throw();
    fake_api(&cfg(&[("site_key", "0xSITE".into())]));
    let (a, b) = (host(), host());
    let mut wa = mount(a.clone(), options("code", None)).unwrap_throw();
    let mut wb = mount(b.clone(), options("link", None)).unwrap_throw();
    until("the config", || queries("/widget/v1/config").length() == 2).await;
    wait(50).await;
    let scripts = doc
        .query_selector_all("script#edge-otp-turnstile")
        .unwrap_throw();
    assert_eq!(scripts.length(), 1);
    let stub = stub_turnstile();
    script
        .dispatch_event(&web_sys::Event::new("load").unwrap_throw())
        .unwrap_throw();
    assert_eq!(len(&get(&stub, "renders")), 2);
    wa.destroy();
    wb.destroy();
    unstub_turnstile();
    script.remove();
}

// ----- the country selector and E.164 as it is typed ----------------------------------------

/// Mounts a code-mode widget with `extra` options; returns its host, handle, select and input.
async fn phone_step(
    fake: &[(&str, JsValue)],
    extra: &[(&str, &str)],
) -> (Element, Widget, Element, HtmlInputElement) {
    fake_api(&cfg(fake));
    let host = host();
    let o = options("code", None);
    for (k, v) in extra {
        Reflect::set(&o, &(*k).into(), &(*v).into()).unwrap_throw();
    }
    let widget = mount(host.clone(), o).unwrap_throw();
    let select = find(&host, "select").await;
    let phone: HtmlInputElement = find(&host, ".eo-phone").await.unchecked_into();
    (host, widget, select, phone)
}

fn value(select: &Element) -> String {
    get(select, "value").as_string().unwrap_or_default()
}

fn shown(host: &Element) -> String {
    text(
        &host
            .query_selector("[id$=-ccv]")
            .unwrap_throw()
            .unwrap_throw(),
    )
}

fn hint(host: &Element) -> String {
    text(
        &host
            .query_selector(".eo-hint")
            .unwrap_throw()
            .unwrap_throw(),
    )
}

#[wasm_bindgen_test]
async fn the_selector_starts_at_the_browsers_region_with_its_flag_and_code() {
    let (host, mut w, select, _) = phone_step(&[], &[]).await;
    let want = edge_otp_widget::phone::region_from_locale(&language()).unwrap_or_default();
    assert_eq!(value(&select), want, "navigator.language = {}", language());
    if let Some((region, code)) = edge_otp_widget::phone::lookup(want) {
        let flag = edge_otp_widget::phone::flag(region);
        assert_eq!(shown(&host), format!("{flag} +{code}"));
    }
    assert_eq!(
        select.get_attribute("aria-label").as_deref(),
        Some("Country")
    );
    // Every region, after a "Country" placeholder.
    let options = select.query_selector_all("option").unwrap_throw();
    assert_eq!(options.length(), 246);
    w.destroy();
}

#[wasm_bindgen_test]
async fn spanish_digits_with_spain_selected_become_plus_34_never_plus_61() {
    let (host, mut w, select, phone) = phone_step(&[], &[("defaultCountry", "es")]).await;
    assert_eq!(value(&select), "ES");
    assert_eq!(shown(&host), "🇪🇸 +34");
    type_into(&phone, "612 345 678");
    assert_eq!(hint(&host), "The code goes to +34 612345678");
    submit(&find(&host, "form").await);
    find(&host, ".eo-code").await;
    let start = requests("/widget/v1/start").get(0);
    assert_eq!(get(&start, "phone"), "+34612345678");
    w.destroy();
}

#[wasm_bindgen_test]
async fn a_number_typed_with_plus_overrides_the_selector_and_moves_it() {
    let (host, mut w, select, phone) = phone_step(&[], &[("defaultCountry", "ES")]).await;
    type_into(&phone, "+44 7400 123456");
    assert_eq!(value(&select), "GB");
    assert_eq!(shown(&host), "🇬🇧 +44");
    assert_eq!(hint(&host), "The code goes to +44 7400123456");
    // 00 is the international prefix too.
    type_into(&phone, "0033 6 12 34 56 78");
    assert_eq!(value(&select), "FR");
    submit(&find(&host, "form").await);
    find(&host, ".eo-code").await;
    assert_eq!(
        get(&requests("/widget/v1/start").get(0), "phone"),
        "+33612345678"
    );
    w.destroy();
}

#[wasm_bindgen_test]
async fn picking_a_country_reformats_the_preview_and_drops_the_trunk_zero() {
    let (host, mut w, select, phone) = phone_step(&[], &[("defaultCountry", "ES")]).await;
    type_into(&phone, "07400 123456");
    pick(&select, "GB");
    assert_eq!(shown(&host), "🇬🇧 +44");
    assert_eq!(hint(&host), "The code goes to +44 7400123456");
    pick(&select, "IT");
    assert_eq!(hint(&host), "The code goes to +39 07400123456");
    w.destroy();
}

#[wasm_bindgen_test]
async fn without_a_country_a_national_number_asks_for_one_and_sends_nothing() {
    let (host, mut w, select, phone) = phone_step(&[], &[]).await;
    pick(&select, "");
    assert_eq!(shown(&host), "Country");
    type_into(&phone, "612 345 678");
    assert!(
        hint(&host).starts_with("Choose your country"),
        "{}",
        hint(&host)
    );
    submit(&find(&host, "form").await);
    let status = find(&host, ".eo-status").await;
    assert!(
        text(&status).contains("Choose your country, or start the number with +"),
        "{}",
        text(&status)
    );
    assert_eq!(status.get_attribute("data-kind").as_deref(), Some("error"));
    wait(50).await;
    assert_eq!(requests("/widget/v1/start").length(), 0);
    w.destroy();
}

#[wasm_bindgen_test]
async fn the_services_suggestion_applies_until_someone_chooses() {
    let (_, mut w, select, _) = phone_step(&[("default_country", "EG".into())], &[]).await;
    until("the service's country", || value(&select) == "EG").await;
    w.destroy();
    // The page's own choice wins over the service's.
    let (_, mut w, select, _) = phone_step(
        &[("default_country", "EG".into())],
        &[("defaultCountry", "MX")],
    )
    .await;
    until("the config", || queries("/widget/v1/config").length() == 1).await;
    wait(20).await;
    assert_eq!(value(&select), "MX");
    w.destroy();
}

#[wasm_bindgen_test]
async fn countries_are_named_in_the_widgets_language_and_sorted_by_name() {
    fake_api(&cfg(&[]));
    let host = host();
    let mut w = mount(host.clone(), options("code", Some("es".into()))).unwrap_throw();
    let select = find(&host, "select").await;
    let label = |region: &str| {
        select
            .query_selector(&format!("option[value={region}]"))
            .unwrap_throw()
            .map(|o| text(&o))
            .unwrap_or_default()
    };
    assert_eq!(label("ES"), "España +34");
    assert_eq!(label("DE"), "Alemania +49");
    let list = select.query_selector_all("option").unwrap_throw();
    let names: Vec<String> = (1..list.length())
        .map(|i| text(&list.item(i).unwrap_throw().unchecked_into()))
        .collect();
    let at = |name: &str| names.iter().position(|n| n.starts_with(name)).unwrap();
    assert!(at("Alemania") < at("España"));
    assert!(at("España") < at("Estados Unidos"));
    assert!(at("Estados Unidos") < at("Japón"));
    w.destroy();
}

#[wasm_bindgen_test]
async fn api_errors_dispatch_an_error_event_that_does_not_bubble() {
    let (host, mut w, _, phone) = phone_step(
        &[("rate_limited", true.into())],
        &[("defaultCountry", "US")],
    )
    .await;
    let mine = on_event(&host, "error");
    let parent = on_event(&host.parent_element().unwrap_throw(), "error");
    type_into(&phone, "(415) 555-0100");
    submit(&find(&host, "form").await);
    until("the error event", || mine.length() == 1).await;
    assert_eq!(get(&mine.get(0), "code"), "rate_limited");
    assert_eq!(
        get(&mine.get(0), "message"),
        "Too many tries. Try again in 42 s."
    );
    assert_eq!(parent.length(), 0);
    w.destroy();
}
