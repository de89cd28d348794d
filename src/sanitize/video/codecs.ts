/**
 * Which picture and sound codecs a sanitized MP4/MOV may carry, named the way ffmpeg names them,
 * decided from the track's own sample descriptions (the fourcc, and for `mp4a`/`mp4v` the object
 * type in `esds`). A track whose description names anything else is refused rather than dropped:
 * picture or sound is never lost silently. Motion-JPEG is refused because each frame is a JPEG
 * that can carry its own EXIF.
 */
import { KluisError } from '../../errors.js';
import { readPayload, showType, type Box, type ByteSource } from './boxes.js';
import type { TrackKind } from './rules.js';
import type { VideoFormat } from './sniff.js';

/** Codecs kept, per container (the same lists the ffmpeg stream copy kept). */
export const KEEP_CODECS: Record<VideoFormat, { video: ReadonlySet<string>; audio: ReadonlySet<string> }> = {
  mp4: {
    video: new Set(['h264', 'hevc', 'av1', 'vp9', 'mpeg4']),
    audio: new Set(['aac', 'mp3', 'ac3', 'eac3', 'alac', 'opus']),
  },
  mov: {
    video: new Set(['h264', 'hevc', 'av1', 'vp9', 'mpeg4', 'prores']),
    audio: new Set([
      'aac', 'mp3', 'ac3', 'eac3', 'alac', 'pcm_s16le', 'pcm_s16be', 'pcm_s24le', 'pcm_s24be', 'pcm_s32le',
      'pcm_s32be', 'pcm_f32le', 'pcm_f32be',
    ]),
  },
};

const BY_FOURCC: Record<string, string> = {
  avc1: 'h264', avc3: 'h264', hvc1: 'hevc', hev1: 'hevc', dvh1: 'hevc', dvhe: 'hevc', av01: 'av1', vp09: 'vp9',
  vp08: 'vp8', apch: 'prores', apcn: 'prores', apcs: 'prores', apco: 'prores', ap4h: 'prores', ap4x: 'prores',
  jpeg: 'mjpeg', mjpa: 'mjpeg', mjpb: 'mjpeg', s263: 'h263', h263: 'h263', encv: 'encrypted video',
  '.mp3': 'mp3', 'ac-3': 'ac3', 'ec-3': 'eac3', Opus: 'opus', alac: 'alac', fLaC: 'flac', ulaw: 'pcm_mulaw',
  alaw: 'pcm_alaw', ima4: 'adpcm_ima_qt', samr: 'amr_nb', sawb: 'amr_wb', 'ac-4': 'ac4', enca: 'encrypted audio',
  raw: 'pcm_u8', fl64: 'pcm_f64be',
};

const VIDEO_OTI: Record<number, string> = { 0x20: 'mpeg4', 0x21: 'h264', 0x6a: 'mpeg1video', 0x6c: 'mjpeg' };
const AUDIO_OTI: Record<number, string> = {
  0x40: 'aac', 0x66: 'aac', 0x67: 'aac', 0x68: 'aac', 0x69: 'mp3', 0x6b: 'mp3', 0xa5: 'ac3', 0xa6: 'eac3', 0xad: 'opus', 0xdd: 'vorbis',
};

/** The objectTypeIndication of an esds payload (ES_Descriptor > DecoderConfigDescriptor), or null. */
export function esdsObjectType(p: Uint8Array): number | null {
  let at = 4; // version/flags
  const len = (): number => {
    let n = 0;
    for (let i = 0; i < 4; i++) {
      const b = p[at++];
      if (b === undefined) return -1;
      n = (n << 7) | (b & 0x7f);
      if ((b & 0x80) === 0) break;
    }
    return n;
  };
  if (p[at++] !== 0x03) return null;
  if (len() < 0) return null;
  at += 2; // ES_ID
  const flags = p[at++];
  if (flags === undefined) return null;
  if (flags & 0x80) at += 2;
  if (flags & 0x40) at += 1 + (p[at] ?? 0);
  if (flags & 0x20) at += 2;
  if (p[at++] !== 0x04) return null;
  if (len() < 0) return null;
  return p[at] ?? null;
}

function findEsds(entry: Box): Box | undefined {
  for (const c of entry.children ?? []) {
    if (c.type === 'esds') return c;
    if (c.type === 'wave') {
      const w = (c.children ?? []).find((x) => x.type === 'esds');
      if (w) return w;
    }
  }
  return undefined;
}

/** ffmpeg's name for the codec of one sample entry ("unknown …" when kluis cannot tell). */
export async function entryCodec(src: ByteSource, entry: Box, format: VideoFormat): Promise<string> {
  if (entry.type === 'mp4a' || entry.type === 'mp4v') {
    const esds = findEsds(entry);
    return objectTypeCodec(entry.type, esds ? esdsObjectType(await readPayload(src, esds, 1 << 16)) : null);
  }
  if (['lpcm', 'in24', 'in32', 'fl32'].includes(entry.type)) {
    // Byte order is in the entry (v2 flags) or a child (enda); the family is what the list judges.
    const le = await pcmLittleEndian(src, entry);
    const bits = entry.type === 'in24' ? 's24' : entry.type === 'in32' ? 's32' : entry.type === 'fl32' ? 'f32' : await lpcmKind(src, entry);
    return `pcm_${bits}${le ? 'le' : 'be'}`;
  }
  if (entry.type === 'sowt' || entry.type === 'twos') {
    // QuickTime SoundDescription: sample size (bits) at 18; 8-bit is signed bytes in both.
    const f = await src.read(entry.offset + entry.headerSize, 20);
    const bits = f.length >= 20 ? (f[18]! << 8) + f[19]! : 16;
    if (bits === 8) return 'pcm_s8';
    return `pcm_s${bits}${entry.type === 'sowt' ? 'le' : 'be'}`;
  }
  void format;
  return fourccCodec(entry.type);
}

/** ffmpeg's name for an `mp4a`/`mp4v` entry with this object type (from its esds). */
function objectTypeCodec(fourcc: 'mp4a' | 'mp4v', oti: number | null): string {
  const name = oti === null ? undefined : (fourcc === 'mp4a' ? AUDIO_OTI : VIDEO_OTI)[oti];
  return name ?? `unknown ${fourcc} object type ${oti === null ? '?' : `0x${oti.toString(16)}`}`;
}

/** ffmpeg's name for a sample entry told by its fourcc alone. */
function fourccCodec(fourcc: string): string {
  return BY_FOURCC[fourcc.trim()] ?? BY_FOURCC[fourcc] ?? `unknown ${showType(fourcc)}`;
}

const PCM_ENTRIES = new Set(['lpcm', 'in24', 'in32', 'fl32', 'fl64', 'sowt', 'twos', 'raw ']);

/**
 * The codec family of a sample entry as another reader names it (its fourcc, and for mp4a/mp4v
 * the object type): ffmpeg's codec name, or "pcm" for any uncompressed sound. `keptFamily` gives
 * the same family of a name `entryCodec` returned, so the two can be compared.
 */
export function codecFamily(fourcc: string, objectType: number | null): string {
  if (fourcc === 'mp4a' || fourcc === 'mp4v') return objectTypeCodec(fourcc, objectType);
  if (PCM_ENTRIES.has(fourcc)) return 'pcm';
  return fourccCodec(fourcc);
}

export function keptFamily(codec: string): string {
  return codec.startsWith('pcm_') ? 'pcm' : codec;
}

/** A big-endian u32 of an entry's fixed part (payload offset `at`), or 0 when it is too short. */
function fixedU32(f: Uint8Array, at: number): number {
  return f.length >= at + 4 ? ((f[at]! << 24) >>> 0) + (f[at + 1]! << 16) + (f[at + 2]! << 8) + f[at + 3]! : 0;
}

/**
 * QuickTime sound description fields, by version (payload offsets): v0/v1 channels at 16 and
 * bits at 18; v1 bytesPerFrame at 36; v2 (SoundDescriptionV2) constBitsPerChannel at 48,
 * formatSpecificFlags at 52, constBytesPerAudioPacket at 56, constLPCMFramesPerAudioPacket at 60.
 */
async function soundFixed(src: ByteSource, entry: Box): Promise<Uint8Array> {
  return src.read(entry.offset + entry.headerSize, 64);
}

async function pcmLittleEndian(src: ByteSource, entry: Box): Promise<boolean> {
  const f = await soundFixed(src, entry);
  if (((f[8] ?? 0) << 8 | (f[9] ?? 0)) === 2) return (fixedU32(f, 52) & 2) === 0; // kAudioFormatFlagIsBigEndian
  for (const c of entry.children ?? []) {
    const enda = c.type === 'enda' ? c : c.type === 'wave' ? (c.children ?? []).find((x) => x.type === 'enda') : undefined;
    if (enda) {
      const p = await readPayload(src, enda, 16);
      return (p[1] ?? 0) === 1 || (p[0] ?? 0) === 1;
    }
  }
  return entry.type === 'lpcm';
}

async function lpcmKind(src: ByteSource, entry: Box): Promise<string> {
  const f = await soundFixed(src, entry);
  if (((f[8] ?? 0) << 8 | (f[9] ?? 0)) !== 2) return 'unknown';
  const float = (fixedU32(f, 52) & 1) !== 0; // kAudioFormatFlagIsFloat
  return `${float ? 'f' : 's'}${fixedU32(f, 48)}`;
}

/**
 * Bytes of one sample (one frame: every channel once) of uncompressed sound, as its sample
 * description gives it; null when the description does not say.
 */
export async function pcmBytesPerFrame(src: ByteSource, entry: Box): Promise<number | null> {
  const f = await soundFixed(src, entry);
  const version = ((f[8] ?? 0) << 8) | (f[9] ?? 0);
  if (version === 0) {
    const channels = ((f[16] ?? 0) << 8) | (f[17] ?? 0);
    const bits = ((f[18] ?? 0) << 8) | (f[19] ?? 0);
    const bitsOf: Record<string, number> = { in24: 24, in32: 32, fl32: 32, fl64: 64 };
    const b = bitsOf[entry.type] ?? bits;
    return channels > 0 && b % 8 === 0 && b > 0 ? channels * (b / 8) : null;
  }
  if (version === 1) return fixedU32(f, 36) || null;
  if (version === 2) {
    const bytes = fixedU32(f, 56);
    const frames = fixedU32(f, 60);
    return bytes > 0 && frames === 1 ? bytes : null;
  }
  return null;
}

/**
 * The codec of a video or audio track (all its sample entries must agree and be kept in this
 * container); throws E_SANITIZE_UNSUPPORTED_CODEC otherwise.
 */
export async function trackCodec(src: ByteSource, stsd: Box, kind: TrackKind, format: VideoFormat, trackId: number): Promise<string> {
  const entries = stsd.children ?? [];
  let codec: string | undefined;
  for (const e of entries) {
    const c = await entryCodec(src, e, format);
    if (!KEEP_CODECS[format][kind].has(c)) {
      throw new KluisError(
        'E_SANITIZE_UNSUPPORTED_CODEC',
        `track ${trackId} is ${kind} in ${c} (sample entry ${showType(e.type)}), which kluis does not keep in ${format.toUpperCase()}`,
        {
          hint: kind === 'video' && c === 'mjpeg'
            ? 'Motion-JPEG frames carry their own EXIF; such files are not stored until a frame-level strip exists'
            : 'the file is not stored rather than dropping picture or sound; report the codec so it can be reviewed',
        },
      );
    }
    if (codec !== undefined && codec !== c) {
      throw new KluisError('E_SANITIZE_UNSUPPORTED_CODEC', `track ${trackId} mixes ${codec} and ${c} sample entries`, {
        hint: 'the file is not stored rather than guessing which description a sample uses; report it',
      });
    }
    codec = c;
  }
  if (codec === undefined) throw new KluisError('E_SANITIZE_SAMPLE_TABLE', `track ${trackId} has no sample description`, { hint: "the track's index is damaged; the file is not stored" });
  return codec;
}

