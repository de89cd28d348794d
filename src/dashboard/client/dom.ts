/**
 * Small helpers both page scripts build their DOM with. Text goes in through textContent and
 * attribute values through setAttribute only: nothing here parses HTML, so data from the server
 * can never become markup.
 */
import type { TextTables } from '../wire.js';

/** Attribute values: `text` sets textContent, `className` the class; false, null and undefined leave the attribute out; true sets it empty. */
export type Attrs = Record<string, string | boolean | null | undefined>;
/** A child: a node, or a string (as text); falsy children are left out. */
export type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, children?: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'className') e.className = String(v);
      else e.setAttribute(k, v === true ? '' : v);
    }
  }
  for (const c of children ?? []) if (c) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  return e;
}

/** The element with this id; the page shell holds every id a script asks for. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e as T;
}

export function clear(node: Node): void {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/**
 * The text for `key` in `lang`, else in Dutch, else the key itself; `{name}` is replaced by
 * vars.name where given.
 */
export function translate(tables: TextTables | null, lang: string, key: string, vars?: Record<string, string | number>): string {
  let s = tables?.[lang]?.[key] || tables?.nl?.[key] || key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
  return s;
}

/** localStorage, where the browser allows it (not in some private modes). */
export function remembered(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export function remember(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* private mode: kept for this page only */
  }
}
