/**
 * Each pipeline stage alone, run in this process over one card one after another, so the time
 * and CPU of `kluis ingest` can be split into where they go (CPU seconds per GB per stage, issue
 * 14): acquire+hash (acquireFile), sanitize image and sanitize video (sanitizeFile, proofs
 * included), seal (sealFile over every sanitized file), deliver to an fs store (FsTarget.put) and
 * verify (read back + SHA-256). Each stage consumes the files the previous stage wrote, in a
 * scratch folder that is removed afterwards unless kept. With `sealCompare`, also each seal
 * implementation (benchSeal) and age on the card's largest video.
 *
 * These are measurements only: no journal, no audit log, no station; never used to secure
 * anything. Stages run one file at a time (ingest overlaps them over its workers).
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { acquireFile } from '../card/index.js';
import { sanitizeFile } from '../sanitize/index.js';
import { closeExiftool } from '../wrappers/exiftool.js';
import { closeSpawner } from '../wrappers/spawner.js';
import { benchSeal, formatPublicKey, generateKey, publishSealed, sealFile, type BenchImpl } from '../seal/index.js';
import { WorkerPool } from '../pipeline/workers.js';
import { FsTarget } from '../targets/index.js';
import { measureInProcess, type Measured } from './measure.js';
import type { RunResult } from './result.js';
import { failedRun, runAgeFile, warmFile, type RunContext } from './runs.js';

const CARD_READ_NOTE =
  "one read per file: SHA-256, xxh128, sealed original on the reader's sealing thread, working copy; each original fsynced; no sanitizing, journal or audit";

function stageRun(card: string, id: string, label: string, bytes: number, files: number, m: Measured, note?: string): RunResult {
  return {
    id,
    label,
    group: 'stage',
    card,
    bytes,
    files,
    wallMs: m.wallMs,
    cpuUserMs: m.cpuUserMs,
    cpuSysMs: m.cpuSysMs,
    peakRssBytes: m.peakRssBytes,
    rssMethod: m.rssMethod,
    ok: true,
    ...(note ? { note } : {}),
  };
}

interface CardFile {
  rel: string;
  abs: string;
  size: number;
  kind: 'image' | 'video' | 'other';
}

async function listCard(card: string): Promise<CardFile[]> {
  const out: CardFile[] = [];
  for (const e of await fsp.readdir(card, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const abs = path.join(e.parentPath, e.name);
    const ext = path.extname(e.name).toUpperCase();
    out.push({
      rel: path.relative(card, abs),
      abs,
      size: (await fsp.stat(abs)).size,
      kind: ext === '.JPG' || ext === '.JPEG' || ext === '.DNG' || ext === '.TIF' || ext === '.TIFF' ? 'image' : ext === '.MP4' || ext === '.MOV' ? 'video' : 'other',
    });
  }
  return out.sort((a, b) => (a.rel < b.rel ? -1 : 1));
}

/**
 * Runs every stage alone; returns one RunResult per stage (failed stages are recorded, not thrown).
 * `stages`: the pipeline stages; `sealCompare`: which single-file seal comparisons to run.
 */
export async function runStages(ctx: RunContext, opts: { stages: boolean; sealCompare?: (id: string) => boolean }): Promise<RunResult[]> {
  const want = opts.sealCompare ?? (() => false);
  const full = opts.stages;
  const card = ctx.card.id;
  const results: RunResult[] = [];
  const dir = path.join(ctx.work, 'stages');
  await fsp.rm(dir, { recursive: true, force: true });
  const acquired = path.join(dir, 'acquired');
  const sanitized = path.join(dir, 'sanitized');
  const sealed = path.join(dir, 'sealed');
  for (const d of [acquired, sanitized, sealed]) await fsp.mkdir(d, { recursive: true });
  const files = await listCard(ctx.card.path);
  const footage = files.filter((f) => f.kind !== 'other');
  const acq = new Map<string, string>();
  const san = new Map<string, string>();
  const sea = new Map<string, { path: string; sha256: string; size: number }>();
  try {
    // The card read as ingest does it, and nothing else: the floor under ingest's "card free".
    if (full) {
      ctx.log('stage: card read as ingest does it');
      const read = path.join(dir, 'card-read');
      await fsp.mkdir(read, { recursive: true });
      const recipient = formatPublicKey(generateKey('recipient').publicKey);
      const reader = new WorkerPool(1);
      try {
        const { m } = await measureInProcess(async () => {
          let durable: Promise<void> = Promise.resolve();
          for (const [i, f] of footage.entries()) {
            const sealTo = path.join(read, `${i}.sealed`);
            const r = await reader.run('read-card', { src: f.abs, expectSize: f.size, workingCopy: path.join(read, String(i)), sealTo, deferSeal: true, recipients: [recipient] });
            // Made durable behind the next read, as ingest does before it calls the card free.
            const prev = durable;
            durable = prev.then(() => (r.sealed?.pending ? publishSealed(r.sealed.pending, sealTo) : undefined));
          }
          await durable;
        });
        results.push(stageRun(card, 'stage-card-read', 'stage: card read as ingest does it', sum(footage), footage.length, m, CARD_READ_NOTE));
      } catch (err) {
        results.push(failedRun('stage-card-read', 'stage: card read as ingest does it', 'stage', err, card));
      } finally {
        await reader.close();
        await fsp.rm(read, { recursive: true, force: true });
      }
    }
    // acquire + hash: every footage file, copied into the scratch spool while hashed.
    if (full) {
      ctx.log('stage: acquire + hash');
      const { m } = await measureInProcess(async () => {
        for (const [i, f] of footage.entries()) {
          const dst = path.join(acquired, String(i));
          await acquireFile(f.abs, dst, f.size);
          acq.set(f.rel, dst);
        }
      });
      results.push(stageRun(card, 'stage-acquire', 'stage: acquire + SHA-256 + xxh128', sum(footage), footage.length, m, 'copy to spool with fsync'));
    }
    for (const kind of full ? (['image', 'video'] as const) : []) {
      const id = `stage-sanitize-${kind}`;
      const label = `stage: sanitize ${kind} (with proofs)`;
      const set = footage.filter((f) => f.kind === kind);
      if (set.length === 0) continue;
      try {
        ctx.log(`stage: sanitize ${kind}`);
        const { m } = await measureInProcess(async () => {
          for (const [i, f] of set.entries()) {
            const out = path.join(sanitized, `${kind}-${i}`);
            await sanitizeFile(acq.get(f.rel)!, out, { thermal: 'keep' });
            san.set(f.rel, out);
          }
          // The persistent ExifTool and the spawner (and the tools it ran) are children that
          // have not ended yet: end them inside the measurement so their CPU time is counted
          // with the stage that used them.
          await closeExiftool();
          await closeSpawner();
        });
        results.push(stageRun(card, id, label, sum(set), set.length, m, 'CPU includes ffmpeg/exiftool children'));
      } catch (err) {
        results.push(failedRun(id, label, 'stage', err, card));
      }
    }
    await fsp.rm(acquired, { recursive: true, force: true });

    // seal: each implementation on the largest video, then age on the same file.
    const videos = footage.filter((f) => f.kind === 'video');
    const biggest = [...(videos.length > 0 ? videos : footage)].sort((a, b) => b.size - a.size)[0];
    if (biggest && ['seal-sodium', 'seal-tweetnacl', 'seal-node-chacha20', 'age-file'].some(want)) {
      const impls: Array<[BenchImpl, string]> = [
        ['sodium', 'stage: seal sodium-native (one video)'],
        ['tweetnacl', 'stage: seal tweetnacl (one video)'],
        ['node-chacha20', 'stage: node chacha20-poly1305 (one video)'],
      ];
      for (const [impl, label] of impls) {
        const id = `seal-${impl}`;
        if (!want(id)) continue;
        try {
          ctx.log(`stage: seal ${impl}`);
          await warmFile(biggest.abs);
          const { value, m } = await measureInProcess(() => benchSeal(biggest.abs, impl));
          results.push(stageRun(card, id, label, value.bytes, 1, { ...m, wallMs: value.seconds * 1000 }, impl === 'node-chacha20' ? 'comparison only, not the kluis format' : undefined));
        } catch (err) {
          results.push(failedRun(id, label, 'stage', err, card));
        }
      }
      if (want('age-file')) {
        try {
          results.push(await runAgeFile(ctx, biggest.abs));
        } catch (err) {
          results.push(failedRun('age-file', 'age -r, one video', 'stage', err, card));
        }
      }
    }

    // seal every sanitized file (what ingest does), then deliver and verify them.
    const recipient = generateKey('recipient').publicKey;
    const sanitizedList = [...san.entries()];
    if (sanitizedList.length > 0) {
      ctx.log('stage: seal every sanitized file');
      const bytesIn = await sumFiles(sanitizedList.map(([, p]) => p));
      const { m } = await measureInProcess(async () => {
        for (const [i, [rel, p]] of sanitizedList.entries()) {
          const dst = path.join(sealed, String(i));
          const r = await sealFile(p, dst, [recipient]);
          sea.set(rel, { path: dst, ...r });
        }
      });
      results.push(stageRun(card, 'stage-seal', 'stage: seal (sodium) every sanitized file', bytesIn, sanitizedList.length, m));
      await fsp.rm(sanitized, { recursive: true, force: true });

      const store = new FsTarget('bench', path.join(dir, 'store'));
      const objects = [...sea.values()];
      const sealedBytes = objects.reduce((s, o) => s + o.size, 0);
      ctx.log('stage: deliver (fs)');
      const keys: Array<{ key: string; sha256: string; size: number }> = [];
      const put = await measureInProcess(async () => {
        for (const [i, o] of objects.entries()) {
          const key = `batch/${String(i).padStart(6, '0')}`;
          await store.put(key, () => createReadStream(o.path), { size: o.size, sha256: o.sha256 });
          keys.push({ key, sha256: o.sha256, size: o.size });
        }
      });
      results.push(stageRun(card, 'stage-deliver', 'stage: deliver to fs store', sealedBytes, objects.length, put.m, 'temp file, checked stream, fsync, link'));
      ctx.log('stage: verify (read back + SHA-256)');
      const ver = await measureInProcess(async () => {
        for (const k of keys) {
          const h = createHash('sha256');
          let n = 0;
          for await (const chunk of (await store.get(k.key)) as AsyncIterable<Buffer>) {
            h.update(chunk);
            n += chunk.length;
          }
          if (h.digest('hex') !== k.sha256 || n !== k.size) throw new Error(`read-back mismatch for ${k.key}`);
        }
      });
      results.push(stageRun(card, 'stage-verify', 'stage: verify (read back + SHA-256)', sealedBytes, keys.length, ver.m));
    }
  } catch (err) {
    results.push(failedRun('stages', 'stages', 'stage', err, card));
  } finally {
    if (!ctx.keep) await fsp.rm(dir, { recursive: true, force: true });
  }
  return results;
}

function sum(files: Array<{ size: number }>): number {
  return files.reduce((s, f) => s + f.size, 0);
}

async function sumFiles(paths: string[]): Promise<number> {
  let n = 0;
  for (const p of paths) n += (await fsp.stat(p)).size;
  return n;
}
