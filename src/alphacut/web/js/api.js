// Thin wrappers over the local JSON API. Same origin only; the session cookie is sent by the browser.

export class ApiError extends Error {
  constructor(status, code, reason, retryAfter) {
    super(reason || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.reason = reason;
    this.retryAfter = retryAfter;
  }
}

async function check(res) {
  if (res.ok) return res;
  let body = {};
  try { body = await res.json(); } catch { /* not JSON */ }
  const ra = Number(res.headers.get('retry-after')) || null;
  throw new ApiError(res.status, body.code || 'error', body.reason || res.statusText, ra);
}

export async function getJSON(url) {
  const res = await fetch(url, { credentials: 'same-origin' });
  return (await check(res)).json();
}

export async function sendJSON(method, url, body) {
  const res = await fetch(url, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await check(res);
  return res.status === 204 ? null : res.json();
}

export async function uploadImage(file, { model, quality }) {
  const form = new FormData();
  form.append('file', file, file.name);
  if (model) form.append('model', model);
  form.append('quality', quality || 'fast');
  const res = await fetch('/api/jobs', { method: 'POST', body: form, credentials: 'same-origin' });
  return (await check(res)).json();
}

export async function loadImage(url) {
  const res = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
  await check(res);
  const blob = await res.blob();
  return createImageBitmap(blob);
}

// Plain words for the failure codes the server sends.
const PLAIN = {
  'too-large': 'This image is too large for the current limits.',
  'unsupported-format': 'This is not an image format alphacut can read.',
  'corrupt': 'The file is damaged or not a complete image.',
  'truncated': 'The file is cut short (incomplete download?).',
  'empty': 'The file is empty.',
  'queue-full': 'The queue is full — it will be retried automatically.',
  'model-not-installed': 'The model is not installed yet. Open “Models & system” to download it.',
  'license-not-accepted': 'This model has a non-commercial licence that must be accepted first.',
  'inference': 'The model failed on this image.',
  'verification': 'The output did not pass verification, so it was not delivered.',
  'cancelled': 'Cancelled.',
  'unauthorized': 'This page lost its session — reopen the link printed by “alphacut serve”.',
};

export function plainError(code, reason) {
  const lead = PLAIN[code];
  if (!reason) return lead || 'Something went wrong with this image.';
  if (lead && !['queue-full', 'cancelled'].includes(code)) return `${lead} (${reason})`;
  return reason.charAt(0).toUpperCase() + reason.slice(1);
}

export function formatBytes(n) {
  if (n == null) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}
