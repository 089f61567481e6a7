// alphacut web app: queue, live progress (SSE), viewer/editor wiring, export, models and capabilities.
import { ApiError, formatBytes, getJSON, loadImage, plainError, sendJSON, uploadImage } from './api.js';
import { Viewer } from './viewer.js';

const $ = (sel) => document.querySelector(sel);
const $$ = (sel) => Array.from(document.querySelectorAll(sel));

const STAGES = {
  uploading: 'Uploading…', waiting: 'Waiting for a free slot…', queued: 'Queued', decoding: 'Reading image',
  inferring: 'Finding the subject', refining: 'Refining edges', encoding: 'Encoding', verifying: 'Verifying',
  done: 'Done', failed: 'Failed', cancelled: 'Cancelled', expired: 'Expired', rejected: 'Not accepted',
};
const ACTIVE = new Set(['uploading', 'waiting', 'queued', 'decoding', 'inferring', 'refining', 'encoding', 'verifying']);
const FINAL = new Set(['done', 'failed', 'cancelled', 'expired', 'rejected']);
const UPLOAD_CONCURRENCY = 2;

const app = {
  items: [],            // {key, name, file, thumb, jobId, stage, progress, error, job}
  byJob: new Map(),
  selected: null,
  quality: 'fast',
  model: null,
  caps: null,
  models: [],
  uploadQueue: [],
  uploading: 0,
  editChain: Promise.resolve(),
  pendingEdits: 0,
  loadToken: 0,
  stagesSeen: new Set(),
};
window.alphacut = app; // handy for debugging and the browser tests

let keySeq = 0;

// --- viewer -------------------------------------------------------------------------------

const viewer = new Viewer($('#viewport'), $('#canvas'), {
  onEdit: (ops) => queueEdit(`/api/jobs/${selectedItem().jobId}/edits`, { ops }),
  onChange: () => { $('#zoom-label').textContent = `${Math.round(viewer.zoom * 100)}%`; },
});
viewer.setTool('hand');
app.viewer = viewer;

function selectedItem() { return app.items.find((i) => i.key === app.selected) || null; }

// A video or an animation: one clip job (frames progress, a playing preview, clip formats).
function clipOf(item) { return (item && item.job && item.job.clip) || null; }

function seconds(s) {
  if (s == null || !isFinite(s)) return '';
  if (s < 60) return `${Math.max(1, Math.round(s))} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s % 60)).padStart(2, '0')} s`;
}

// "Frame 3 of 30", "1.4 fps · about 20 s left": what the queue and the viewer say while a clip runs.
function frameText(clip) {
  const n = clip.frames_total || clip.frames || 0;
  const head = n ? `Frame ${clip.frames_done} of ${n}` : `Frame ${clip.frames_done}`;
  const rate = clip.rate ? `${clip.rate >= 10 ? clip.rate.toFixed(0) : clip.rate.toFixed(1)} fps` : '';
  const eta = clip.eta_s != null ? `about ${seconds(clip.eta_s)} left` : '';
  return { head, tail: [rate, eta].filter(Boolean).join(' · ') };
}

function clipFraction(clip) {
  const n = clip.frames_total || clip.frames || 0;
  return n ? Math.min(1, clip.frames_done / n) : 0;
}

function queueEdit(url, body) {
  const item = selectedItem();
  if (!item || !item.jobId) return Promise.resolve();
  const jobId = item.jobId;
  app.pendingEdits++;
  setBusy(true, 'Applying edit…');
  app.editChain = app.editChain.then(async () => {
    try {
      const state = await sendJSON('POST', url, body);
      item.edits = state;
      updateEditButtons();
      if (app.pendingEdits === 1 && selectedItem() && selectedItem().jobId === jobId) {
        const m = await loadImage(`/api/jobs/${jobId}/matte.png?v=${state.version}`);
        if (selectedItem() && selectedItem().jobId === jobId) viewer.setMatte(m);
      }
    } catch (err) {
      toast(err instanceof ApiError ? plainError(err.code, err.reason) : String(err));
      try {
        const m = await loadImage(`/api/jobs/${jobId}/matte.png?v=${Date.now()}`);
        if (selectedItem() && selectedItem().jobId === jobId) viewer.setMatte(m);
      } catch { /* keep what we have */ }
    } finally {
      app.pendingEdits--;
      if (!app.pendingEdits) setBusy(false);
      document.body.dataset.edits = String((Number(document.body.dataset.edits) || 0) + 1);
    }
  });
  return app.editChain;
}

function setBusy(on, text) {
  $('#busy').hidden = !on;
  if (text) $('#busy-text').textContent = text;
}

function updateEditButtons() {
  const item = selectedItem();
  const e = (item && item.edits) || {};
  const clip = !!clipOf(item);
  setClipMode(clip);
  const ready = !!(item && item.stage === 'done') && !clip;
  $('#undo').disabled = !ready || !e.can_undo;
  $('#redo').disabled = !ready || !e.can_redo;
  $('#reset').disabled = !ready || !e.steps;
  $('#clear-selection').hidden = !viewer.selection;
}

// Refinement tools are for stills: for a clip they stay visible, disabled, with the reason.
function setClipMode(on) {
  $('.editbar').classList.toggle('for-clip', on);
  $('.toolbar').classList.toggle('for-clip', on);
  $('#clip-note').hidden = !on;
  const why = 'Manual refinement is for still images; a clip downloads in any of its formats below';
  $$('.tool').forEach((b) => {
    b.disabled = on;
    if (on) { if (!b.dataset.title) b.dataset.title = b.title; b.title = why; } else if (b.dataset.title) b.title = b.dataset.title;
  });
  $$('[data-view], #zoom-in, #zoom-out, #zoom-fit, #zoom-100').forEach((b) => { b.disabled = on; });
  if (on) { $('#opts-brush').hidden = true; $('#opts-wand').hidden = true; } else setToolOptions(viewer.tool);
}

function hideClip() {
  const v = $('#clip-video');
  if (!v.hidden || v.getAttribute('src')) { v.pause(); v.removeAttribute('src'); v.load(); }
  v.hidden = true;
  $('#clip-img').hidden = true;
  $('#clip-img').removeAttribute('src');
  $('#clip-stage').hidden = true;
  delete document.body.dataset.clipPreview;
}

// The finished clip, playing: a <video> of the WebM with alpha (transparent in Chromium and
// Firefox) or the animated WebP in an <img>, over the chosen background.
function showClip(item, clip) {
  const id = item.jobId;
  const video = clip.kind === 'video';
  const url = `/api/jobs/${id}/result?format=${video ? 'webm' : 'webp'}&download=false`;
  const token = app.loadToken;
  $('#clip-stage').hidden = false;
  setBusy(true, 'Preparing the preview…');
  const done = (ok) => {
    if (token !== app.loadToken) return;
    setBusy(false);
    if (!ok) toast(`The preview of ${item.name} could not be shown; the downloads are not affected.`);
  };
  if (video) {
    const v = $('#clip-video');
    $('#clip-img').hidden = true;
    v.hidden = false;
    v.onloadeddata = () => done(true);
    v.onerror = () => done(false);
    v.onplaying = () => { document.body.dataset.clipPreview = 'playing'; };
    if (v.getAttribute('src') !== url) { v.src = url; v.play().catch(() => {}); }
  } else {
    const img = $('#clip-img');
    const v = $('#clip-video');
    v.pause(); v.removeAttribute('src'); v.hidden = true;
    img.hidden = false;
    img.onload = () => { done(true); document.body.dataset.clipPreview = 'playing'; };
    img.onerror = () => done(false);
    if (img.getAttribute('src') !== url) img.src = url;
  }
  const j = item.job || {};
  $('#file-meta').textContent = [item.name, j.width && `${j.width}×${j.height}`,
    `${clip.frames_done || clip.frames} frames`, clip.duration && `${clip.duration.toFixed(1)} s`,
    clip.kind === 'video' ? (clip.audio ? `audio (${clip.audio})` : 'no audio') : (clip.loop === 0 ? 'loops' : ''),
    clip.rate && `cut out at ${clip.rate.toFixed(1)} fps`].filter(Boolean).join(' · ');
  document.body.dataset.shown = id;
}

function setClipBackground(bg, imageUrl) {
  const f = $('#clip-frame');
  f.classList.toggle('checker', bg === 'checker');
  f.style.backgroundColor = bg !== 'checker' && bg !== 'image' ? bg : '';
  f.style.backgroundImage = bg === 'image' && imageUrl ? `url("${imageUrl}")` : '';
}

async function showItem(item) {
  app.selected = item ? item.key : null;
  renderQueue();
  updateExport();
  updateEditButtons();
  const status = $('#viewer-status');
  $('#viewer-empty').hidden = app.items.length > 0;
  const clip = clipOf(item);
  if (!item || !clip || item.stage !== 'done') hideClip();
  if (!item) { viewer.clear(); status.hidden = true; return; }
  if (item.stage !== 'done' && clip && ACTIVE.has(item.stage)) {
    viewer.clear();
    status.hidden = false;
    status.innerHTML = '';
    const card = el('div', 'card');
    const { head, tail } = frameText(clip);
    card.append(el('strong', '', item.name),
      el('span', '', item.stage === 'inferring' ? (clip.kind === 'video' ? 'Cutting out the video' : 'Cutting out the animation') : `${STAGES[item.stage] || item.stage}…`),
      el('span', 'frames-big', item.stage === 'queued' ? `${clip.frames || '?'} frames` : head),
      el('span', 'muted', item.stage === 'queued' ? 'Queued — it starts when a worker is free' : (tail || 'Starting…')));
    const bar = el('div', 'progress');
    const fill = el('span');
    fill.style.width = `${Math.round(clipFraction(clip) * 100)}%`;
    bar.append(fill);
    card.append(bar);
    card.dataset.frames = String(clip.frames_done);
    status.append(card);
    return;
  }
  if (item.stage !== 'done') {
    viewer.clear();
    status.hidden = false;
    if (item.stage === 'failed' || item.stage === 'rejected') {
      status.innerHTML = '';
      const card = el('div', 'card error');
      card.append(el('strong', '', `${item.name} could not be processed`), el('span', '', item.error || 'Unknown error.'));
      status.append(card);
    } else {
      status.innerHTML = '';
      const card = el('div', 'card');
      card.append(el('strong', '', item.name), el('span', '', `${STAGES[item.stage] || item.stage}${item.stage === 'queued' ? ' — it will appear here when ready' : '…'}`));
      status.append(card);
    }
    return;
  }
  status.hidden = true;
  const token = ++app.loadToken;
  if (clip) { viewer.clear(); showClip(item, clip); return; }
  setBusy(true, 'Loading…');
  try {
    const id = item.jobId;
    const [orig, fg, matte] = await Promise.all([
      loadImage(`/api/jobs/${id}/preview/original.png`),
      loadImage(`/api/jobs/${id}/preview/foreground.png`),
      loadImage(`/api/jobs/${id}/matte.png?v=${Date.now()}`),
    ]);
    if (token !== app.loadToken) return;
    viewer.setImages({ id }, orig, fg, matte);
    const j = item.job || {};
    $('#file-meta').textContent = [item.name, j.width && `${j.width}×${j.height}`, j.provider && j.provider.replace('ExecutionProvider', ''),
      j.timings && j.timings.predict != null && `${(Object.values(j.timings).reduce((a, b) => a + b, 0)).toFixed(1)} s`].filter(Boolean).join(' · ');
    document.body.dataset.shown = id;
  } catch (err) {
    toast(err instanceof ApiError ? plainError(err.code, err.reason) : `Could not show the result: ${err}`);
  } finally {
    if (token === app.loadToken) setBusy(false);
  }
}

// --- queue --------------------------------------------------------------------------------

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function addFiles(files) {
  const list = Array.from(files).filter((f) => f && f.size !== undefined);
  if (!list.length) return;
  for (const file of list) {
    const item = { key: `k${++keySeq}`, name: file.name, file, stage: 'uploading', progress: 0, error: null, jobId: null };
    if (!/\.(mp4|m4v|mov|webm|mkv|avi|mts|m2ts|ts)$/i.test(file.name)
        && (/\.(png|jpe?g|webp|gif|bmp|avif)$/i.test(file.name) || /^image\/(png|jpeg|webp|gif|bmp|avif)$/.test(file.type))) {
      item.thumb = URL.createObjectURL(file);
    }
    app.items.push(item);
    app.uploadQueue.push(item);
  }
  renderQueue();
  pumpUploads();
  if (!selectedItem()) showItem(app.items[app.items.length - list.length]);
}

function pumpUploads() {
  while (app.uploading < UPLOAD_CONCURRENCY && app.uploadQueue.length) {
    const item = app.uploadQueue.shift();
    app.uploading++;
    upload(item).finally(() => { app.uploading--; pumpUploads(); });
  }
}

async function upload(item) {
  for (;;) {
    item.stage = 'uploading';
    renderItem(item);
    try {
      const job = await uploadImage(item.file, { model: app.model, quality: app.quality });
      if (job.jobs) { expandDocument(item, job); return; }
      item.jobId = job.id;
      app.byJob.set(job.id, item);
      applyJob(item, job);
      const early = (app.pendingJobEvents || []).filter((j) => j.id === job.id);
      app.pendingJobEvents = (app.pendingJobEvents || []).filter((j) => j.id !== job.id);
      if (early.length) applyJob(item, early[early.length - 1]);
      return;
    } catch (err) {
      if (err instanceof ApiError && (err.status === 429 || err.status === 503)) {
        item.stage = 'waiting';
        renderItem(item);
        await new Promise((r) => setTimeout(r, (err.retryAfter || 3) * 1000));
        continue;
      }
      item.stage = 'rejected';
      item.error = err instanceof ApiError ? plainError(err.code, err.reason) : `Upload failed: ${err.message || err}`;
      renderItem(item);
      if (app.selected === item.key) showItem(item);
      return;
    }
  }
}

// A PDF comes back as a group: one job per photo it holds. Its queue entry becomes one entry
// per photo (named catalogue.p3-1.jpg …, grouped under the PDF's name), plus one for each part
// that could not be queued; the notes (pages without a photo) go on the first.
function expandDocument(item, doc) {
  const made = doc.jobs.map((job) => {
    const it = { key: `k${++keySeq}`, name: job.name, group: doc.document, stage: job.stage, progress: 0, error: null, jobId: job.id };
    app.byJob.set(job.id, it);
    return it;
  });
  const failed = doc.failed.map((f) => ({ key: `k${++keySeq}`, name: f.name, group: doc.document, stage: 'rejected',
    progress: 0, error: plainError(f.code, f.reason), jobId: null }));
  const all = made.concat(failed);
  if (all.length && doc.notes.length) all[0].note = doc.notes.join(' ');
  const at = app.items.indexOf(item);
  app.items.splice(at, 1, ...all);
  const wasSelected = app.selected === item.key;
  renderQueue();
  doc.jobs.forEach((job, i) => {
    applyJob(made[i], job);
    const early = (app.pendingJobEvents || []).filter((j) => j.id === job.id);
    app.pendingJobEvents = (app.pendingJobEvents || []).filter((j) => j.id !== job.id);
    if (early.length) applyJob(made[i], early[early.length - 1]);
  });
  if (wasSelected && all.length) showItem(all[0]);
}

function applyJob(item, job) {
  const was = item.stage;
  app.stagesSeen.add(job.stage);
  item.job = { ...(item.job || {}), ...job };
  if (job.expired) item.stage = 'expired';
  else item.stage = job.stage;
  item.progress = job.progress || 0;
  item.edits = job.edits || item.edits;
  if (job.stage === 'failed') item.error = plainError(job.code, job.reason);
  if (job.stage === 'cancelled') item.error = null;
  renderItem(item);
  updateExport();
  if (app.selected === item.key) {
    if (was !== item.stage && (item.stage === 'done' || FINAL.has(item.stage))) showItem(item);
    else if (clipOf(item) && item.stage !== 'done') showItem(item);
    else if (item.stage !== 'done') showItem(item);
    else updateEditButtons();
  } else if (item.stage === 'done' && was !== 'done') {
    const cur = selectedItem();
    if (!cur || (cur.stage !== 'done' && !ACTIVE.has(cur.stage))) showItem(item);
  }
}

function stageLabel(item) {
  const base = STAGES[item.stage] || item.stage;
  if (['decoding', 'inferring', 'refining', 'encoding', 'verifying'].includes(item.stage)) return base + '…';
  return base;
}

function overallProgress(item) {
  const clip = clipOf(item);
  if (clip && item.stage === 'inferring') return 0.03 + 0.95 * clipFraction(clip);
  const order = ['queued', 'decoding', 'inferring', 'refining', 'encoding', 'verifying', 'done'];
  const weights = { queued: 0, decoding: 0.05, inferring: 0.15, refining: 0.7, encoding: 0.85, verifying: 0.95, done: 1 };
  if (!order.includes(item.stage)) return item.stage === 'uploading' ? 0.02 : 0;
  const i = order.indexOf(item.stage);
  const next = weights[order[Math.min(i + 1, order.length - 1)]];
  return weights[item.stage] + (next - weights[item.stage]) * (item.progress || 0);
}

function renderItem(item) {
  let li = document.querySelector(`.qitem[data-key="${item.key}"]`);
  if (!li) { renderQueue(); return; }
  li.replaceWith(buildItem(item));
  updateCounts();
}

function buildItem(item) {
  const li = el('li', 'qitem');
  li.dataset.key = item.key;
  li.dataset.stage = item.stage;
  if (item.jobId) li.dataset.job = item.jobId;
  if (item.key === app.selected) li.classList.add('selected');
  li.tabIndex = 0;
  li.setAttribute('role', 'button');
  const thumb = el('div', 'qthumb');
  const src = item.stage === 'done' && item.jobId ? `/api/jobs/${item.jobId}/preview/original.png` : item.thumb;
  if (src) { const img = el('img'); img.alt = ''; img.onerror = () => img.remove(); img.src = src; img.loading = 'lazy'; thumb.append(img); }
  const body = el('div', 'qbody');
  if (item.group) body.append(el('div', 'qgroup muted', item.group));
  const clip = clipOf(item);
  const nm = el('div', 'qname');
  if (clip) nm.append(el('span', 'qclip', clip.kind === 'video' ? 'VIDEO' : 'ANIM'));
  nm.append(document.createTextNode(item.name));
  body.append(nm);
  const st = el('div', `qstatus ${item.stage === 'done' ? 'done' : (item.stage === 'failed' || item.stage === 'rejected') ? 'failed' : ''}`, stageLabel(item));
  if (item.stage === 'done' && item.edits && item.edits.steps) st.append(el('span', 'muted', '· edited'));
  body.append(st);
  if (clip && item.stage === 'inferring') {
    const { head, tail } = frameText(clip);
    const fr = el('div', 'qframes', [head, tail].filter(Boolean).join(' · '));
    fr.dataset.frames = String(clip.frames_done);
    body.append(fr);
  }
  if (ACTIVE.has(item.stage)) {
    const bar = el('div', 'progress');
    const fill = el('span');
    fill.style.width = `${Math.round(overallProgress(item) * 100)}%`;
    bar.append(fill);
    body.append(bar);
  }
  if (item.error) body.append(el('div', 'qerror', item.error));
  if (item.note) body.append(el('div', 'qnote muted', item.note));
  const x = el('button', 'qx', ACTIVE.has(item.stage) && item.jobId ? 'Cancel' : '✕');
  x.type = 'button';
  x.title = ACTIVE.has(item.stage) ? 'Cancel' : 'Remove from the list';
  x.addEventListener('click', (e) => { e.stopPropagation(); removeItem(item); });
  li.append(thumb, body, x);
  li.addEventListener('click', () => showItem(item));
  li.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); showItem(item); } });
  return li;
}

function renderQueue() {
  const ul = $('#queue');
  ul.replaceChildren(...app.items.map(buildItem));
  updateCounts();
}

function updateCounts() {
  const n = app.items.length;
  const done = app.items.filter((i) => i.stage === 'done').length;
  const busy = app.items.filter((i) => ACTIVE.has(i.stage)).length;
  $('#queue-count').textContent = n ? `${done}/${n} done${busy ? ` · ${busy} in progress` : ''}` : '';
  $('#queue-empty').hidden = n > 0;
  $('#viewer-empty').hidden = n > 0;
  $('#clear-finished').hidden = !app.items.some((i) => FINAL.has(i.stage));
  $('#download-zip').disabled = done === 0;
  document.body.dataset.done = String(done);
}

async function removeItem(item) {
  if (item.jobId) {
    try {
      if (ACTIVE.has(item.stage)) {
        await sendJSON('POST', `/api/jobs/${item.jobId}/cancel`);
        return;
      }
      await sendJSON('DELETE', `/api/jobs/${item.jobId}`);
    } catch (err) {
      if (!(err instanceof ApiError && (err.status === 404 || err.status === 410))) { toast(plainError(err.code, err.reason)); return; }
    }
  } else {
    app.uploadQueue = app.uploadQueue.filter((i) => i !== item);
  }
  dropItem(item);
}

function dropItem(item) {
  const idx = app.items.indexOf(item);
  if (idx < 0) return;
  app.items.splice(idx, 1);
  if (item.jobId) app.byJob.delete(item.jobId);
  if (item.thumb) URL.revokeObjectURL(item.thumb);
  if (app.selected === item.key) showItem(app.items[Math.min(idx, app.items.length - 1)] || null);
  else renderQueue();
}

// --- live events --------------------------------------------------------------------------

function connectEvents() {
  const es = new EventSource('/api/events');
  es.addEventListener('hello', (e) => {
    const { jobs } = JSON.parse(e.data);
    for (const job of jobs) {
      let item = app.byJob.get(job.id);
      if (!item) {
        item = { key: `k${++keySeq}`, name: job.name, stage: job.stage, progress: 0, jobId: job.id };
        app.items.push(item);
        app.byJob.set(job.id, item);
        renderQueue();
      }
      applyJob(item, job);
    }
    if (!selectedItem()) showItem(app.items.find((i) => i.stage === 'done') || app.items[0] || null);
    document.body.dataset.sse = 'open';
  });
  es.addEventListener('job', (e) => {
    const job = JSON.parse(e.data);
    const item = app.byJob.get(job.id);
    if (item) applyJob(item, job);
    else app.pendingJobEvents = [...(app.pendingJobEvents || []), job];
  });
  es.addEventListener('expired', (e) => {
    const { id } = JSON.parse(e.data);
    const item = app.byJob.get(id);
    if (item && item.stage !== 'expired') { item.stage = 'expired'; item.error = 'This result expired and was removed from memory.'; renderItem(item); }
  });
  es.addEventListener('model', (e) => onModelEvent(JSON.parse(e.data)));
  es.onerror = () => { document.body.dataset.sse = 'reconnecting'; };
}

// --- export -------------------------------------------------------------------------------

function formatSelect(item) { return clipOf(item) ? $('#export-clip-format') : $('#export-format'); }

function exportParams(item = selectedItem()) {
  const fmt = formatSelect(item).value;
  const p = new URLSearchParams({ format: fmt });
  if ($('#export-bg-on').checked && fmt !== 'mask') p.set('bg', $('#export-bg').value.slice(1));
  return p;
}

function updateExport() {
  const item = selectedItem();
  const a = $('#download-one');
  const clip = clipOf(item);
  const sel = $('#export-clip-format');
  $('#export-format').hidden = !!clip;
  sel.hidden = !clip;
  if (clip && app.clipKind !== clip.kind && !app.clipFormatChosen) sel.value = clip.default_format || 'webm';
  if (clip) app.clipKind = clip.kind;
  const fmt = formatSelect(item).value;
  const hint = $('#export-hint');
  hint.hidden = true;
  if (clip && fmt === 'mp4' && !$('#export-bg-on').checked) {
    $('#export-bg-on').checked = true; // MP4 has no alpha: it is always over a colour
    hint.hidden = false;
    hint.textContent = 'MP4 cannot carry transparency, so it is written over the background colour.';
  } else if (clip && fmt === 'gif') {
    hint.hidden = false;
    hint.textContent = 'GIF keeps 1-bit transparency: soft edges become hard. WebP or APNG keep them.';
  } else if (clip && fmt !== 'mask' && fmt !== 'mp4' && $('#export-bg-on').checked) {
    hint.hidden = false;
    hint.textContent = 'Written over the background colour (opaque). Untick Background for transparency.';
  }
  $('#export-bg').disabled = !$('#export-bg-on').checked || fmt === 'mask';
  if (item && item.stage === 'done') {
    a.href = `/api/jobs/${item.jobId}/result?${exportParams()}`;
    a.classList.remove('disabled');
    a.removeAttribute('aria-disabled');
  } else {
    a.href = '#';
    a.classList.add('disabled');
    a.setAttribute('aria-disabled', 'true');
  }
  if (!item) $('#file-meta').textContent = '';
}

function downloadZip() {
  const ids = app.items.filter((i) => i.stage === 'done').map((i) => i.jobId);
  if (!ids.length) return;
  const p = new URLSearchParams({ format: $('#export-format').value }); // clips go in their own default format
  if ($('#export-bg-on').checked && $('#export-format').value !== 'mask') p.set('bg', $('#export-bg').value.slice(1));
  p.set('ids', ids.join(','));
  const a = document.createElement('a');
  a.href = `/api/export.zip?${p}`;
  a.download = '';
  document.body.append(a);
  a.click();
  a.remove();
}

// --- settings: models and capabilities ------------------------------------------------------

async function loadCapabilities() {
  try {
    app.caps = await getJSON('/api/capabilities');
  } catch { return; }
  const c = app.caps;
  const box = $('#capabilities');
  box.replaceChildren();
  const rows = [
    ['Runs on', `${c.provider.replace('ExecutionProvider', '')}${c.provider_confirmed ? '' : ' (expected)'}`],
    ['Provider order', c.provider_chain.map((p) => p.replace('ExecutionProvider', '')).join(' → ')],
    ['CPU threads', `${c.threads} (of ${c.cpu_count} logical)`],
    ['Workers', c.workers ?? 'automatic'],
    ['ONNX Runtime', c.onnxruntime || '—'],
    ['Upload limit', `${formatBytes(c.limits.max_upload_bytes)} · ${Math.round(c.limits.max_pixels / 1e6)} MP`],
    ...(c.media_limits ? [['Clip limits', clipLimits(c.media_limits)]] : []),
    ['Results kept', `${Math.round(c.limits.result_ttl_s / 3600)} h (${Math.round(c.limits.downloaded_ttl_s / 60)} min after download)`],
    ['Version', `alphacut ${c.version}`],
  ];
  const dl = el('dl', 'caps');
  for (const [k, v] of rows) dl.append(el('dt', '', k), el('dd', '', String(v)));
  if (c.degraded) dl.append(el('div', 'cap-warn', `Running degraded: ${c.warnings.join('; ') || 'a faster provider failed and was dropped'}. Results are the same, only slower.`));
  for (const n of c.notes) dl.append(el('div', 'cap-note', n));
  box.append(dl);
  $('#cap-dot').classList.toggle('warn', !!c.degraded);
  const banner = $('#degraded-banner');
  banner.hidden = !c.degraded;
  if (c.degraded) banner.textContent = `Running degraded on ${c.provider.replace('ExecutionProvider', '')}: ${c.warnings[c.warnings.length - 1] || 'a faster provider failed'}. Open “Models & system” for details.`;
}

/** The media limits in words: a clip's frames and size, an animation's frames. */
function clipLimits(m) {
  const n = (x) => x.toLocaleString('en');
  return `video ≤ ${n(m.max_frames)} frames, ≤ ${Math.round(m.max_total_pixels / 1e9)} gigapixels in all · `
    + `frames ≤ ${Math.round(m.max_frame_pixels / 1e6)} MP, ≤ ${n(m.max_side)} px a side · `
    + `animations ≤ ${n(m.max_animation_frames)} frames, ≤ ${Math.round(m.max_animation_pixels / 1e6)} MP in all`;
}

async function loadModels() {
  let data;
  try { data = await getJSON('/api/models'); } catch { return; }
  app.models = data.models;
  if (!app.model) app.model = data.default;
  $('#models-home').textContent = `Stored in ${data.home}${data.offline ? ' · offline mode' : ''}`;
  renderModels();
  const sel = $('#model-select');
  sel.replaceChildren();
  for (const m of data.models) {
    const o = el('option', '', `${m.name}${m.installed ? '' : ' (not installed)'}`);
    o.value = m.name;
    o.disabled = !m.installed;
    o.selected = m.name === app.model;
    sel.append(o);
  }
}

function renderModels() {
  const ul = $('#models');
  ul.replaceChildren();
  for (const m of app.models) {
    const li = el('li', `model${m.name === app.model ? ' current' : ''}`);
    li.dataset.model = m.name;
    const name = el('div', 'model-name', m.name);
    if (m.installed) name.append(el('span', 'tag ok', m.verified === 'ok' ? 'installed · verified' : 'installed'));
    if (m.name === app.model) name.append(el('span', 'tag default', 'in use'));
    if (!m.commercial_use) name.append(el('span', 'tag nc', 'non-commercial'));
    const actions = el('div', 'model-actions');
    const pull = m.pull && m.pull.state === 'pulling' ? m.pull : null;
    if (m.installed) {
      if (m.name !== app.model) {
        const use = el('button', 'btn btn-small', 'Use');
        use.type = 'button';
        use.addEventListener('click', () => { app.model = m.name; loadModels(); toast(`New images will use ${m.name}.`); });
        actions.append(use);
      }
      const del = el('button', 'btn btn-small btn-ghost btn-danger', 'Delete');
      del.type = 'button';
      del.addEventListener('click', () => deleteModel(m));
      actions.append(del);
    } else if (m.downloadable) {
      const get = el('button', 'btn btn-small', pull ? 'Downloading…' : 'Download');
      get.type = 'button';
      get.disabled = !!pull;
      get.addEventListener('click', () => pullModel(m));
      actions.append(get);
    }
    li.append(name, actions);
    li.append(el('div', 'model-desc', m.description));
    const meta = el('div', 'model-meta');
    meta.append(el('span', '', `${formatBytes(m.size ?? m.expected_size)}`), el('span', '', m.subject === 'portrait' ? 'People' : 'General objects'),
      el('span', '', `Licence: ${m.licence}`));
    li.append(meta);
    if (m.installed) li.append(el('div', 'model-path', m.path));
    if (pull) {
      const bar = el('div', 'progress');
      const fill = el('span');
      fill.style.width = pull.total ? `${Math.round((100 * pull.done) / pull.total)}%` : '5%';
      bar.append(fill);
      li.append(bar);
    }
    if (m.pull && m.pull.state === 'failed') li.append(el('div', 'qerror', `Download failed: ${m.pull.reason}`));
    ul.append(li);
  }
}

async function pullModel(m) {
  let accept = false;
  if (!m.commercial_use) {
    accept = window.confirm(`${m.name} is licensed “${m.licence}”. It may not be used commercially.\n\nAccept this licence and download it?`);
    if (!accept) return;
  }
  try {
    const st = await sendJSON('POST', `/api/models/${encodeURIComponent(m.name)}/pull`, { accept_license: accept });
    m.pull = st;
    renderModels();
  } catch (err) { toast(plainError(err.code, err.reason)); }
}

async function deleteModel(m) {
  if (!window.confirm(`Delete ${m.name} (${formatBytes(m.size)}) from this computer? You can download it again later.`)) return;
  try {
    await sendJSON('DELETE', `/api/models/${encodeURIComponent(m.name)}`);
    if (app.model === m.name) app.model = null;
    await loadModels();
    toast(`${m.name} deleted.`);
  } catch (err) { toast(plainError(err.code, err.reason)); }
}

let modelRefresh = 0;
function onModelEvent(ev) {
  const m = app.models.find((x) => x.name === ev.name);
  if (m) { m.pull = ev; renderModels(); }
  if (ev.state === 'done' || ev.state === 'deleted' || ev.state === 'failed') {
    clearTimeout(modelRefresh);
    modelRefresh = setTimeout(loadModels, 100);
    if (ev.state === 'done') toast(`${ev.name} downloaded and verified.`);
  }
}

function openDrawer(d) { d.hidden = false; const b = d.querySelector('button'); if (b) b.focus(); }
function closeDrawers() { $$('.drawer').forEach((d) => { d.hidden = true; }); }

// --- misc UI ------------------------------------------------------------------------------

let toastTimer = 0;
function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4200);
}

function setTool(t) {
  if (clipOf(selectedItem()) && t !== 'hand') return; // refinement is for stills
  viewer.setTool(t);
  $$('.tool').forEach((b) => b.setAttribute('aria-checked', String(b.dataset.tool === t)));
  setToolOptions(t);
  syncView();
}

function setToolOptions(t) {
  $('#opts-brush').hidden = !(t === 'restore' || t === 'erase');
  $('#opts-wand').hidden = t !== 'wand';
}

function syncView() {
  $$('[data-view]').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.view === viewer.view)));
}

function setBrushSize(v) {
  v = Math.max(2, Math.min(400, Math.round(v)));
  viewer.brushSize = v;
  $('#brush-size').value = v;
  $('#brush-size-out').textContent = v;
  viewer.request();
}

function bindUI() {
  const dz = $('#dropzone');
  const input = $('#file-input');
  input.addEventListener('change', () => { addFiles(input.files); input.value = ''; });
  $('#choose-files').addEventListener('click', () => input.click());
  dz.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); } });
  let depth = 0;
  window.addEventListener('dragenter', (e) => { if (e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files')) { depth++; $('#drop-overlay').hidden = false; dz.classList.add('over'); } });
  window.addEventListener('dragleave', () => { depth = Math.max(0, depth - 1); if (!depth) { $('#drop-overlay').hidden = true; dz.classList.remove('over'); } });
  window.addEventListener('dragover', (e) => { e.preventDefault(); });
  window.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    $('#drop-overlay').hidden = true;
    dz.classList.remove('over');
    if (e.dataTransfer && e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
  });

  $$('[data-quality]').forEach((b) => b.addEventListener('click', () => {
    app.quality = b.dataset.quality;
    $$('[data-quality]').forEach((x) => x.setAttribute('aria-checked', String(x === b)));
  }));
  $('#model-select').addEventListener('change', (e) => { app.model = e.target.value; renderModels(); });

  $$('[data-view]').forEach((b) => b.addEventListener('click', () => {
    viewer.setView(b.dataset.view);
    if (b.dataset.view === 'compare') setTool('hand');
    syncView();
  }));
  $$('[data-bg]').forEach((b) => {
    if (b.dataset.bg !== 'checker') b.style.setProperty('--swatch', b.dataset.bg);
    b.addEventListener('click', () => { viewer.setBackground(b.dataset.bg); setClipBackground(b.dataset.bg); markSwatch(b); });
  });
  $('#bg-color').addEventListener('input', (e) => { viewer.setBackground(e.target.value); setClipBackground(e.target.value); markSwatch(e.target.parentElement); });
  $('#bg-image').addEventListener('change', async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    try {
      viewer.setBackground('image', await createImageBitmap(f));
      if (app.clipBgUrl) URL.revokeObjectURL(app.clipBgUrl);
      app.clipBgUrl = URL.createObjectURL(f);
      setClipBackground('image', app.clipBgUrl);
      markSwatch(null);
    } catch { toast('That file cannot be shown as a background here.'); }
    e.target.value = '';
  });
  markSwatch($('[data-bg="checker"]'));

  $('#zoom-in').addEventListener('click', () => viewer.zoomBy(1.25));
  $('#zoom-out').addEventListener('click', () => viewer.zoomBy(0.8));
  $('#zoom-fit').addEventListener('click', () => viewer.fit());
  $('#zoom-100').addEventListener('click', () => viewer.zoomTo(1));

  $$('.tool').forEach((b) => b.addEventListener('click', () => setTool(b.dataset.tool)));
  $('#brush-size').addEventListener('input', (e) => setBrushSize(Number(e.target.value)));
  $('#brush-soft').addEventListener('input', (e) => { viewer.softness = Number(e.target.value) / 100; $('#brush-soft-out').textContent = `${e.target.value}%`; viewer.request(); });
  $('#wand-tol').addEventListener('input', (e) => { viewer.wandTol = Number(e.target.value); $('#wand-tol-out').textContent = e.target.value; });
  $$('[data-wand]').forEach((b) => b.addEventListener('click', () => {
    viewer.wandMode = b.dataset.wand;
    $$('[data-wand]').forEach((x) => x.setAttribute('aria-checked', String(x === b)));
  }));
  $('#undo').addEventListener('click', () => historyCall('undo'));
  $('#redo').addEventListener('click', () => historyCall('redo'));
  $('#reset').addEventListener('click', () => historyCall('reset'));
  $('#clear-selection').addEventListener('click', () => { viewer.setSelection(null); updateEditButtons(); });
  $('#shortcuts').addEventListener('click', () => openDrawer($('#help')));
  const observer = new MutationObserver(() => updateEditButtons());
  observer.observe($('#viewport'), { attributes: true });
  viewer.hooks.onChange = () => { $('#zoom-label').textContent = `${Math.round(viewer.zoom * 100)}%`; $('#clear-selection').hidden = !viewer.selection; };

  $('#export-format').addEventListener('change', updateExport);
  $('#export-clip-format').addEventListener('change', () => { app.clipFormatChosen = true; updateExport(); });
  $('#export-bg-on').addEventListener('change', updateExport);
  $('#export-bg').addEventListener('input', updateExport);
  $('#download-zip').addEventListener('click', downloadZip);
  $('#download-one').addEventListener('click', () => {
    const item = selectedItem();
    if (item) setTimeout(() => toast(`Exported ${item.name} — verified before download.`), 300);
  });
  $('#clear-finished').addEventListener('click', async () => {
    for (const item of app.items.filter((i) => FINAL.has(i.stage))) await removeItem(item);
  });

  $('#open-settings').addEventListener('click', () => { openDrawer($('#settings')); loadCapabilities(); loadModels(); });
  $('#close-settings').addEventListener('click', closeDrawers);
  $$('[data-close]').forEach((b) => b.addEventListener('click', closeDrawers));
  $$('.drawer').forEach((d) => d.addEventListener('click', (e) => { if (e.target === d) closeDrawers(); }));

  window.addEventListener('keydown', onKey);
  window.addEventListener('keyup', (e) => { if (e.code === 'Space') { viewer.spaceDown = false; viewer.request(); } });
}

function markSwatch(target) {
  $$('.swatch').forEach((s) => s.classList.toggle('active', s === target));
}

function historyCall(what) {
  const item = selectedItem();
  if (!item || item.stage !== 'done') return;
  queueEdit(`/api/jobs/${item.jobId}/${what}`);
}

function onKey(e) {
  const tag = (e.target && e.target.tagName) || '';
  if (['INPUT', 'SELECT', 'TEXTAREA'].includes(tag) && e.target.type !== 'range') return;
  if (e.key === 'Escape') {
    if (!$('#settings').hidden || !$('#help').hidden) { closeDrawers(); return; }
    viewer.setSelection(null);
    updateEditButtons();
    return;
  }
  const mod = e.ctrlKey || e.metaKey;
  if (mod && e.key.toLowerCase() === 'z') { e.preventDefault(); historyCall(e.shiftKey ? 'redo' : 'undo'); return; }
  if (mod && e.key.toLowerCase() === 'y') { e.preventDefault(); historyCall('redo'); return; }
  if (mod || e.altKey) return;
  if (e.code === 'Space') { if (!viewer.spaceDown) { viewer.spaceDown = true; viewer.request(); } e.preventDefault(); return; }
  const keys = {
    h: () => setTool('hand'), v: () => setTool('hand'), r: () => setTool('restore'), e: () => setTool('erase'),
    w: () => setTool('wand'), m: () => setTool('rect'), l: () => setTool('lasso'),
    '[': () => setBrushSize(viewer.brushSize / 1.2), ']': () => setBrushSize(viewer.brushSize * 1.2),
    0: () => viewer.fit(), 1: () => viewer.zoomTo(1), '+': () => viewer.zoomBy(1.25), '=': () => viewer.zoomBy(1.25),
    '-': () => viewer.zoomBy(0.8), c: () => { viewer.setView('compare'); setTool('hand'); }, a: () => { viewer.setView('matte'); syncView(); },
    '?': () => openDrawer($('#help')),
    ArrowUp: () => step(-1), ArrowDown: () => step(1),
  };
  const fn = keys[e.key];
  if (fn) { e.preventDefault(); fn(); }
}

function step(d) {
  if (!app.items.length) return;
  const i = app.items.findIndex((x) => x.key === app.selected);
  showItem(app.items[Math.max(0, Math.min(app.items.length - 1, i + d))]);
}

// --- start --------------------------------------------------------------------------------

bindUI();
setTool('hand');
setBrushSize(40);
renderQueue();
connectEvents();
loadModels();
loadCapabilities();
setInterval(() => { if (app.items.some((i) => i.stage === 'done')) loadCapabilities(); }, 30000);
document.body.dataset.ready = '1';
