/**
 * A target opened for reading only (the evidence desk): every read passes through to the
 * target; put and delete are refused with E_TARGET_READONLY before any request is made, so a
 * desk can never add, replace or remove evidence, whatever its code path.
 */
import { KluisError } from '../errors.js';
import type { Target } from './types.js';

export function readOnly(t: Target): Target {
  const refuse = (what: string, key: string): Promise<never> =>
    Promise.reject(
      new KluisError('E_TARGET_READONLY', `target ${t.name} is open read-only here; refusing to ${what} ${key}`, {
        hint: 'an evidence desk only reads targets; stations write them',
        details: { retryable: false },
      }),
    );
  const ro: Target = {
    name: t.name,
    type: t.type,
    capabilities: t.capabilities,
    put: (key) => refuse('write', key),
    delete: (key) => refuse('delete', key),
    head: (key) => t.head(key),
    get: (key) => t.get(key),
    list: (prefix) => t.list(prefix),
    probe: () => t.probe(),
    close: () => t.close(),
  };
  if (typeof t.listPage === 'function') {
    const listPage = t.listPage.bind(t);
    ro.listPage = (prefix, cursor, limit) => listPage(prefix, cursor, limit);
  }
  return ro;
}
