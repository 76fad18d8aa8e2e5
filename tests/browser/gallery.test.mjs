// The gallery of `mediaflow dev` in Debian's headless Chromium, driven by
// playwright-core (it downloads no browser: /usr/bin/chromium).
//
// Starts `mediaflow dev --seed sample-media` on a free port with a fresh
// data directory, then checks in the browser:
//   - every seeded file is on the page: processed ones in the list (their
//     thumbnails loaded, naturalWidth > 0), failed ones in the failures
//     table with their reason, as the dead-letter file has them;
//   - a photo dropped on the page (a drag-and-drop event carrying a File)
//     goes to s3://uploads through the S3 API and appears, processed and
//     loaded, without a reload; its key has a space and a '+' (URL encoding);
//   - a dropped file that is not an image is listed as failed with its reason;
//   - a source's page: every variant loaded, the BlurHash drawn, the
//     <picture> snippet; a video's renditions load with their poster;
// and saves screenshots under target/gallery/. Everything it starts it
// stops by PID; every wait is bounded.
//
// MEDIAFLOW_BIN: the mediaflow binary (default target/debug/mediaflow).
// CHROMIUM: the browser (default /usr/bin/chromium).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.MEDIAFLOW_BIN || path.join(ROOT, 'target/debug/mediaflow');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SAMPLES = path.join(ROOT, 'sample-media');
const SHOTS = process.env.MEDIAFLOW_SCREENSHOTS || path.join(ROOT, 'target/gallery');
// The extensions `mediaflow dev --seed` uploads (crates/cli/src/dev.rs).
const SEEDED = /\.(jpe?g|jpe|jfif|png|webp|gif|tiff?|avif|mp4|m4v|mov|webm|mkv)$/i;

let dev;
let data;
let gallery;
let browser;
let output = '';

function seededKeys(dir, prefix = '') {
  const keys = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory()) keys.push(...seededKeys(path.join(dir, e.name), prefix + e.name + '/'));
    else if (e.isFile() && SEEDED.test(e.name)) keys.push(prefix + e.name);
  }
  return keys;
}

function waitForOutput(re, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { clearInterval(tick); reject(new Error(`no ${re} within ${ms / 1000} s:\n${output}`)); }, ms);
    const tick = setInterval(() => {
      const m = output.match(re);
      if (m) { clearTimeout(timer); clearInterval(tick); resolve(m); }
      if (dev.exitCode !== null) { clearTimeout(timer); clearInterval(tick); reject(new Error(`mediaflow dev exited (${dev.exitCode}):\n${output}`)); }
    }, 100);
  });
}

async function stopDev() {
  if (!dev || dev.exitCode !== null) return;
  const exited = new Promise((resolve) => dev.once('exit', resolve));
  try { process.kill(-dev.pid, 'SIGINT'); } catch { /* gone */ }
  const timer = setTimeout(() => { try { process.kill(-dev.pid, 'SIGKILL'); } catch { /* gone */ } }, 40_000);
  await exited;
  clearTimeout(timer);
}

before(async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: cargo build -p mediaflow-cli --bin mediaflow`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: BROWSER=1 scripts/deps`);
  fs.mkdirSync(SHOTS, { recursive: true });
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'mediaflow-gallery-'));
  // Its own process group, so ffmpeg children stop with it.
  dev = spawn(BIN, ['dev', '--port', '0', '--data', data, '--seed', SAMPLES], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  dev.stdout.on('data', (d) => { output += d; });
  dev.stderr.on('data', (d) => { output += d; });
  const m = await waitForOutput(/source\(s\) in [\d.]+ s\. Outputs in .*\ngallery: (http:\/\/127\.0\.0\.1:\d+\/_gallery\/)/, 600_000);
  gallery = m[1];
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  await stopDev();
  if (data) fs.rmSync(data, { recursive: true, force: true });
});

async function state() {
  const resp = await fetch(gallery + 'api/state');
  assert.equal(resp.status, 200);
  return resp.json();
}

async function openGallery() {
  // Tall enough that no thumbnail is below the fold (they load lazily).
  const page = await browser.newPage({ viewport: { width: 1280, height: 6000 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(gallery, { timeout: 30_000 });
  return { page, errors };
}

// Every <img> matching `selector` has arrived and decoded.
async function imagesLoaded(page, selector, min) {
  await page.waitForFunction(({ selector, min }) => {
    const imgs = [...document.querySelectorAll(selector)];
    return imgs.length >= min && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, { selector, min }, { timeout: 60_000 });
  return page.$$eval(selector, (imgs) => imgs.map((i) => ({ src: i.src, w: i.naturalWidth })));
}

test('every seeded source is on the page, thumbnails loaded, failures with their reasons', async () => {
  const s = await state();
  const seeded = seededKeys(SAMPLES);
  const processed = new Set(s.sources.map((x) => x.key));
  const failed = new Set(s.failures.map((f) => f.key));
  for (const key of seeded) {
    assert.ok(processed.has(key) || failed.has(key), `${key} is neither processed nor failed`);
  }
  assert.ok(processed.size >= seeded.length - failed.size, 'sources missing');
  assert.ok(failed.size >= 1, 'sample-media has corrupt clips: some failures expected');

  const { page, errors } = await openGallery();
  await page.waitForFunction((n) => document.querySelectorAll('#sources li.source').length === n,
    processed.size, { timeout: 30_000 });
  const keys = await page.$$eval('#sources li.source', (lis) => lis.map((li) => li.dataset.key));
  assert.deepEqual(new Set(keys), processed);
  // Newest first, as the manifests' LastModified says.
  const order = s.sources.map((x) => x.key);
  assert.deepEqual(keys, order);
  const thumbs = await imagesLoaded(page, '#sources li.source img', processed.size - 0);
  assert.ok(thumbs.every((t) => t.src.includes('/_media/')), 'thumbnails come from the media route');
  // Failures, each with its reason.
  const rows = await page.$$eval('#failures tr.failure', (trs) => trs.map((tr) => ({
    key: tr.dataset.key, reason: tr.querySelector('.reason').textContent,
  })));
  for (const key of failed) {
    const row = rows.find((r) => r.key === key);
    assert.ok(row, `failure of ${key} not listed`);
    assert.ok(row.reason.length > 10, `failure of ${key} has no reason: ${JSON.stringify(row)}`);
  }
  await page.screenshot({ path: path.join(SHOTS, 'gallery.png'), fullPage: false, clip: { x: 0, y: 0, width: 1280, height: 1400 } });
  assert.deepEqual(errors, []);
  await page.close();
});

test('a file dropped on the page is uploaded and shown when processed, without a reload', async () => {
  const { page, errors } = await openGallery();
  await page.waitForSelector('#sources li.source', { timeout: 30_000 });
  const reloads = [];
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) reloads.push(f.url()); });
  const drop = (name, bytes, type) => page.evaluate(({ name, b64, type }) => {
    const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bin], name, { type }));
    for (const t of ['dragenter', 'dragover', 'drop']) {
      document.body.dispatchEvent(new DragEvent(t, { bubbles: true, cancelable: true, dataTransfer: dt }));
    }
  }, { name, b64: Buffer.from(bytes).toString('base64'), type });

  const key = 'dropped photo+1 ö.jpg';
  await drop(key, fs.readFileSync(path.join(SAMPLES, 'rocket.jpg')), 'image/jpeg');
  await page.waitForFunction((key) => [...document.querySelectorAll('.upload.processed')]
    .some((e) => e.textContent.startsWith(key)), key, { timeout: 120_000 });
  await page.waitForFunction((key) => [...document.querySelectorAll('#sources li.source')]
    .some((li) => li.dataset.key === key), key, { timeout: 30_000 });
  const [thumb] = await imagesLoaded(page, `#sources li.source[data-key="${key}"] img`, 1);
  assert.match(thumb.src, /dropped%20photo%2B1%20%C3%B6\.jpg/, 'the key is percent-encoded in the URL');

  // Not an image: refused by the pipeline, listed with its reason.
  const bad = 'not-an-image.jpg';
  await drop(bad, Buffer.from('this is text, not a JPEG\n'.repeat(20)), 'image/jpeg');
  await page.waitForFunction((bad) => [...document.querySelectorAll('.upload.failed')]
    .some((e) => e.textContent.startsWith(bad)), bad, { timeout: 120_000 });
  await page.waitForFunction((bad) => [...document.querySelectorAll('#failures tr.failure')]
    .some((tr) => tr.dataset.key === bad && tr.querySelector('.reason').textContent.length > 10), bad, { timeout: 30_000 });
  const reason = await page.$eval(`#failures tr.failure[data-key="${bad}"] .reason`, (e) => e.textContent);
  assert.match(reason, /not-an-image\.jpg|format|unsupported|recogni/i);

  assert.deepEqual(reloads, [], 'the page was reloaded');
  await page.screenshot({ path: path.join(SHOTS, 'gallery-after-upload.png'), clip: { x: 0, y: 0, width: 1280, height: 1400 } });
  assert.deepEqual(errors, []);
  await page.close();
});

test("a source's page shows every variant, the BlurHash, the snippet; videos play with their poster", async () => {
  const s = await state();
  const photo = s.sources.find((x) => x.key === 'rocket.jpg');
  assert.ok(photo, 'rocket.jpg processed');
  const { page, errors } = await openGallery();
  await page.goto(gallery + '#/source/' + encodeURIComponent('rocket.jpg'));
  await page.waitForSelector('#detail-view:not([hidden]) table.variants', { timeout: 30_000 });
  const n = photo.manifest.variants.length;
  const imgs = await imagesLoaded(page, 'table.variants img', n);
  assert.equal(imgs.length, n);
  assert.equal(await page.$eval('canvas.blurhash', (c) => c.dataset.drawn), 'true');
  const snippet = await page.$eval('textarea.snippet', (t) => t.value);
  assert.equal(snippet, photo.manifest.responsive[0].html);
  assert.match(snippet, /^<picture>/);
  const savings = await page.$$eval('table.variants tbody tr', (trs) => trs.map((tr) => tr.lastChild.textContent));
  assert.ok(savings.every((x) => /^-?\d+%$/.test(x)), JSON.stringify(savings));
  await page.screenshot({ path: path.join(SHOTS, 'source.png'), clip: { x: 0, y: 0, width: 1280, height: 1600 } });

  const clip = s.sources.find((x) => x.manifest.kind === 'video');
  assert.ok(clip, 'a video was processed');
  await page.goto(gallery + '#/source/' + encodeURIComponent(clip.key));
  await page.waitForSelector('#detail-view:not([hidden]) .renditions video', { timeout: 30_000 });
  const videos = await page.waitForFunction((n) => {
    const vs = [...document.querySelectorAll('.renditions video')];
    return vs.length === n && vs.every((v) => v.readyState >= 1 && v.videoWidth > 0 && v.poster)
      && vs.map((v) => ({ w: v.videoWidth, h: v.videoHeight, poster: v.poster }));
  }, clip.manifest.renditions.length, { timeout: 60_000 });
  const shown = await videos.jsonValue();
  assert.equal(shown.length, clip.manifest.renditions.length);
  for (const [i, v] of shown.entries()) {
    assert.equal(v.w, clip.manifest.renditions[i].width);
    assert.match(v.poster, /\/_media\//);
  }
  await page.screenshot({ path: path.join(SHOTS, 'video.png'), clip: { x: 0, y: 0, width: 1280, height: 1600 } });
  assert.deepEqual(errors, []);
  await page.close();
  console.log(`screenshots: ${SHOTS}/{gallery,gallery-after-upload,source,video}.png`);
});
