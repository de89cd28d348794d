/**
 * What ffprobe must not show of a file the ffmpeg fallback (./ffmpeg-copy.ts) wrote: other streams
 * or codecs than the kept ones, an attached picture, stream tags beyond neutral ones, format tags
 * beyond the brands (and no needle in those), chapters. An empty list is the only pass. (Output
 * of kluis's own rewriter is read by mp4box.js instead: ./movie-check.ts.)
 */
import type { ProbeResult } from '../../wrappers/ffmpeg.js';
import { NEUTRAL_HANDLER_NAMES, type TrackKind } from './rules.js';

const NEUTRAL_STREAM_TAGS: Record<string, (v: string) => boolean> = {
  language: (v) => /^[a-z]{3}$/.test(v),
  handler_name: (v) => NEUTRAL_HANDLER_NAMES.has(v),
  vendor_id: (v) => v === '[0][0][0][0]' || v === 'FFMP',
};
const NEUTRAL_FORMAT_TAGS = new Set(['major_brand', 'minor_version', 'compatible_brands']);

/** What ffprobe shows of a sanitized file that it must not: other streams, other codecs, tags, chapters. */
export function probeFindings(probe: ProbeResult, kept: ReadonlyArray<{ kind: TrackKind; codec: string }>, needles: readonly string[]): string[] {
  const found: string[] = [];
  if (probe.streams.length !== kept.length) found.push(`${probe.streams.length} streams where ${kept.length} were kept`);
  for (const s of probe.streams) {
    const k = kept[s.index];
    if (!k || s.codec_type !== k.kind || s.codec_name !== k.codec) {
      found.push(`stream ${s.index} is ${s.codec_type ?? '?'} ${s.codec_name ?? '?'}, not the kept ${k ? `${k.kind} ${k.codec}` : 'nothing'}`);
    }
    if (s.disposition?.attached_pic === 1) found.push(`stream ${s.index} is an attached picture`);
    for (const [tag, value] of Object.entries(s.tags ?? {})) {
      const ok = NEUTRAL_STREAM_TAGS[tag];
      if (!ok || !ok(value)) found.push(`stream ${s.index} tag ${tag}=${value.slice(0, 60)}`);
    }
  }
  for (const [tag, value] of Object.entries(probe.format?.tags ?? {})) {
    if (!NEUTRAL_FORMAT_TAGS.has(tag)) found.push(`format tag ${tag}=${value.slice(0, 60)}`);
    else for (const n of needles) if (n.length >= 3 && value.includes(n)) found.push(`format tag ${tag} contains "${n}"`);
  }
  if ((probe.chapters ?? []).length > 0) found.push(`${probe.chapters?.length} chapter(s)`);
  return found;
}
