/**
 * Every object the signed manifest lists, on every target that should hold it: each card file's
 * sanitized object, its sealed original (only on targets whose config allows originals; it
 * decrypts to the card's own hash), and the objects tied to no card file (the sealed report, the
 * custody record). With a card folder, each card file is re-hashed too. Then each target's batch
 * folder is listed for objects the manifest does not name. Problems go to `problems`; a listing
 * that failed goes to `notes`.
 */
import type { TargetConfig } from '../../config/index.js';
import type { ManifestFile, ManifestInner, ManifestOuter, SecretKey } from '../../seal/index.js';
import type { FullDecode } from '../../sanitize/index.js';
import type { Target } from '../../targets/index.js';
import { cardDecode, checkCard } from './card.js';
import type { DeepArgs } from './deep.js';
import { checkObject } from './object.js';
import { errText, soft, worst, type DecodeFn, type EssenceFn, type FileResult, type VerifyProblem } from './result.js';

export interface FilesArgs {
  batchId: string;
  good: ManifestOuter;
  inner: ManifestInner | undefined;
  targets: Target[];
  targetConfigs: TargetConfig[];
  identities: SecretKey[];
  essenceFn: EssenceFn | null;
  decodeFn: DecodeFn | null;
  /** The card folder, when given. */
  card: string | undefined;
  problems: VerifyProblem[];
  notes: string[];
}

/** The files (tied to a card file) and the other objects, each checked on every target. */
export async function checkFiles(a: FilesArgs): Promise<{ files: FileResult[]; objects: FileResult[] }> {
  const { batchId, good, inner, targets, targetConfigs, identities, essenceFn, decodeFn, problems, notes } = a;
  // The card file's pixels, decoded once per file whatever the number of targets.
  const cardPixels = new Map<string, Promise<FullDecode>>();
  const files: FileResult[] = [];
  const objects: FileResult[] = [];
  const byObject = new Map<string, ManifestFile>();
  for (const f of inner?.files ?? []) if (f.objectId) byObject.set(f.objectId, f);
  // Sealed originals (unsanitized card bytes) live only on targets whose config allows them, and
  // decrypt to the card's own hash: checked as a file whose "sanitized" hash is the card hash.
  const byOriginal = new Map<string, ManifestFile>();
  for (const f of inner?.files ?? []) {
    const id = (f as { originalObjectId?: unknown }).originalObjectId;
    if (typeof id === 'string') byOriginal.set(id, f);
  }
  const originalsAllowed = new Set(targetConfigs.filter((t) => t.originalsAllowed).map((t) => t.name));
  const listed = inner ? inner.files : [];
  const seen = new Set<string>();
  const entries: Array<{ file?: ManifestFile; objectId?: string; original?: boolean }> = [
    ...listed.map((f) => ({ file: f, ...(f.objectId ? { objectId: f.objectId } : {}) })),
    ...listed
      .filter((f) => byOriginal.get(String((f as { originalObjectId?: unknown }).originalObjectId)) === f)
      .map((f) => {
        const { essence: _essence, sanitizedSize: _size, ...rest } = f;
        return {
          file: { ...rest, path: `${f.path} (original)`, ...(f.cardSha256 ? { sanitizedSha256: f.cardSha256 } : {}), sanitizedSize: f.size } as ManifestFile,
          objectId: String((f as { originalObjectId?: unknown }).originalObjectId),
          original: true,
        };
      }),
    ...good.objects.filter((o) => !byObject.has(o.id) && !byOriginal.has(o.id)).map((o) => ({ objectId: o.id })),
  ];
  const reportObject = (inner?.extra as { reportObject?: unknown } | undefined)?.reportObject;
  const custodyObject = (inner?.extra as { custodyObject?: unknown } | undefined)?.custodyObject;
  for (const e of entries) {
    const res: FileResult = {
      path: e.file?.path ?? (e.objectId === reportObject ? `(sealed report ${e.objectId})` : e.objectId === custodyObject ? `(custody record ${e.objectId})` : `(object ${e.objectId})`),
      ...(e.objectId ? { objectId: e.objectId } : {}),
      status: e.file?.status ?? 'stored',
      result: 'verified',
      targets: [],
    };
    if (e.objectId) {
      seen.add(e.objectId);
      const obj = good.objects.find((o) => o.id === e.objectId);
      for (const t of targets) {
        if (e.original && !originalsAllowed.has(t.name)) continue;
        const deep: DeepArgs | null =
          decodeFn && e.file && !e.original && e.file.format
            ? { decode: decodeFn, card: a.card ? () => cardDecode(a.card!, e.file!, decodeFn, cardPixels) : null }
            : null;
        const tr = await checkObject(t, batchId, e.objectId, obj, e.file, identities, inner !== undefined, essenceFn, deep);
        res.targets.push(tr);
      }
    }
    if (a.card && e.file && !e.original) {
      res.card = await checkCard(a.card, e.file);
    }
    res.result = worst([...res.targets.map((t) => t.result), ...(res.card ? [res.card.result] : [])]);
    for (const tr of res.targets) {
      for (const c of tr.checks) {
        if (c.result !== 'verified' && !soft(c)) {
          problems.push({ result: c.result, target: tr.target, path: res.path, ...(res.objectId ? { objectId: res.objectId } : {}), message: `${res.path} on ${tr.target}: ${c.check}: ${c.message ?? c.result}` });
        }
      }
    }
    if (res.card && res.card.result !== 'verified') problems.push({ result: res.card.result, path: res.path, message: `${res.path} on the card: ${res.card.message}` });
    (e.file && !e.original ? files : objects).push(res);
  }
  // Objects on a target that no manifest lists: not evidence of tampering by themselves, but named.
  for (const t of targets) {
    try {
      for await (const o of t.list(`${batchId}/`)) {
        const id = o.key.slice(batchId.length + 1);
        if (id !== 'manifest.json' && !seen.has(id)) {
          problems.push({ result: 'mismatch', target: t.name, objectId: id, message: `object ${o.key} on ${t.name} is not in the signed manifest` });
        }
      }
    } catch (err) {
      // The per-object checks above stand on their own; only the search for extra objects failed.
      notes.push(`could not list ${batchId}/ on ${t.name} to look for objects the manifest does not name: ${errText(err)}`);
    }
  }
  return { files, objects };
}
