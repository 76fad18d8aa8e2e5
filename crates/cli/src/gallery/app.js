// The mediaflow dev gallery: reads /_gallery/api/state (the manifests and
// the dead letters), shows every processed source and each one's variants,
// and uploads dropped files through /_gallery/api/upload. No framework, no
// build step, nothing from the network: every text from a manifest is set
// as text, never parsed as HTML.
'use strict';

const POLL_MS = 1500;
let state = null;
let shown = '';
// Uploads this page made and is waiting for: key -> {seq, row}.
const waiting = new Map();

function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function bytes(n) {
  if (typeof n !== 'number') return '';
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}

// A key as a URL path under /_media (each segment percent-encoded).
function mediaUrl(key) {
  return '/_media/' + key.split('/').map(encodeURIComponent).join('/');
}

function urlOf(output) {
  return output.url || mediaUrl(output.key);
}

// ---- BlurHash (https://github.com/woltapp/blurhash, the algorithm) ----
const B83 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~';
function decode83(s) {
  let v = 0;
  for (const c of s) {
    const d = B83.indexOf(c);
    if (d < 0) throw new Error('not base 83');
    v = v * 83 + d;
  }
  return v;
}
function toLinear(v) { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }
function toSrgb(v) {
  v = Math.max(0, Math.min(1, v));
  return Math.round(v <= 0.0031308 ? v * 12.92 * 255 : (1.055 * Math.pow(v, 1 / 2.4) - 0.055) * 255);
}
function signPow(v, e) { return Math.sign(v) * Math.pow(Math.abs(v), e); }
function decodeBlurHash(hash, width, height) {
  const size = decode83(hash[0]);
  const nx = (size % 9) + 1, ny = Math.floor(size / 9) + 1;
  if (hash.length !== 4 + 2 * nx * ny) throw new Error('bad BlurHash length');
  const max = (decode83(hash[1]) + 1) / 166;
  const colors = [];
  for (let i = 0; i < nx * ny; i++) {
    if (i === 0) {
      const v = decode83(hash.substring(2, 6));
      colors.push([toLinear(v >> 16), toLinear((v >> 8) & 255), toLinear(v & 255)]);
    } else {
      const v = decode83(hash.substring(4 + i * 2, 6 + i * 2));
      colors.push([
        signPow((Math.floor(v / 361) - 9) / 9, 2) * max,
        signPow((Math.floor(v / 19) % 19 - 9) / 9, 2) * max,
        signPow((v % 19 - 9) / 9, 2) * max,
      ]);
    }
  }
  const px = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0;
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const basis = Math.cos(Math.PI * x * i / width) * Math.cos(Math.PI * y * j / height);
          const c = colors[i + j * nx];
          r += c[0] * basis; g += c[1] * basis; b += c[2] * basis;
        }
      }
      const o = 4 * (x + y * width);
      px[o] = toSrgb(r); px[o + 1] = toSrgb(g); px[o + 2] = toSrgb(b); px[o + 3] = 255;
    }
  }
  return px;
}
function blurhashCanvas(hash, aspect) {
  const w = 32, hgt = Math.max(1, Math.round(32 / (aspect || 1)));
  const canvas = h('canvas', { width: w, height: hgt, class: 'blurhash', title: 'BlurHash ' + hash });
  try {
    const ctx = canvas.getContext('2d');
    const img = ctx.createImageData(w, hgt);
    img.data.set(decodeBlurHash(hash, w, hgt));
    ctx.putImageData(img, 0, 0);
    canvas.dataset.drawn = 'true';
  } catch (e) {
    canvas.title = 'cannot draw BlurHash: ' + e.message;
  }
  return canvas;
}

// ---- state ----
function imageVariants(m) {
  return (m.variants || []).filter((v) => (v.content_type || '').startsWith('image/'));
}

// The smallest variant at least 240 px wide (WebP first), for the list.
function thumbnailOf(m) {
  const vs = imageVariants(m).slice().sort((a, b) => a.width - b.width);
  if (!vs.length) return null;
  const wide = vs.filter((v) => v.width >= 240);
  const pool = wide.length ? wide.filter((v) => v.width === wide[0].width) : [vs[vs.length - 1]];
  return pool.find((v) => v.format === 'webp') || pool[0];
}

function lastSeq() {
  const r = (state && state.recent) || [];
  return r.length ? r[r.length - 1].seq : 0;
}

async function poll() {
  try {
    const resp = await fetch('api/state', { cache: 'no-store' });
    if (!resp.ok) throw new Error((await resp.json()).error || resp.statusText);
    state = await resp.json();
    render();
  } catch (e) {
    document.getElementById('summary').textContent = 'Cannot read the state: ' + e.message;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function render() {
  const s = state;
  if (!s) return;
  const sig = JSON.stringify([s.sources.map((x) => [x.key, x.modified_ms]), s.failures.length, lastSeq(), location.hash]);
  settleUploads();
  if (sig === shown) return;
  shown = sig;
  document.getElementById('summary').textContent =
    `${s.sources.length} processed source(s), ${s.failures.length} failure(s) · s3://${s.uploads_bucket} → s3://${s.media_bucket}`;
  const route = location.hash.match(/^#\/source\/(.*)$/);
  document.getElementById('list-view').hidden = !!route;
  document.getElementById('detail-view').hidden = !route;
  let key = null;
  if (route) {
    try { key = decodeURIComponent(route[1]); } catch { key = route[1]; }
  }
  if (route) renderDetail(key);
  else renderList();
}

function renderList() {
  const list = document.getElementById('sources');
  list.replaceChildren(...state.sources.map((src) => {
    const m = src.manifest;
    const t = thumbnailOf(m);
    const video = m.kind === 'video';
    const facts = m.source
      ? `${m.source.format} · ${m.source.width}×${m.source.height} · ${bytes(m.source.bytes)}`
      : (m.error || '');
    const n = video ? `${(m.renditions || []).length} rendition(s)` : `${(m.variants || []).length} output(s)`;
    return h('li', { class: 'source', 'data-key': src.key },
      h('a', { href: '#/source/' + encodeURIComponent(src.key) },
        t ? h('img', { src: urlOf(t), width: t.width, height: t.height, alt: src.key, loading: 'lazy', decoding: 'async', style: null })
          : h('div', { class: 'noimage', text: 'no image' }),
        h('span', { class: 'key', text: src.key }),
        h('small', { text: `${video ? 'video · ' : ''}${facts} · ${n}` })));
  }));
  if (!state.sources.length) list.append(h('li', { class: 'empty', text: 'Nothing processed yet: drop a file here, or upload with the AWS CLI.' }));
  const body = document.querySelector('#failures tbody');
  body.replaceChildren(...state.failures.map((f) =>
    h('tr', { class: 'failure', 'data-key': f.key || '' },
      h('td', { text: f.time || '' }),
      h('td', { class: 'key', text: f.bucket ? `s3://${f.bucket}/${f.key}` : (f.key || '') }),
      h('td', { class: 'reason', text: f.error || '' }),
      h('td', { text: f.retryable ? 'yes' : 'no' }))));
  if (!state.failures.length) body.append(h('tr', {}, h('td', { colspan: 4, text: 'None.' })));
}

function row(label, value) {
  return value === undefined || value === null || value === '' ? null : h('tr', {}, h('th', { text: label }), h('td', { text: String(value) }));
}

function renderDetail(key) {
  const view = document.getElementById('detail-view');
  const src = state.sources.find((x) => x.key === key);
  if (!src) {
    view.replaceChildren(h('p', {}, h('a', { href: '#/', text: '← all sources' })),
      h('p', { text: `No manifest for ${key} (yet).` }));
    return;
  }
  const m = src.manifest;
  const s = m.source || {};
  const video = m.kind === 'video';
  const parts = [
    h('p', {}, h('a', { href: '#/', text: '← all sources' })),
    h('h2', { class: 'key', text: key }),
  ];
  const facts = h('table', { class: 'facts' },
    row('Format', `${s.format} (${s.content_type})`),
    row('Size', `${s.width}×${s.height}` + (s.stored_width && (s.stored_width !== s.width || s.stored_height !== s.height) ? ` (stored ${s.stored_width}×${s.stored_height})` : '')),
    row('Bytes', `${bytes(s.bytes)} (${s.bytes})`),
    row('Duration', video ? `${s.duration_seconds} s at ${s.frame_rate} fps, ${s.video_codec}${s.audio_codec ? ' + ' + s.audio_codec : ''}` : null),
    row('Orientation', s.orientation),
    row('Colour', s.color_model ? `${s.color_model}${s.icc_profile ? ', ' + s.icc_profile : ''}${s.converted_to_srgb ? ', converted to sRGB' : ''}` : null),
    row('Plan', m.plan_fingerprint),
    row('Processed in', m.timings_ms ? `${m.timings_ms.total} ms` : null));
  const placeholder = m.placeholder
    ? h('figure', { class: 'placeholder' },
      blurhashCanvas(m.placeholder.blurhash, (s.width || 1) / (s.height || 1)),
      h('div', { class: 'swatch', title: m.placeholder.dominant_color }),
      h('figcaption', { text: `BlurHash ${m.placeholder.blurhash} · dominant ${m.placeholder.dominant_color}` }))
    : null;
  if (placeholder) placeholder.querySelector('.swatch').style.backgroundColor = m.placeholder.dominant_color;
  parts.push(h('div', { class: 'summary' }, facts, placeholder));

  if (video) {
    const poster = (m.responsive && m.responsive[0] && m.responsive[0].src) || (thumbnailOf(m) && urlOf(thumbnailOf(m)));
    parts.push(h('h3', { text: 'Renditions' }), h('div', { class: 'renditions' },
      ...(m.renditions || []).map((r) => h('figure', {},
        h('video', { src: urlOf(r), poster, controls: true, preload: 'metadata', width: Math.min(r.width, 480), playsinline: true }),
        h('figcaption', { text: `${r.name}: ${r.width}×${r.height}, ${r.video_codec}${r.audio_codec ? ' + ' + r.audio_codec : ''}, ${bytes(r.bytes)}, ${Math.round(r.bitrate / 1000)} kbit/s` })))));
  }

  for (const [i, fam] of (m.responsive || []).entries()) {
    const text = h('textarea', { readonly: true, rows: fam.html.split('\n').length + 1, spellcheck: 'false', class: 'snippet' });
    text.value = fam.html;
    const copy = h('button', { type: 'button', text: 'Copy', onclick: async () => {
      try { await navigator.clipboard.writeText(fam.html); copy.textContent = 'Copied'; } catch (e) { text.select(); copy.textContent = 'Press Ctrl-C'; }
      setTimeout(() => { copy.textContent = 'Copy'; }, 1500);
    } });
    parts.push(h('h3', { text: `HTML${(m.responsive.length > 1) ? ` (${fam.variants.join(', ')})` : ''}${video && i === 0 ? ' (poster)' : ''}` }),
      h('div', { class: 'snippet-box' }, text, copy));
  }
  if (m.html) {
    const text = h('textarea', { readonly: true, rows: m.html.split('\n').length + 1, class: 'snippet' });
    text.value = m.html;
    parts.push(h('h3', { text: 'HTML (video)' }), text);
  }

  const variants = (m.variants || []);
  parts.push(h('h3', { text: video ? 'Poster variants' : 'Variants' }), h('table', { class: 'variants' },
    h('thead', {}, h('tr', {}, ...['', 'Variant', 'Format', 'Size', 'Bytes', 'Saving'].map((t) => h('th', { text: t })))),
    h('tbody', {}, ...variants.map((v) => {
      const saving = s.bytes ? Math.round((1 - v.bytes / s.bytes) * 100) : null;
      return h('tr', { class: 'variant' },
        h('td', {}, h('a', { href: urlOf(v) }, h('img', { src: urlOf(v), alt: `${v.name} ${v.format}`, loading: 'lazy', decoding: 'async', width: Math.min(v.width, 160) }))),
        h('td', { text: v.name }),
        h('td', { text: v.format }),
        h('td', { text: `${v.width}×${v.height}` }),
        h('td', { text: bytes(v.bytes) }),
        h('td', { text: saving === null ? '' : `${saving}%` }));
    }))));
  view.replaceChildren(...parts);
}

// ---- uploads ----
function settleUploads() {
  for (const [key, w] of waiting) {
    const done = (state.recent || []).filter((r) => r.key === key && r.seq > w.seq).pop();
    if (!done) continue;
    waiting.delete(key);
    w.row.className = 'upload ' + done.outcome;
    w.row.replaceChildren(
      done.outcome === 'processed' ? h('a', { href: '#/source/' + encodeURIComponent(key), text: key }) : h('span', { class: 'key', text: key }),
      h('span', { text: done.outcome === 'processed' ? ': processed' : ': ' + done.message }));
  }
}

async function upload(file) {
  const key = file.name;
  const rowEl = h('div', { class: 'upload busy' }, h('span', { class: 'key', text: key }), h('span', { text: ': uploading…' }));
  document.getElementById('uploads').prepend(rowEl);
  const seq = lastSeq();
  try {
    const resp = await fetch('api/upload?key=' + encodeURIComponent(key), {
      method: 'POST',
      body: file,
      headers: { 'Content-Type': file.type || 'application/octet-stream' },
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.error || `${resp.status} ${resp.statusText}`);
    rowEl.lastChild.textContent = ': uploaded to s3://uploads, processing…';
    waiting.set(key, { seq, row: rowEl });
  } catch (e) {
    rowEl.className = 'upload failed';
    rowEl.lastChild.textContent = ': upload refused — ' + e.message;
  }
}

function uploadAll(files) {
  for (const f of files) upload(f);
}

function setUpDrop() {
  const overlay = document.getElementById('drop-overlay');
  let depth = 0;
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
  document.addEventListener('dragenter', (e) => { if (!hasFiles(e)) return; depth++; overlay.hidden = false; e.preventDefault(); });
  document.addEventListener('dragleave', () => { depth = Math.max(0, depth - 1); if (!depth) overlay.hidden = true; });
  document.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
  document.addEventListener('drop', (e) => {
    if (!e.dataTransfer || !e.dataTransfer.files.length) return;
    e.preventDefault();
    depth = 0; overlay.hidden = true;
    uploadAll(e.dataTransfer.files);
  });
  document.getElementById('file-input').addEventListener('change', (e) => {
    uploadAll(e.target.files);
    e.target.value = '';
  });
}

window.addEventListener('hashchange', () => { shown = ''; render(); window.scrollTo(0, 0); });
setUpDrop();
poll();
