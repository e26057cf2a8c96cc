//! The widget's one stylesheet, injected once per document. Everything visual goes through
//! CSS custom properties (`--edge-otp-*`), so a site restyles the widget from its own CSS;
//! `data-theme="dark"` (or `auto` and a dark system setting) switches the defaults.

use web_sys::Document;

const STYLE_ID: &str = "edge-otp-style";

const CSS: &str = r#"
.edge-otp{--edge-otp-accent:#0b7a55;--edge-otp-accent-fg:#fff;--edge-otp-bg:#fff;--edge-otp-fg:#1c2330;--edge-otp-muted:#5b6474;--edge-otp-border:#c9cfd8;--edge-otp-error:#b42318;--edge-otp-radius:10px;--edge-otp-font:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
font-family:var(--edge-otp-font);color:var(--edge-otp-fg);background:var(--edge-otp-bg);display:block;max-width:24rem;line-height:1.45}
.edge-otp[data-theme=dark]{--edge-otp-accent:#3ccf91;--edge-otp-accent-fg:#06281b;--edge-otp-bg:#151a21;--edge-otp-fg:#e8ecf2;--edge-otp-muted:#9aa4b2;--edge-otp-border:#3a4350;--edge-otp-error:#ff8a80}
@media (prefers-color-scheme:dark){.edge-otp[data-theme=auto]{--edge-otp-accent:#3ccf91;--edge-otp-accent-fg:#06281b;--edge-otp-bg:#151a21;--edge-otp-fg:#e8ecf2;--edge-otp-muted:#9aa4b2;--edge-otp-border:#3a4350;--edge-otp-error:#ff8a80}}
.edge-otp *{box-sizing:border-box}
.edge-otp label{display:block;font-weight:600;margin:0 0 .4rem}
.edge-otp .eo-hint{color:var(--edge-otp-muted);font-size:.85rem;margin:.3rem 0 0}
.edge-otp .eo-phone{width:100%;font:inherit;font-size:1.1rem;padding:.6rem .75rem;border:1px solid var(--edge-otp-border);border-radius:var(--edge-otp-radius);background:transparent;color:inherit}
.edge-otp button,.edge-otp .eo-button{display:inline-block;font:inherit;font-weight:600;padding:.65rem 1.2rem;margin-top:.75rem;border:0;border-radius:var(--edge-otp-radius);background:var(--edge-otp-accent);color:var(--edge-otp-accent-fg);cursor:pointer;text-decoration:none;text-align:center}
.edge-otp button.eo-link{background:none;color:var(--edge-otp-accent);padding:.3rem 0;margin-inline-end:1rem;font-weight:500}
.edge-otp button:disabled{opacity:.55;cursor:default}
.edge-otp .eo-otp{position:relative;display:inline-flex;gap:.45rem;direction:ltr}
.edge-otp .eo-box{width:2.6rem;height:3.1rem;border:1px solid var(--edge-otp-border);border-radius:var(--edge-otp-radius);display:flex;align-items:center;justify-content:center;font-size:1.5rem;font-variant-numeric:tabular-nums}
.edge-otp .eo-box[data-active]{border-color:var(--edge-otp-accent);box-shadow:0 0 0 2px color-mix(in srgb,var(--edge-otp-accent) 35%,transparent)}
.edge-otp .eo-code{position:absolute;inset:0;width:100%;height:100%;opacity:0;border:0;font-size:16px;letter-spacing:2.6rem;caret-color:transparent;background:transparent;color:transparent}
.edge-otp[data-invalid] .eo-box,.edge-otp .eo-phone[aria-invalid=true]{border-color:var(--edge-otp-error)}
.edge-otp .eo-status{min-height:1.4rem;margin:.5rem 0 0;font-size:.92rem}
.edge-otp .eo-status[data-kind=error]{color:var(--edge-otp-error)}
.edge-otp .eo-qr{display:block;width:11rem;height:11rem;background:#fff;padding:.5rem;border-radius:var(--edge-otp-radius);margin:.5rem 0}
.edge-otp .eo-done{font-weight:600;color:var(--edge-otp-accent)}
"#;

/// Adds the stylesheet to `doc` unless it is there already.
pub fn inject(doc: &Document) {
    if doc.get_element_by_id(STYLE_ID).is_some() {
        return;
    }
    if let (Ok(style), Some(head)) = (doc.create_element("style"), doc.head()) {
        style.set_id(STYLE_ID);
        style.set_text_content(Some(CSS));
        let _ = head.append_child(&style);
    }
}
