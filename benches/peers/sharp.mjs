#!/usr/bin/env node
// sharp peer runner for mediaflow benchmarks. Protocol: see README.md.
//   node benches/peers/sharp.mjs job.json   -> one JSON object on stdout
// Logs go to stderr. Exit 0 on success, 3 when the job cannot be done
// faithfully by this peer (prints {"peer":"sharp","skipped":...}), 2 on
// bad input, 1 on unexpected errors.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const PEER = 'sharp';
const EXT = { jpeg: 'jpg', webp: 'webp', avif: 'avif' };

function emit(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }
function skip(reason, code = 3) {
  process.stderr.write(`${PEER}: skipped: ${reason}\n`);
  emit({ peer: PEER, skipped: reason });
  process.exit(code);
}

if (process.argv.length !== 3) skip('usage: sharp.mjs <job.json>', 2);
let job;
try { job = JSON.parse(readFileSync(process.argv[2], 'utf8')); } catch (e) { skip(`cannot read job: ${e.message}`, 2); }
const threads = Math.max(1, job.threads | 0 || 1);
const iterations = Math.max(1, job.iterations | 0 || 1);
const warmup = Math.max(0, job.warmup | 0);
const filter = job.filter || 'lanczos3';
const outputs = job.outputs || [];
if (!outputs.length) skip('job has no outputs', 2);
for (const o of outputs) if (!EXT[o.format]) skip(`unsupported output format ${o.format}`);
const KERNELS = ['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3', 'mks2013', 'mks2021'];
if (!KERNELS.includes(filter)) skip(`filter ${filter} not available in sharp`);

// Must be set before libuv's threadpool and libvips start: sharp is imported
// dynamically after this.
process.env.UV_THREADPOOL_SIZE = String(threads);
process.env.VIPS_CONCURRENCY = String(threads);
// sharp lives in ./node/node_modules (installed by ./setup).
let sharp;
try {
  const req = createRequire(new URL('./node/package.json', import.meta.url));
  sharp = (await import(pathToFileURL(req.resolve('sharp')).href)).default;
} catch (e) {
  skip(`sharp not installed (run benches/peers/setup): ${String(e.message).split('\n')[0]}`);
}
sharp.concurrency(threads);
sharp.cache(false);
const version = `${sharp.versions.sharp} (libvips ${sharp.versions.vips})`;

const input = readFileSync(job.input); // decoded from memory: no disk I/O timed
const meta = await sharp(input).metadata();

function pipeline(o) {
  let p = sharp(input, { failOn: 'none' })
    .rotate() // EXIF auto-orient
    .resize(o.height
      ? { width: o.width, height: o.height, fit: 'cover', position: 'centre', withoutEnlargement: true, kernel: filter }
      : { width: o.width, withoutEnlargement: true, kernel: filter });
  // sharp drops metadata by default and converts to sRGB.
  const q = o.quality ?? 80;
  if (o.format === 'jpeg') {
    p = p.flatten({ background: '#ffffff' }).jpeg({
      quality: q,
      chromaSubsampling: o.subsampling || '4:2:0',
      progressive: !!o.progressive,
      optimiseCoding: o.optimize_coding ?? true,
      mozjpeg: false,
    });
  } else if (o.format === 'webp') {
    p = p.webp({ quality: q, effort: o.effort ?? 4 });
  } else {
    const opts = { quality: q };
    if (o.subsampling) opts.chromaSubsampling = o.subsampling;
    if (o.effort !== undefined) opts.effort = o.effort;
    p = p.avif(opts);
  }
  return p.toBuffer({ resolveWithObject: true });
}

// One "image": all outputs. sharp has no public "decode once, fan out"
// API: each output is its own pipeline over the same in-memory input, so
// each output decodes the input (with JPEG shrink-on-load). The outputs of
// one image run one after another (not concurrently) so that `threads`
// really bounds the images in flight.
async function image() {
  const res = [];
  for (const o of outputs) res.push(await pipeline(o));
  return res;
}

try {
  for (let i = 0; i < warmup; i++) await image();

  const per = new Array(iterations);
  let last = null;
  let next = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= iterations) return;
      const s = performance.now();
      const r = await image();
      per[i] = performance.now() - s;
      if (i === iterations - 1) last = r;
    }
  }
  await Promise.all(Array.from({ length: threads }, worker));
  const wall = performance.now() - t0;
  const cu = process.cpuUsage(c0);
  const cpuMs = (cu.user + cu.system) / 1000;

  mkdirSync(job.out_dir, { recursive: true });
  const outs = last.map(({ data, info }, i) => {
    const path = join(job.out_dir, `${PEER}-${i}.${EXT[outputs[i].format]}`);
    writeFileSync(path, data);
    return { path, bytes: data.length, width: info.width, height: info.height };
  });
  const avifNote = outputs.some(o => o.format === 'avif')
    ? ' AVIF: libheif+aom, effort 4 (aom cpu-used 5), 8-bit, sharp default chroma 4:4:4 unless "subsampling" set.'
    : '';
  emit({
    peer: PEER,
    version,
    threads,
    iterations,
    warmup,
    wall_ms: wall,
    cpu_ms: cpuMs,
    per_image_ms: per,
    outputs: outs,
    input: { width: meta.width, height: meta.height, format: meta.format },
    loadavg: (await import('node:os')).loadavg(),
    notes: `kernel ${filter} via libvips resize (JPEG inputs: libjpeg shrink-on-load, fastShrinkOnLoad default; ` +
      `then integer box pre-shrink and ${filter} reduce, libvips gap=2 so the kernel does at least the last 2x). ` +
      `Cover outputs: fit 'cover', position 'centre'. Input decoded from an in-memory buffer; each output is a separate sharp pipeline (decodes per output). ` +
      `concurrency(${threads}), UV_THREADPOOL_SIZE=${threads}, ${threads} images in flight, cache(false). ` +
      `JPEG: 4:2:0, optimise_coding, baseline unless progressive, no mozjpeg extensions. WebP: effort 4.` + avifNote,
  });
} catch (e) {
  const msg = String(e && e.message || e).split('\n')[0];
  if (/unsupported|not.*(compiled|available)/i.test(msg)) skip(msg);
  process.stderr.write(`${PEER}: error: ${msg}\n`);
  emit({ peer: PEER, error: msg });
  process.exit(1);
}
