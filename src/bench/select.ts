/**
 * `kluis bench --only a,b`: which names select which runs. Pure; unknown names are a usage error
 * before any work starts.
 */
import { KluisError } from '../errors.js';

/** Names `--only` accepts, and the run ids each selects. */
export const SELECTORS: Record<string, string[]> = {
  cp: ['cp+sha256sum'],
  rclone: ['rclone-crypt'],
  age: ['age-card', 'age-file'],
  baselines: ['cp+sha256sum', 'rclone-crypt', 'age-card'],
  kluis: ['kluis-ingest-fs'],
  s3: ['kluis-ingest-s3'],
  stages: ['stages'],
  seal: ['seal-sodium', 'seal-tweetnacl', 'seal-node-chacha20', 'age-file'],
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
