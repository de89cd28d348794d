/**
 * Shared helpers of the video sanitize tests (not a test file itself): where the real vendor
 * videos are, independent readers of a result (ExifTool JSON, ffprobe JSON), and a scratch folder.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..');

/** A file of the real vendor set in test/fixtures/real/video (sources in test/fixtures/real/SOURCES.md). */
export function realVideo(name: string): string {
  return path.join(REPO, 'test', 'fixtures', 'real', 'video', name);
}

export function generatedVideo(name: string): string {
  return path.join(REPO, 'test', 'fixtures', 'generated-video', name);
}

export function scratch(prefix: string): { dir: string; done: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `kluis-${prefix}-`));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** ExifTool's full read of a file (-a -G1 -u -ee), as one JSON record. */
export function exiftoolJson(file: string): Record<string, unknown> {
  const out = execFileSync('exiftool', ['-j', '-a', '-G1', '-u', '-ee', '-n', file], { maxBuffer: 64 << 20 });
  return (JSON.parse(out.toString('utf8')) as Array<Record<string, unknown>>)[0] ?? {};
}

export interface Probe {
  streams: Array<{ index: number; codec_type: string; codec_name?: string; codec_tag_string?: string; tags?: Record<string, string>; disposition?: Record<string, number> }>;
  format: { tags?: Record<string, string> };
  chapters?: unknown[];
}

export function ffprobe(file: string): Probe {
  const out = execFileSync('ffprobe', ['-v', 'error', '-of', 'json', '-show_streams', '-show_format', '-show_chapters', file], { maxBuffer: 64 << 20 });
  return JSON.parse(out.toString('utf8')) as Probe;
}

/** The whole file as latin1 text, for tests on small fixtures only. */
export function bytesOf(file: string): string {
  return readFileSync(file).toString('latin1');
}
