// Types of edge-otp.js: `mount`, the <edge-otp> element, its events and the texts it shows.

/** What a verified widget hands the page: a signed token for the site's backend. */
export interface Verified {
  /** A JWT the site's backend checks with a standard JWT library (docs/widget.md). */
  token: string;
  /** The verified number, E.164. */
  phone: string;
}

/** Why the widget stopped or could not start. */
export interface WidgetError {
  /**
   * The widget API's error code (`invalid_request`, `rate_limited`, `turnstile_failed`, …),
   * `network` when the service could not be reached, `load_failed` when the widget's own files
   * could not load, `mount_failed` when the element could not take the widget.
   */
  code: string;
  /** What the widget showed (or the load error's text for `load_failed` and `mount_failed`). */
  message?: string;
}

/** Every text the widget shows; each can be replaced through `strings`. */
export type StringKey =
  | "phone_label"
  | "phone_hint"
  | "phone_invalid"
  | "country"
  | "country_needed"
  | "phone_preview"
  | "send_code"
  | "sending"
  | "code_label"
  | "code_input"
  | "checking"
  | "wrong_code"
  | "wrong_code_last"
  | "resend"
  | "resend_in"
  | "change_number"
  | "expired"
  | "verified"
  | "error"
  | "wait"
  | "whatsapp_button"
  | "whatsapp_open"
  | "whatsapp_scan"
  | "whatsapp_phone"
  | "whatsapp_waiting"
  | "whatsapp_claimed"
  | "whatsapp_expired"
  | "try_again"
  | "qr_label"
  | "check_needed"
  | "check_failed"
  | "load_failed";

export interface MountOptions {
  /** The service's base URL: "" (this origin), "/_otp", "https://otp.example.com". */
  endpoint?: string;
  /** pk_live_… or pk_test_…: names the instance, not a secret. */
  publishableKey: string;
  /** "code" (default) or "link" (WhatsApp). */
  mode?: "code" | "link";
  onVerified?: (result: Verified) => void;
  onError?: (error: WidgetError) => void;
  /** "en" (default), "es", "ar"; defaults to the page's <html lang>. */
  locale?: string;
  /** Any text by key, e.g. { send_code: "Text me" }. */
  strings?: Partial<Record<StringKey, string>>;
  theme?: "light" | "dark" | "auto";
  /** A number to prefill; with a leading + it also sets the country selector. */
  phone?: string;
  /**
   * The country selector's first choice (ISO 3166 code, e.g. "ES"). Without it: the service's
   * suggestion, else the region of navigator.language, else of <html lang>, else none.
   */
  defaultCountry?: string;
  /**
   * A CSP nonce: the widget then styles itself with a `<style nonce>` (and gives Turnstile's
   * script the nonce) instead of a constructed stylesheet.
   */
  nonce?: string;
  /**
   * The page's own Turnstile token source, called before each start. When given, the widget
   * renders no Turnstile of its own (it does when the instance has Turnstile on).
   */
  turnstileToken?: () => string | Promise<string>;
}

export interface WidgetHandle {
  /**
   * Resolves to this handle once the widget is on screen; rejects when its files cannot load
   * (after calling `onError` and showing a short message in the element).
   */
  ready: Promise<WidgetHandle>;
  /** Removes the widget and stops its timers, polls and listeners. */
  destroy(): void;
}

/** Mounts the widget in `element`. */
export function mount(element: HTMLElement, options: MountOptions): WidgetHandle;

/** Loads the widget's code now (a mount does it anyway); resolves once loaded. */
export function preload(): Promise<void>;

/** `verified`: bubbles and leaves shadow roots. */
export type VerifiedEvent = CustomEvent<Verified>;
/** `error`: on the element only (it does not bubble, as a resource's error event). */
export type WidgetErrorEvent = CustomEvent<WidgetError>;

/** `<edge-otp>`: the attributes are the mount options (kebab-case); changing one re-mounts. */
export interface EdgeOtpElement extends HTMLElement {
  /** Text overrides (the `strings` option); setting it re-mounts. */
  strings: Partial<Record<StringKey, string>> | undefined;
  /** The page's own Turnstile token source; setting it re-mounts. */
  turnstileToken: (() => string | Promise<string>) | undefined;
  /** The current widget's `ready`. */
  readonly ready: Promise<WidgetHandle | null>;
  addEventListener<K extends keyof EdgeOtpElementEventMap>(
    type: K,
    listener: (this: EdgeOtpElement, ev: EdgeOtpElementEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof EdgeOtpElementEventMap>(
    type: K,
    listener: (this: EdgeOtpElement, ev: EdgeOtpElementEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | EventListenerOptions,
  ): void;
}

/** The element's events: every HTMLElement event, `verified`, and its own `error`. */
export interface EdgeOtpElementEventMap extends Omit<HTMLElementEventMap, "error"> {
  verified: VerifiedEvent;
  error: WidgetErrorEvent;
}

declare global {
  interface HTMLElementTagNameMap {
    "edge-otp": EdgeOtpElement;
  }
  // `error` cannot join it (HTMLElementEventMap's `error` is an ErrorEvent): the element's own
  // map above types it.
  interface HTMLElementEventMap {
    /** Dispatched by <edge-otp> (and the element `mount` was given) once the phone is verified. */
    verified: VerifiedEvent;
  }
}
