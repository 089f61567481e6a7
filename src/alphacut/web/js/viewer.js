// The result viewer and refinement editor: one canvas, zoom/pan, before/after, brush, wand, selections.
// The float matte lives on the server; this keeps an 8-bit copy for display and paints a local
// preview while a stroke is in progress, then shows the server's authoritative matte.

const MIN_ZOOM = 0.02;
const MAX_ZOOM = 32;

function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

function distToSegment(px, py, ax, ay, bx, by) {
  const dx = bx - ax, dy = by - ay;
  const len2 = dx * dx + dy * dy;
  let t = len2 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
  t = clamp(t, 0, 1);
  const cx = ax + t * dx - px, cy = ay + t * dy - py;
  return Math.sqrt(cx * cx + cy * cy);
}

export class Viewer {
  constructor(viewport, canvas, hooks) {
    this.viewport = viewport;
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.hooks = hooks; // { onEdit(ops) -> Promise, onChange() }
    this.view = 'compare';
    this.bg = 'checker';
    this.bgImage = null;
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.split = 0.5;
    this.tool = 'hand';
    this.brushSize = 40;
    this.softness = 0.5;
    this.wandTol = 32;
    this.wandMode = 'erase';
    this.selection = null; // {type:'rect', x0,y0,x1,y1} | {type:'lasso', points}
    this.selMask = null;
    this.job = null;
    this.W = 0;
    this.H = 0;
    this.mouse = null;
    this.spaceDown = false;
    this.drag = null;
    this.dpr = window.devicePixelRatio || 1;
    this._checker = null;
    this._raf = 0;
    this._bind();
    new ResizeObserver(() => this.resize()).observe(viewport);
  }

  // --- data -------------------------------------------------------------------------------

  clear() {
    this.job = null;
    this.W = this.H = 0;
    this.selection = null;
    this.selMask = null;
    this.request();
  }

  setImages(job, original, foreground, matteBitmap) {
    const sameJob = this.job && this.job.id === job.id && this.W === original.width && this.H === original.height;
    this.job = job;
    this.W = original.width;
    this.H = original.height;
    this.original = original;
    const W = this.W, H = this.H;
    const fgCanvas = new OffscreenCanvas(W, H);
    const fctx = fgCanvas.getContext('2d', { willReadFrequently: true });
    fctx.drawImage(foreground, 0, 0);
    this.fg = fctx.getImageData(0, 0, W, H).data;
    fctx.drawImage(original, 0, 0);
    this.src = fctx.getImageData(0, 0, W, H).data;
    this.matte0 = null;
    this.cutCanvas = new OffscreenCanvas(W, H);
    this.cutCtx = this.cutCanvas.getContext('2d');
    this.cutData = new ImageData(W, H);
    this.matteCanvas = new OffscreenCanvas(W, H);
    this.matteCtx = this.matteCanvas.getContext('2d');
    this.matteData = new ImageData(W, H);
    this.matte = new Uint8Array(W * H);
    if (!sameJob) {
      this.selection = null;
      this.selMask = null;
      this.fit();
    }
    this.setMatte(matteBitmap);
  }

  setMatte(bitmap) {
    if (!this.job) return;
    const c = new OffscreenCanvas(this.W, this.H);
    const cx = c.getContext('2d', { willReadFrequently: true });
    cx.drawImage(bitmap, 0, 0);
    const d = cx.getImageData(0, 0, this.W, this.H).data;
    for (let i = 0, j = 0; i < this.matte.length; i++, j += 4) this.matte[i] = d[j];
    if (!this.matte0) this.matte0 = this.matte.slice(); // the model's matte as first shown
    this.rebuild(0, 0, this.W, this.H);
  }

  rebuild(x0, y0, x1, y1) {
    x0 = clamp(Math.floor(x0), 0, this.W); y0 = clamp(Math.floor(y0), 0, this.H);
    x1 = clamp(Math.ceil(x1), 0, this.W); y1 = clamp(Math.ceil(y1), 0, this.H);
    if (x1 <= x0 || y1 <= y0) return;
    const W = this.W, cut = this.cutData.data, mat = this.matteData.data, fg = this.fg, m = this.matte;
    const src = this.src, m0 = this.matte0 || m;
    for (let y = y0; y < y1; y++) {
      let i = y * W + x0, j = i * 4;
      for (let x = x0; x < x1; x++, i++, j += 4) {
        const a = m[i];
        if (a > m0[i]) { // restored above the model: colour back toward the source (as the server does)
          const a0 = m0[i] / 255, b = 1 - a0;
          cut[j] = fg[j] * a0 + src[j] * b; cut[j + 1] = fg[j + 1] * a0 + src[j + 1] * b; cut[j + 2] = fg[j + 2] * a0 + src[j + 2] * b;
        } else { cut[j] = fg[j]; cut[j + 1] = fg[j + 1]; cut[j + 2] = fg[j + 2]; }
        cut[j + 3] = a;
        mat[j] = a; mat[j + 1] = a; mat[j + 2] = a; mat[j + 3] = 255;
      }
    }
    this.cutCtx.putImageData(this.cutData, 0, 0, x0, y0, x1 - x0, y1 - y0);
    this.matteCtx.putImageData(this.matteData, 0, 0, x0, y0, x1 - x0, y1 - y0);
    this.request();
  }

  /** Mean alpha (0..255) in a box, for tests and the status line. */
  meanAlpha(x0, y0, x1, y1) {
    let s = 0, n = 0;
    for (let y = Math.max(0, y0); y < Math.min(this.H, y1); y++)
      for (let x = Math.max(0, x0); x < Math.min(this.W, x1); x++) { s += this.matte[y * this.W + x]; n++; }
    return n ? s / n : 0;
  }

  // --- view -------------------------------------------------------------------------------

  resize() {
    const r = this.viewport.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(r.width * this.dpr));
    this.canvas.height = Math.max(1, Math.round(r.height * this.dpr));
    this.vw = r.width;
    this.vh = r.height;
    if (this.job && !this._fitted) this.fit();
    this.request();
  }

  fit() {
    if (!this.W || !this.vw) { this._fitted = false; return; }
    const z = Math.min((this.vw - 48) / this.W, (this.vh - 48) / this.H);
    this.zoom = clamp(Math.min(z, 4), MIN_ZOOM, MAX_ZOOM);
    this.panX = (this.vw - this.W * this.zoom) / 2;
    this.panY = (this.vh - this.H * this.zoom) / 2;
    this._fitted = true;
    this.changed();
  }

  zoomTo(z, cx = this.vw / 2, cy = this.vh / 2) {
    z = clamp(z, MIN_ZOOM, MAX_ZOOM);
    const ix = (cx - this.panX) / this.zoom, iy = (cy - this.panY) / this.zoom;
    this.zoom = z;
    this.panX = cx - ix * z;
    this.panY = cy - iy * z;
    this.changed();
  }

  zoomBy(f, cx, cy) { this.zoomTo(this.zoom * f, cx, cy); }

  setView(v) { this.view = v; this.changed(); }
  setBackground(bg, image = null) { this.bg = bg; this.bgImage = image; this.changed(); }

  setTool(t) {
    this.tool = t;
    if (t !== 'hand' && this.view === 'compare') this.view = 'cutout';
    const cls = this.viewport.classList;
    cls.remove('tool-hand', 'tool-brush', 'tool-cross');
    cls.add(t === 'hand' ? 'tool-hand' : (t === 'restore' || t === 'erase') ? 'tool-brush' : 'tool-cross');
    this.changed();
  }

  changed() { this.request(); if (this.hooks.onChange) this.hooks.onChange(); }

  toImage(sx, sy) { return [(sx - this.panX) / this.zoom, (sy - this.panY) / this.zoom]; }

  // --- selection --------------------------------------------------------------------------

  setSelection(sel) {
    this.selection = sel;
    this.selMask = null;
    if (sel) {
      const c = new OffscreenCanvas(this.W, this.H);
      const cx = c.getContext('2d', { willReadFrequently: true });
      cx.fillStyle = '#fff';
      if (sel.type === 'rect') cx.fillRect(sel.x0, sel.y0, sel.x1 - sel.x0, sel.y1 - sel.y0);
      else {
        cx.beginPath();
        sel.points.forEach(([x, y], i) => (i ? cx.lineTo(x, y) : cx.moveTo(x, y)));
        cx.closePath();
        cx.fill();
      }
      const d = cx.getImageData(0, 0, this.W, this.H).data;
      this.selMask = new Uint8Array(this.W * this.H);
      for (let i = 0; i < this.selMask.length; i++) this.selMask[i] = d[i * 4 + 3] > 127 ? 1 : 0;
    }
    this.changed();
  }

  selectionPayload() {
    const s = this.selection;
    if (!s) return undefined;
    if (s.type === 'rect') return { type: 'rect', x0: s.x0, y0: s.y0, x1: s.x1, y1: s.y1 };
    return { type: 'lasso', points: s.points.map(([x, y]) => [Math.round(x * 10) / 10, Math.round(y * 10) / 10]) };
  }

  // --- painting (local preview) -------------------------------------------------------------

  beginStroke(x, y) {
    this.stroke = { points: [[x, y]], base: this.matte.slice(), weight: new Float32Array(this.W * this.H) };
    this.paintSegment(x, y, x, y);
  }

  extendStroke(x, y) {
    const pts = this.stroke.points;
    const [px, py] = pts[pts.length - 1];
    if (Math.hypot(x - px, y - py) < Math.max(0.75, this.brushSize / 16)) return;
    pts.push([x, y]);
    this.paintSegment(px, py, x, y);
  }

  paintSegment(ax, ay, bx, by) {
    const r = Math.max(0.5, this.brushSize / 2);
    const soft = this.softness;
    const feather = Math.max(1, r * soft);
    const bias = soft === 0 ? 0.5 : 0;
    const W = this.W, H = this.H, st = this.stroke, m = this.matte, sel = this.selMask;
    const erase = this.tool === 'erase';
    const x0 = clamp(Math.floor(Math.min(ax, bx) - r - 1), 0, W), x1 = clamp(Math.ceil(Math.max(ax, bx) + r + 2), 0, W);
    const y0 = clamp(Math.floor(Math.min(ay, by) - r - 1), 0, H), y1 = clamp(Math.ceil(Math.max(ay, by) + r + 2), 0, H);
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const i = y * W + x;
        if (sel && !sel[i]) continue;
        const d = distToSegment(x, y, ax, ay, bx, by);
        const w = clamp((r - d) / feather + bias, 0, 1);
        if (w <= st.weight[i]) continue;
        st.weight[i] = w;
        const a0 = st.base[i] / 255;
        const a = erase ? a0 * (1 - w) : a0 + w * (1 - a0);
        m[i] = Math.round(a * 255);
      }
    }
    this.rebuild(x0, y0, x1, y1);
  }

  endStroke() {
    const st = this.stroke;
    this.stroke = null;
    if (!st) return;
    const op = {
      op: 'brush', mode: this.tool === 'erase' ? 'erase' : 'restore',
      points: st.points.map(([x, y]) => [Math.round(x * 100) / 100, Math.round(y * 100) / 100]),
      size: this.brushSize, softness: this.softness,
    };
    const sel = this.selectionPayload();
    if (sel) op.selection = sel;
    this.hooks.onEdit([op]);
  }

  // --- input ------------------------------------------------------------------------------

  _bind() {
    const c = this.canvas;
    c.addEventListener('pointerdown', (e) => this._down(e));
    c.addEventListener('pointermove', (e) => this._move(e));
    c.addEventListener('pointerup', (e) => this._up(e));
    c.addEventListener('pointercancel', (e) => this._up(e));
    c.addEventListener('pointerleave', () => { this.mouse = null; this.request(); });
    c.addEventListener('wheel', (e) => {
      if (!this.job) return;
      e.preventDefault();
      const r = c.getBoundingClientRect();
      const f = Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015));
      this.zoomBy(f, e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
  }

  _pos(e) {
    const r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  _down(e) {
    if (!this.job) return;
    this.viewport.focus({ preventScroll: true });
    const [sx, sy] = this._pos(e);
    const [ix, iy] = this.toImage(sx, sy);
    this.canvas.setPointerCapture(e.pointerId);
    const splitX = this.panX + this.split * this.W * this.zoom;
    if (this.view === 'compare' && Math.abs(sx - splitX) < 10 && e.button === 0) {
      this.drag = { kind: 'split' };
      return;
    }
    if (e.button === 1 || this.spaceDown || this.tool === 'hand' || (this.view === 'compare' && e.button === 0)) {
      this.drag = { kind: 'pan', sx, sy, px: this.panX, py: this.panY };
      this.viewport.classList.add('panning');
      return;
    }
    if (e.button !== 0) return;
    if (this.tool === 'restore' || this.tool === 'erase') {
      this.drag = { kind: 'brush' };
      this.beginStroke(ix, iy);
    } else if (this.tool === 'wand') {
      const x = Math.floor(ix), y = Math.floor(iy);
      if (x < 0 || y < 0 || x >= this.W || y >= this.H) return;
      const mode = e.altKey ? (this.wandMode === 'erase' ? 'restore' : 'erase') : this.wandMode;
      const op = { op: 'wand', mode, x, y, tolerance: this.wandTol };
      const sel = this.selectionPayload();
      if (sel) op.selection = sel;
      this.hooks.onEdit([op]);
    } else if (this.tool === 'rect') {
      this.drag = { kind: 'rect', x0: ix, y0: iy, x1: ix, y1: iy };
    } else if (this.tool === 'lasso') {
      this.drag = { kind: 'lasso', points: [[ix, iy]] };
    }
    this.request();
  }

  _move(e) {
    const [sx, sy] = this._pos(e);
    this.mouse = [sx, sy];
    const d = this.drag;
    if (d) {
      const [ix, iy] = this.toImage(sx, sy);
      if (d.kind === 'pan') {
        this.panX = d.px + (sx - d.sx);
        this.panY = d.py + (sy - d.sy);
        this.changed();
      } else if (d.kind === 'split') {
        this.split = clamp((sx - this.panX) / (this.W * this.zoom), 0, 1);
      } else if (d.kind === 'brush') {
        const evs = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
        for (const ev of evs.length ? evs : [e]) {
          const [qx, qy] = this.toImage(...this._pos(ev));
          this.extendStroke(qx, qy);
        }
      } else if (d.kind === 'rect') {
        d.x1 = ix; d.y1 = iy;
      } else if (d.kind === 'lasso') {
        const last = d.points[d.points.length - 1];
        if (Math.hypot(ix - last[0], iy - last[1]) * this.zoom > 3) d.points.push([ix, iy]);
      }
    }
    this.request();
  }

  _up(e) {
    const d = this.drag;
    this.drag = null;
    this.viewport.classList.remove('panning');
    try { this.canvas.releasePointerCapture(e.pointerId); } catch { /* already released */ }
    if (!d) return;
    if (d.kind === 'brush') this.endStroke();
    else if (d.kind === 'rect') {
      const x0 = clamp(Math.round(Math.min(d.x0, d.x1)), 0, this.W), x1 = clamp(Math.round(Math.max(d.x0, d.x1)), 0, this.W);
      const y0 = clamp(Math.round(Math.min(d.y0, d.y1)), 0, this.H), y1 = clamp(Math.round(Math.max(d.y0, d.y1)), 0, this.H);
      this.setSelection(x1 - x0 >= 2 && y1 - y0 >= 2 ? { type: 'rect', x0, y0, x1, y1 } : null);
    } else if (d.kind === 'lasso') {
      this.setSelection(d.points.length >= 3 ? { type: 'lasso', points: d.points } : null);
    }
    this.request();
  }

  // --- drawing ----------------------------------------------------------------------------

  request() {
    if (this._raf) return;
    this._raf = requestAnimationFrame(() => { this._raf = 0; this.draw(); });
  }

  _checkerPattern(ctx) {
    if (!this._checker) {
      const c = new OffscreenCanvas(16, 16);
      const x = c.getContext('2d');
      x.fillStyle = '#ffffff'; x.fillRect(0, 0, 16, 16);
      x.fillStyle = '#d9dce1'; x.fillRect(0, 0, 8, 8); x.fillRect(8, 8, 8, 8);
      this._checker = c;
    }
    return ctx.createPattern(this._checker, 'repeat');
  }

  _drawBackground(ctx, x, y, w, h) {
    if (this.bg === 'checker') {
      ctx.save();
      ctx.fillStyle = this._checkerPattern(ctx);
      ctx.translate(x, y);
      ctx.fillRect(0, 0, w, h);
      ctx.restore();
    } else if (this.bg === 'image' && this.bgImage) {
      const s = Math.max(w / this.bgImage.width, h / this.bgImage.height);
      const bw = this.bgImage.width * s, bh = this.bgImage.height * s;
      ctx.save();
      ctx.beginPath(); ctx.rect(x, y, w, h); ctx.clip();
      ctx.drawImage(this.bgImage, x + (w - bw) / 2, y + (h - bh) / 2, bw, bh);
      ctx.restore();
    } else {
      ctx.fillStyle = this.bg;
      ctx.fillRect(x, y, w, h);
    }
  }

  draw() {
    const ctx = this.ctx;
    const dpr = this.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.job) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const x = this.panX, y = this.panY, w = this.W * this.zoom, h = this.H * this.zoom;
    ctx.imageSmoothingEnabled = this.zoom < 1;
    ctx.imageSmoothingQuality = 'high';
    ctx.shadowColor = 'rgba(16,24,40,.18)';
    ctx.shadowBlur = 12;
    ctx.fillStyle = '#fff';
    ctx.fillRect(x, y, w, h);
    ctx.shadowBlur = 0;
    if (this.view === 'matte') {
      ctx.drawImage(this.matteCanvas, x, y, w, h);
    } else if (this.view === 'compare') {
      const sw = this.split * w;
      ctx.save();
      ctx.beginPath(); ctx.rect(x, y, sw, h); ctx.clip();
      ctx.drawImage(this.original, x, y, w, h);
      ctx.restore();
      ctx.save();
      ctx.beginPath(); ctx.rect(x + sw, y, w - sw, h); ctx.clip();
      this._drawBackground(ctx, x, y, w, h);
      ctx.drawImage(this.cutCanvas, x, y, w, h);
      ctx.restore();
      this._drawSplit(ctx, x + sw, y, h);
    } else {
      this._drawBackground(ctx, x, y, w, h);
      ctx.drawImage(this.cutCanvas, x, y, w, h);
    }
    this._drawSelection(ctx);
    this._drawCursor(ctx);
  }

  _drawSplit(ctx, sx, y, h) {
    ctx.save();
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 2;
    ctx.shadowColor = 'rgba(0,0,0,.35)';
    ctx.shadowBlur = 4;
    ctx.beginPath(); ctx.moveTo(sx, y); ctx.lineTo(sx, y + h); ctx.stroke();
    const cy = y + h / 2;
    ctx.fillStyle = '#fff';
    ctx.beginPath(); ctx.arc(sx, cy, 14, 0, Math.PI * 2); ctx.fill();
    ctx.shadowBlur = 0;
    ctx.strokeStyle = '#3f5bd8';
    ctx.lineWidth = 1.8;
    ctx.beginPath();
    ctx.moveTo(sx - 4, cy - 5); ctx.lineTo(sx - 8, cy); ctx.lineTo(sx - 4, cy + 5);
    ctx.moveTo(sx + 4, cy - 5); ctx.lineTo(sx + 8, cy); ctx.lineTo(sx + 4, cy + 5);
    ctx.stroke();
    ctx.font = '600 11px system-ui, sans-serif';
    ctx.fillStyle = 'rgba(28,36,48,.78)';
    const lw = 54, lh = 20;
    ctx.fillRect(sx - lw - 10, y + 10, lw, lh);
    ctx.fillRect(sx + 10, y + 10, lw, lh);
    ctx.fillStyle = '#fff';
    ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
    ctx.fillText('Before', sx - lw / 2 - 10, y + 10 + lh / 2);
    ctx.fillText('After', sx + 10 + lw / 2, y + 10 + lh / 2);
    ctx.restore();
  }

  _pathFor(ctx, sel) {
    const z = this.zoom, px = this.panX, py = this.panY;
    ctx.beginPath();
    if (sel.type === 'rect') ctx.rect(px + sel.x0 * z, py + sel.y0 * z, (sel.x1 - sel.x0) * z, (sel.y1 - sel.y0) * z);
    else {
      sel.points.forEach(([x, y], i) => (i ? ctx.lineTo(px + x * z, py + y * z) : ctx.moveTo(px + x * z, py + y * z)));
      if (sel.closed !== false) ctx.closePath();
    }
  }

  _drawSelection(ctx) {
    let sel = this.selection;
    const d = this.drag;
    if (d && d.kind === 'rect') sel = { type: 'rect', x0: Math.min(d.x0, d.x1), y0: Math.min(d.y0, d.y1), x1: Math.max(d.x0, d.x1), y1: Math.max(d.y0, d.y1) };
    if (d && d.kind === 'lasso') sel = { type: 'lasso', points: d.points, closed: false };
    if (!sel) return;
    ctx.save();
    this._pathFor(ctx, sel);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = '#fff';
    ctx.setLineDash([]);
    ctx.stroke();
    ctx.strokeStyle = '#3f5bd8';
    ctx.setLineDash([5, 4]);
    ctx.lineDashOffset = -(performance.now() / 60) % 9;
    ctx.stroke();
    ctx.restore();
    if (!d) setTimeout(() => this.request(), 120); // marching ants
  }

  _drawCursor(ctx) {
    if (!this.mouse || !(this.tool === 'restore' || this.tool === 'erase') || this.spaceDown) return;
    const [mx, my] = this.mouse;
    const r = Math.max(1, (this.brushSize / 2) * this.zoom);
    ctx.save();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = 'rgba(0,0,0,.55)';
    ctx.beginPath(); ctx.arc(mx, my, r, 0, Math.PI * 2); ctx.stroke();
    ctx.strokeStyle = this.tool === 'erase' ? '#ef4444' : '#22c55e';
    ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.arc(mx, my, r, 0, Math.PI * 2); ctx.stroke();
    if (this.softness > 0) {
      ctx.setLineDash([2, 4]);
      ctx.strokeStyle = 'rgba(255,255,255,.85)';
      ctx.beginPath(); ctx.arc(mx, my, Math.max(0.5, r * (1 - this.softness)), 0, Math.PI * 2); ctx.stroke();
    }
    ctx.restore();
  }
}
