/**
 * The choices on the `kluis bench` command line: `--only a,b` (which names select which runs),
 * `--cards` and `--card-scale`. Pure; anything unknown is a usage error before any work starts.
 */
import { KluisError } from '../errors.js';

/** Names `--only` accepts, and the run ids each selects. */
export const SELECTORS: Record<string, string[]> = {
  cp: ['cp+sha256sum'],
  diy: ['diy'],
  rclone: ['rclone-crypt'],
  age: ['age-card', 'age-file'],
  baselines: ['cp+sha256sum', 'diy', 'rclone-crypt', 'age-card'],
  kluis: ['kluis-ingest-fs'],
  s3: ['kluis-ingest-s3'],
  stages: ['stages'],
  seal: ['seal-sodium', 'seal-tweetnacl', 'seal-node-chacha20', 'age-file'],
  memory: ['memory-1g', 'memory-4g'],
};

/** Turns `--only a,b` into a predicate on run ids; unknown names are a usage error. */
export function selector(only: string[] | null): (id: string) => boolean {
  if (!only || only.length === 0) return () => true;
  const ids = new Set<string>();
  for (const name of only) {
    const sel = SELECTORS[name];
    if (!sel) {
      throw new KluisError('E_USAGE', `--only: unknown run '${name}'`, { hint: `choose from ${Object.keys(SELECTORS).join(', ')}` });
    }
    for (const id of sel) ids.add(id);
  }
  return (id) => ids.has(id);
}

/** The two cards of issue 14, by the name `--cards` takes, and their ids in the results. */
export const CARD_KINDS = { photo: 'photo-heavy', video: 'video-heavy' } as const;
export type CardKind = keyof typeof CARD_KINDS;

/** `--card-scale`: a number above 0 (0.1 = a tenth of every card and video). */
export function parseScale(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new KluisError('E_USAGE', `--card-scale: '${text}' is not a number above 0`, { hint: 'give a scale like 0.1 (a tenth of every card) or 1' });
  }
  return n;
}

/** `--cards photo,video`: which cards, in the order given, each once. */
export function parseCards(text: string): CardKind[] {
  const hint = `choose from ${Object.keys(CARD_KINDS).join(', ')}`;
  const out: CardKind[] = [];
  for (const name of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!Object.hasOwn(CARD_KINDS, name)) throw new KluisError('E_USAGE', `--cards: unknown card '${name}'`, { hint });
    if (!out.includes(name as CardKind)) out.push(name as CardKind);
  }
  if (out.length === 0) throw new KluisError('E_USAGE', '--cards: name at least one card', { hint });
  return out;
}
