/** What a verified widget hands the page: a signed token for the site's backend. */
export interface Verified {
  /** HS256 JWT; the site's backend checks it with a standard JWT library. */
  token: string;
  /** The verified number, E.164. */
  phone: string;
}

export interface MountOptions {
  /** The service's base URL: "" (this origin), "/_otp", "https://otp.example.com". */
  endpoint?: string;
  /** pk_live_… or pk_test_…: names the instance, not a secret. */
  publishableKey: string;
  /** "code" (default) or "link" (WhatsApp). */
  mode?: "code" | "link";
  onVerified?: (result: Verified) => void;
  onError?: (error: { code: string }) => void;
  /** "en" (default), "es", "ar"; defaults to the page's <html lang>. */
  locale?: string;
  /** Any text by key, e.g. { send_code: "Text me" }. */
  strings?: Record<string, string>;
  theme?: "light" | "dark" | "auto";
  /** A number to prefill. */
  phone?: string;
  /**
   * The page's own Turnstile token source, called before each start. When given, the widget
   * renders no Turnstile of its own (it does when the instance has Turnstile on).
   */
  turnstileToken?: () => string | Promise<string>;
}

export interface WidgetHandle {
  /** Removes the widget and stops its timers, polls and listeners. */
  destroy(): void;
}

/** Mounts the widget in `element`. */
export function mount(element: HTMLElement, options: MountOptions): WidgetHandle;

/** Resolves once the Wasm is loaded (mount works before that too). */
export const ready: Promise<void>;
