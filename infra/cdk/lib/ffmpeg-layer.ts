/**
 * The ffmpeg layer the stack can publish itself (instead of taking an existing
 * one by ARN): a zip made by infra/layers/ffmpeg/build, from a local file
 * (FfmpegLayerZip, CDK only) or from S3 (FfmpegLayerZipBucket and
 * FfmpegLayerZipKey, as in the SAM template's TranscodeFfmpegLayer).
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { ArchitectureName } from './parameters';

/** The layer version's description, as in the SAM template. */
export const FFMPEG_LAYER_DESCRIPTION =
  "mediaflow transcode - ffmpeg and ffprobe from Debian's packages (infra/layers/ffmpeg)";

/**
 * LicenseInfo: Debian's ffmpeg is GPL-2.0-or-later (--enable-gpl, x264, x265,
 * ...), and the layer also bundles libcdio (GPL-3.0-or-later) and OpenSSL 3
 * (Apache-2.0), so the whole is GPL-3.0-or-later (infra/layers/ffmpeg/README.md).
 */
export const FFMPEG_LAYER_LICENSE = 'GPL-3.0-or-later';

/** The dynamic loader build puts in the layer, per architecture. */
const LOADERS: Record<ArchitectureName, string> = {
  arm64: 'ffmpeg/lib/ld-linux-aarch64.so.1',
  x86_64: 'ffmpeg/lib/ld-linux-x86-64.so.2',
};

/** The names of a zip file's entries, from its central directory (no ZIP64: layers are far smaller). */
export function zipEntryNames(file: string): string[] {
  const size = statSync(file).size;
  const fd = openSync(file, 'r');
  try {
    const read = (offset: number, length: number): Buffer => {
      const buffer = Buffer.alloc(length);
      const got = readSync(fd, buffer, 0, length, offset);
      return buffer.subarray(0, got);
    };
    // The end of central directory record: 22 bytes plus a comment of up to 64 KiB.
    const tailLength = Math.min(size, 22 + 65535);
    const tail = read(size - tailLength, tailLength);
    const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (eocd < 0 || eocd + 22 > tail.length) throw new Error('not a zip file (no end of central directory)');
    const entries = tail.readUInt16LE(eocd + 10);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    const cd = read(cdOffset, cdSize);
    const names: string[] = [];
    let at = 0;
    for (let i = 0; i < entries; i++) {
      if (at + 46 > cd.length || cd.readUInt32LE(at) !== 0x02014b50) throw new Error('damaged central directory');
      const nameLength = cd.readUInt16LE(at + 28);
      const extraLength = cd.readUInt16LE(at + 30);
      const commentLength = cd.readUInt16LE(at + 32);
      names.push(cd.toString('utf8', at + 46, at + 46 + nameLength));
      at += 46 + nameLength + extraLength + commentLength;
    }
    return names;
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks a local layer zip before the CDK uploads it: a .zip file with
 * bin/ffmpeg and bin/ffprobe, and, if it is one that build made (it holds
 * glibc's loader), for `architecture`.
 */
export function checkFfmpegLayerZip(file: string, architecture: ArchitectureName): void {
  const fail = (why: string): never => {
    throw new Error(`mediaflow: FfmpegLayerZip=${file}: ${why}`);
  };
  let isFile = false;
  try {
    isFile = statSync(file).isFile();
  } catch {
    fail('no such file (make it with infra/layers/ffmpeg/build)');
  }
  if (!isFile) fail('not a file');
  if (!file.endsWith('.zip')) fail('not a .zip file');
  let names: string[] = [];
  try {
    names = zipEntryNames(file);
  } catch (e) {
    fail((e as Error).message);
  }
  for (const tool of ['bin/ffmpeg', 'bin/ffprobe']) {
    if (!names.includes(tool)) fail(`no ${tool} in the zip (Lambda extracts a layer to /opt)`);
  }
  for (const [arch, loader] of Object.entries(LOADERS)) {
    if (arch !== architecture && names.includes(loader)) {
      fail(`a layer for ${arch} (it holds ${loader}), but Architecture=${architecture}`);
    }
  }
}
