// The demo's widget pane: mounts the widget twice (code mode and WhatsApp mode) on the demo
// instance's publishable key, shows its token in the page's "Verified" card, and routes the
// widget's wa.me link to the simulated phone instead of a real WhatsApp.
import { mount } from '/widget/edge-otp.js';

const $ = (id) => document.getElementById(id);

/** Where the service's routes are: at the root, or under the middleware's prefix. */
async function findService() {
  for (const base of ['', '/_otp']) {
    try {
      const res = await fetch(`${base}/dev/info`);
      if (res.ok && (res.headers.get('content-type') ?? '').includes('json')) return { base, info: await res.json() };
    } catch {
      /* try the next */
    }
  }
  return null;
}

const service = await findService();
if (service?.info.publishable_key) {
  const { base, info } = service;
  const onVerified = ({ token }) => window.dispatchEvent(new CustomEvent('demo:token', { detail: token }));
  const phone = () => $('phone')?.value ?? '';
  mount($('widget-code-slot'), { endpoint: base, publishableKey: info.publishable_key, mode: 'code', phone: phone(), onVerified });
  mount($('widget-link-slot'), { endpoint: base, publishableKey: info.publishable_key, mode: 'link', onVerified });
  // The simulated phone plays WhatsApp: the wa.me link's message goes to its compose box.
  $('widget-link-slot').addEventListener('click', (e) => {
    const a = e.target.closest('a[href^="https://wa.me/"]');
    if (!a) return;
    e.preventDefault();
    const text = new URL(a.href).searchParams.get('text') ?? '';
    const box = $('compose-text');
    box.value = text;
    box.dispatchEvent(new Event('input'));
    box.focus();
  });
} else {
  $('widget-code-slot').textContent = 'The demo instance has no widget table (widget.publishable_key) in wrangler.toml.';
}
