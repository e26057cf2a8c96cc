// edge-otp.js: the one file a page includes. It exports `mount(element, options)` and, in a
// browser, registers the <edge-otp> element:
//
//   <script type="module" src="https://otp.example.com/widget/v0.1.0/edge-otp.js"
//     integrity="sha384-…" crossorigin="anonymous"></script>
//   <edge-otp endpoint="https://otp.example.com" publishable-key="pk_live_…"></edge-otp>
//
// scripts/build-widget.sh bundles this file with wasm-bindgen's glue (and its inline snippet)
// into one module (so the
// script tag's `integrity` covers all the JavaScript) and writes the Wasm's own sha384 into
// WASM_INTEGRITY, which the Wasm fetch checks: one pinned hash protects the whole widget.
//
// Safe to import where there is no DOM (server-side rendering): nothing runs at import but the
// glue's setup (text codecs) and the element's definition, and that only where `customElements`
// exists. The Wasm loads on the first mount. A failed load is never silent: `ready` rejects, `onError` is called, the
// element shows a short message and dispatches `error`.
/* global __EDGE_OTP_WASM_INTEGRITY__ */
import init, { mount as mountWasm } from "./edge_otp_widget.js";

/** The Wasm's Subresource Integrity hash, set by the build ("" when run unbundled). */
const WASM_INTEGRITY = typeof __EDGE_OTP_WASM_INTEGRITY__ === "string" ? __EDGE_OTP_WASM_INTEGRITY__ : "";

/** What a load failure says, before the widget's own texts exist (they live in the Wasm). */
const LOAD_FAILED = {
  en: "The phone check could not load. Check your connection and reload the page.",
  es: "No se pudo cargar la verificación del teléfono. Comprueba tu conexión y recarga la página.",
  ar: "تعذّر تحميل التحقق من الهاتف. تحقّق من اتصالك وأعد تحميل الصفحة.",
};

let loading = null;

/** The Wasm, instantiated: once per page; a failure lets the next mount try again. */
function load() {
  if (!loading) {
    loading = (async () => {
      const wasm = new URL("./edge_otp_widget_bg.wasm", import.meta.url);
      // A CORS fetch without credentials; the integrity check makes a swapped file fail loudly.
      const request = { credentials: "same-origin" };
      if (WASM_INTEGRITY) request.integrity = WASM_INTEGRITY;
      await init({ module_or_path: fetch(wasm, request) });
    })();
    loading.catch(() => { loading = null; });
  }
  return loading;
}

/** Tells the page and the person that the widget could not start. */
function failed(element, options, code, error) {
  const lang = String(options.locale || element.ownerDocument?.documentElement?.lang || "en").slice(0, 2).toLowerCase();
  const message = options.strings?.load_failed ?? LOAD_FAILED[lang] ?? LOAD_FAILED.en;
  const detail = { code, message: String(error?.message ?? error) };
  const box = element.ownerDocument.createElement("p");
  box.className = "eo-status";
  box.dataset.kind = "error";
  box.setAttribute("role", "alert");
  box.textContent = message;
  element.replaceChildren(box);
  element.dispatchEvent(new CustomEvent("error", { detail, composed: true }));
  options.onError?.(detail);
}

/**
 * Mounts the widget in `element`. Returns a handle at once: `ready` resolves to it once the
 * widget is on screen (or rejects when it cannot load), `destroy()` removes it.
 */
export function mount(element, options = {}) {
  let widget = null;
  let destroyed = false;
  const handle = {
    ready: null,
    destroy() {
      destroyed = true;
      widget?.destroy();
      widget = null;
    },
  };
  handle.ready = load().then(
    () => {
      if (destroyed) return handle;
      try {
        widget = mountWasm(element, options);
      } catch (error) {
        failed(element, options, "mount_failed", error);
        throw error;
      }
      return handle;
    },
    (error) => {
      if (!destroyed) failed(element, options, "load_failed", error);
      throw error;
    },
  );
  // `onError` and the `error` event already report it: no unhandled rejection besides.
  handle.ready.catch(() => {});
  return handle;
}

/** Loads the widget's code now, e.g. when a page expects a mount soon; resolves once loaded. */
export function preload() {
  return load().then(() => undefined);
}

/** The element's attributes and the mount options they set. */
const ATTRIBUTES = {
  endpoint: "endpoint",
  "publishable-key": "publishableKey",
  mode: "mode",
  locale: "locale",
  theme: "theme",
  phone: "phone",
  "default-country": "defaultCountry",
  nonce: "nonce",
};

function define() {
  if (typeof HTMLElement === "undefined" || typeof customElements === "undefined") return;
  if (customElements.get("edge-otp")) return;

  class EdgeOtpElement extends HTMLElement {
    static get observedAttributes() {
      return Object.keys(ATTRIBUTES);
    }

    #widget = null;
    #queued = false;
    #strings = undefined;
    #turnstileToken = undefined;

    connectedCallback() {
      if (!this.#widget) this.#mount();
    }

    disconnectedCallback() {
      this.#widget?.destroy();
      this.#widget = null;
    }

    /** A change after connection (React, Vue) re-mounts the widget; `theme` only repaints. */
    attributeChangedCallback(name, old, value) {
      if (!this.#widget || old === value) return;
      if (name === "theme") this.setAttribute("data-theme", value || "auto");
      else this.#remount();
    }

    /** The widget's `ready`: resolves once it is on screen, rejects when it cannot load. */
    get ready() {
      return this.#widget?.ready ?? Promise.resolve(null);
    }

    /** Text overrides by key (the `strings` mount option); setting it re-mounts. */
    get strings() {
      return this.#strings;
    }

    set strings(value) {
      this.#strings = value;
      this.#remount();
    }

    /** The page's own Turnstile token source (the `turnstileToken` option). */
    get turnstileToken() {
      return this.#turnstileToken;
    }

    set turnstileToken(value) {
      this.#turnstileToken = value;
      this.#remount();
    }

    /** Re-mounts once per task, however many attributes changed together. */
    #remount() {
      if (!this.#widget || this.#queued) return;
      this.#queued = true;
      queueMicrotask(() => {
        this.#queued = false;
        if (!this.isConnected) return;
        this.#widget?.destroy();
        this.#mount();
      });
    }

    #mount() {
      const options = {};
      for (const [attr, key] of Object.entries(ATTRIBUTES)) {
        if (this.hasAttribute(attr)) options[key] = this.getAttribute(attr);
      }
      if (this.#strings) options.strings = this.#strings;
      if (this.#turnstileToken) options.turnstileToken = this.#turnstileToken;
      this.#widget = mount(this, options);
    }
  }

  customElements.define("edge-otp", EdgeOtpElement);
}

define();
