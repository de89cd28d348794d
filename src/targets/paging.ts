/**
 * Listings page by page (the optional `Target.listPage` capability), so a caller that walks a
 * bucket of many batches holds one page at a time, whatever the bucket's size.
 *
 * `listPages` uses a target's own `listPage` where it has one, and otherwise cuts the `list`
 * iterator into pages. The rest are the shared pieces of the folder-walking targets (fs, WebDAV):
 * their order is the walk's ("tree order": folder by folder, names sorted within a folder), and
 * their cursor is the last key of the page, checked like any key.
 */
import { KluisError } from '../errors.js';
import { validateKey } from './common.js';
import type { ListPage, ObjectInfo, Target } from './types.js';

export const DEFAULT_PAGE = 1000;
export const MAX_PAGE = 10_000;

/** The page size asked for, checked: 1..MAX_PAGE, default DEFAULT_PAGE. */
export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new KluisError('E_TARGET_PAGE', `a listing page holds 1 to ${MAX_PAGE} objects, not ${limit}`, { hint: 'this is a bug in the caller' });
  }
  return limit;
}

/** Pages of `list(prefix)`: the target's listPage where it has one, else the iterator in pieces. */
export async function* listPages(t: Target, prefix: string, limit?: number): AsyncGenerator<ObjectInfo[]> {
  const n = pageLimit(limit);
  if (typeof t.listPage === 'function') {
    let cursor: string | undefined;
    do {
      const page: ListPage = await t.listPage(prefix, cursor, n);
      if (page.objects.length > 0) yield page.objects;
      if (page.cursor !== undefined && page.cursor === cursor) {
        throw new KluisError('E_TARGET_IO', `target ${t.name}: the listing does not move on (the same cursor twice)`, { hint: 'this is a bug in the target' });
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
    return;
  }
  let page: ObjectInfo[] = [];
  for await (const o of t.list(prefix)) {
    page.push(o);
    if (page.length >= n) {
      yield page;
      page = [];
    }
  }
  if (page.length > 0) yield page;
}

/** The cursor of a folder-walking target as key segments (it is the last key of a page). */
export function treeCursor(cursor: string | undefined): string[] | undefined {
  if (cursor === undefined) return undefined;
  try {
    validateKey(cursor);
  } catch (err) {
    throw new KluisError('E_TARGET_PAGE', `'${cursor}' is not a listing cursor of this target`, { hint: 'pass back the cursor of the previous page unchanged', cause: err });
  }
  return cursor.split('/');
}

/**
 * Where a folder entry stands against the cursor in tree order: 'before' (skip it and all below
 * it), 'on-path' (a folder holding the cursor: walk into it, still skipping), 'after' (take it
 * and everything below it). `segments` is the entry's key split on '/'.
 */
export function againstCursor(segments: string[], after: string[] | undefined, isFolder: boolean): 'before' | 'on-path' | 'after' {
  if (!after) return 'after';
  const n = Math.min(segments.length, after.length);
  for (let i = 0; i < n; i++) {
    const a = segments[i]!;
    const b = after[i]!;
    if (a < b) return 'before';
    if (a > b) return 'after';
  }
  // Equal over the shorter length.
  if (segments.length < after.length) return isFolder ? 'on-path' : 'before';
  if (segments.length === after.length) return isFolder ? 'after' : 'before'; // the cursor itself is done
  return 'after';
}

/** Takes up to `limit` objects from a tree-order walk; the cursor is set when more may follow. */
export async function takePage(walk: AsyncGenerator<ObjectInfo>, limit: number): Promise<ListPage> {
  const objects: ObjectInfo[] = [];
  let more = false;
  for await (const o of walk) {
    if (objects.length === limit) {
      more = true;
      break; // ends the walk (the generator's finally runs)
    }
    objects.push(o);
  }
  const last = objects[objects.length - 1];
  return more && last ? { objects, cursor: last.key } : { objects };
}
