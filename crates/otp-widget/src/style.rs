//! The widget's one stylesheet, shared by every widget of a page. Everything visual goes
//! through CSS custom properties (`--edge-otp-*`), so a site restyles the widget from its own
//! CSS; `data-theme="dark"` (or `auto` and a dark system setting) switches the defaults. The
//! rules read private `--eo-*` properties that fall back to the defaults only where the page sets
//! no `--edge-otp-*` of its own (on the element or any ancestor), so the page always wins.
//!
//! The sheet is a constructed `CSSStyleSheet` adopted by the widget's document (or shadow root):
//! stylesheet APIs are not inline styles, so a page's Content-Security-Policy needs no
//! `style-src 'unsafe-inline'`. A page that passes a `nonce` (or a browser without
//! `adoptedStyleSheets`) gets a `<style>` element in `<head>` instead, carrying that nonce.

use js_sys::{Array, Reflect};
use std::cell::RefCell;
use wasm_bindgen::JsCast;
use web_sys::{CssStyleSheet, Document, HtmlElement};

const STYLE_ID: &str = "edge-otp-style";

thread_local! {
    /// The constructed sheet, made once and adopted wherever a widget is mounted.
    static SHEET: RefCell<Option<CssStyleSheet>> = const { RefCell::new(None) };
}

const CSS: &str = r#"
.edge-otp{--eo-accent:var(--edge-otp-accent,#0b7a55);--eo-accent-fg:var(--edge-otp-accent-fg,#fff);--eo-bg:var(--edge-otp-bg,#fff);--eo-fg:var(--edge-otp-fg,#1c2330);--eo-muted:var(--edge-otp-muted,#5b6474);--eo-border:var(--edge-otp-border,#c9cfd8);--eo-error:var(--edge-otp-error,#b42318);--eo-radius:var(--edge-otp-radius,10px);--eo-font:var(--edge-otp-font,system-ui,-apple-system,"Segoe UI",Roboto,sans-serif);
font-family:var(--eo-font);color:var(--eo-fg);background:var(--eo-bg);display:block;max-width:24rem;line-height:1.45}
.edge-otp[data-theme=dark]{--eo-accent:var(--edge-otp-accent,#3ccf91);--eo-accent-fg:var(--edge-otp-accent-fg,#06281b);--eo-bg:var(--edge-otp-bg,#151a21);--eo-fg:var(--edge-otp-fg,#e8ecf2);--eo-muted:var(--edge-otp-muted,#9aa4b2);--eo-border:var(--edge-otp-border,#3a4350);--eo-error:var(--edge-otp-error,#ff8a80)}
@media (prefers-color-scheme:dark){.edge-otp[data-theme=auto]{--eo-accent:var(--edge-otp-accent,#3ccf91);--eo-accent-fg:var(--edge-otp-accent-fg,#06281b);--eo-bg:var(--edge-otp-bg,#151a21);--eo-fg:var(--edge-otp-fg,#e8ecf2);--eo-muted:var(--edge-otp-muted,#9aa4b2);--eo-border:var(--edge-otp-border,#3a4350);--eo-error:var(--edge-otp-error,#ff8a80)}}
.edge-otp *{box-sizing:border-box}
.edge-otp label{display:block;font-weight:600;margin:0 0 .4rem}
.edge-otp .eo-hint{color:var(--eo-muted);font-size:.85rem;margin:.3rem 0 0}
.edge-otp .eo-tel{display:flex;gap:.5rem}
.edge-otp .eo-phone{flex:1;min-width:0;width:100%;font:inherit;font-size:1.1rem;padding:.6rem .75rem;border:1px solid var(--eo-border);border-radius:var(--eo-radius);background:transparent;color:inherit}
.edge-otp .eo-cc{position:relative;flex:none;display:flex;align-items:center;gap:.3rem;padding:0 .65rem;font-size:1.05rem;white-space:nowrap;border:1px solid var(--eo-border);border-radius:var(--eo-radius)}
.edge-otp .eo-cc:after{content:"\25BE";color:var(--eo-muted)}
.edge-otp .eo-cc:focus-within{outline:2px solid var(--eo-accent);outline-offset:1px}
.edge-otp .eo-cc select{position:absolute;inset:0;width:100%;height:100%;opacity:0;cursor:pointer;font:inherit}
.edge-otp button,.edge-otp .eo-button{display:inline-block;font:inherit;font-weight:600;padding:.65rem 1.2rem;margin-top:.75rem;border:0;border-radius:var(--eo-radius);background:var(--eo-accent);color:var(--eo-accent-fg);cursor:pointer;text-decoration:none;text-align:center}
.edge-otp button.eo-link{background:none;color:var(--eo-accent);padding:.3rem 0;margin-inline-end:1rem;font-weight:500}
.edge-otp button:disabled{opacity:.55;cursor:default}
.edge-otp .eo-otp{position:relative;display:inline-flex;gap:.45rem;direction:ltr}
.edge-otp .eo-box{width:2.6rem;height:3.1rem;border:1px solid var(--eo-border);border-radius:var(--eo-radius);display:flex;align-items:center;justify-content:center;font-size:1.5rem;font-variant-numeric:tabular-nums}
.edge-otp .eo-box[data-active]{border-color:var(--eo-accent);box-shadow:0 0 0 2px color-mix(in srgb,var(--eo-accent) 35%,transparent)}
.edge-otp .eo-code{position:absolute;inset:0;width:100%;height:100%;opacity:0;border:0;font-size:16px;letter-spacing:2.6rem;caret-color:transparent;background:transparent;color:transparent}
.edge-otp[data-invalid] .eo-box,.edge-otp .eo-phone[aria-invalid=true]{border-color:var(--eo-error)}
.edge-otp .eo-status{min-height:1.4rem;margin:.5rem 0 0;font-size:.92rem}
.edge-otp .eo-status[data-kind=error]{color:var(--eo-error)}
.edge-otp .eo-qr{display:block;width:11rem;height:11rem;background:#fff;padding:.5rem;border-radius:var(--eo-radius);margin:.5rem 0}
.edge-otp .eo-ts:not(:empty){margin-top:.75rem}
.edge-otp .eo-done{font-weight:600;color:var(--eo-accent)}
"#;

/// Styles the widget in `root`: the shared sheet adopted by `root`'s document or shadow root,
/// or, with a `nonce` or without `adoptedStyleSheets`, one `<style>` in `doc`'s head.
pub fn inject(root: &HtmlElement, doc: &Document, nonce: Option<&str>) {
    if nonce.is_none() && adopt(root, doc) {
        return;
    }
    if doc.get_element_by_id(STYLE_ID).is_some() {
        return;
    }
    if let (Ok(style), Some(head)) = (doc.create_element("style"), doc.head()) {
        style.set_id(STYLE_ID);
        if let Some(n) = nonce {
            let _ = style.set_attribute("nonce", n);
        }
        style.set_text_content(Some(CSS));
        let _ = head.append_child(&style);
    }
}

/// Adds the shared sheet to the `adoptedStyleSheets` of `root`'s shadow root, or of `doc`,
/// unless it is there; false where the browser cannot.
fn adopt(root: &HtmlElement, doc: &Document) -> bool {
    let key = "adoptedStyleSheets".into();
    let node = root.get_root_node();
    let target: &wasm_bindgen::JsValue = if Reflect::has(&node, &key).unwrap_or(false) {
        &node
    } else {
        doc
    };
    let Some(sheets) = Reflect::get(target, &key)
        .ok()
        .and_then(|s| s.dyn_into::<Array>().ok())
    else {
        return false;
    };
    let sheet = SHEET.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            let sheet = CssStyleSheet::new().ok()?;
            sheet.replace_sync(CSS).ok()?;
            *cell = Some(sheet);
        }
        cell.clone()
    });
    let Some(sheet) = sheet else { return false };
    if !sheets.includes(&sheet, 0) {
        // A new array: some browsers' adoptedStyleSheets take assignment only.
        let next = sheets.slice(0, sheets.length());
        next.push(&sheet);
        if Reflect::set(target, &key, &next).is_err() {
            return false;
        }
    }
    true
}
