// edge-otp.js: the one file a page includes. It loads the widget's Wasm from beside itself,
// exports `mount(element, options)` and registers the <edge-otp> element:
//
//   <script type="module" src="/widget/edge-otp.js"></script>
//   <edge-otp publishable-key="pk_test_..." mode="code" locale="es" theme="auto"></edge-otp>
//
// The element's attributes are mount's options (endpoint, publishable-key, mode, locale,
// theme, phone); it dispatches a bubbling `verified` event with {token, phone} as detail.
import init, { mount as mountWasm } from "./edge_otp_widget.js";

let loaded = false;
const ready = init({ module_or_path: new URL("./edge_otp_widget_bg.wasm", import.meta.url) })
  .then(() => { loaded = true; });

/** Mounts the widget in `element`; returns a handle whose `destroy()` removes it. */
export function mount(element, options = {}) {
  if (loaded) return mountWasm(element, options);
  let widget = null;
  let destroyed = false;
  const handle = {
    ready: ready.then(() => {
      if (!destroyed) widget = mountWasm(element, options);
      return handle;
    }),
    destroy() {
      destroyed = true;
      if (widget) widget.destroy();
      widget = null;
    },
  };
  return handle;
}

const ATTRIBUTES = { endpoint: "endpoint", "publishable-key": "publishableKey", mode: "mode",
  locale: "locale", theme: "theme", phone: "phone" };

class EdgeOtpElement extends HTMLElement {
  connectedCallback() {
    if (this.widget) return;
    const options = {};
    for (const [attr, key] of Object.entries(ATTRIBUTES)) {
      if (this.hasAttribute(attr)) options[key] = this.getAttribute(attr);
    }
    this.widget = mount(this, options);
  }

  disconnectedCallback() {
    if (this.widget) this.widget.destroy();
    this.widget = null;
  }
}

if (!customElements.get("edge-otp")) customElements.define("edge-otp", EdgeOtpElement);

export { ready };
