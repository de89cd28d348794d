/**
 * The evidence desk's script (bundled by `npm run build`, served as /app.js by
 * dashboard/desk/server.ts; the shell it runs in is desk/page.ts). Search the batches the targets
 * hold, show one batch (files, what was removed, its custody record), re-check it, export it.
 * Everything is rendered with textContent, never innerHTML with data. The token and the login
 * prompt: session.ts.
 */
import type { DeskBatch, DeskCatalog, DeskExport, DeskInfo, DeskVerifyRun, ErrorReply, SessionReply, TextTables } from '../wire.js';
import { byId, clear, el, remember, remembered, translate } from './dom.js';
import { LoginNeeded, Session, showLoginPrompt } from './session.js';

const LANG_KEY = 'kluis-desk-lang';
let texts: TextTables | null = null;
let lang = remembered(LANG_KEY) || 'nl';
/** The batch shown, with its last verification and export. */
let current: { details: DeskBatch; verify: DeskVerifyRun | null; exported: DeskExport | null } | null = null;
let lastList: DeskCatalog | null = null;

const session = new Session({
  storageKey: 'kluis-desk-token',
  acceptQuery: false,
  onLogin: (why) => showLoginPrompt(T(why), ['search-section', 'results', 'batch']),
});

function T(key: string, vars?: Record<string, string | number>): string {
  return translate(texts, lang, key, vars);
}
function when(iso: string | null | undefined): string {
  if (!iso) return '?';
  const d = new Date(iso);
  return isNaN(d.getTime()) ? iso : d.toLocaleString(lang === 'nl' ? 'nl-NL' : 'en-GB');
}
function bytes(n: number): string {
  if (n < 1024) return n + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' kB';
  return (n / 1048576).toFixed(1) + ' MB';
}
function showAlert(err: unknown): void {
  const a = byId('alert');
  clear(a);
  if (!err || err instanceof LoginNeeded) {
    a.hidden = true;
    return;
  }
  const e = err as { message?: string; code?: string; hint?: string };
  a.appendChild(el('p', { text: T('error') + ': ' + e.message + (e.code ? ' [' + e.code + ']' : '') }));
  if (e.hint) a.appendChild(el('p', { text: T('hint') + ': ' + e.hint }));
  a.hidden = false;
}

/** A request's JSON answer; rejects with the server's error ({code, message, hint}) when it is not OK. */
async function json<T>(r: Promise<Response>): Promise<T> {
  const res = await r;
  const b = (await res.json()) as T & Partial<ErrorReply>;
  if (!res.ok) throw (b && b.error) || { message: 'HTTP ' + res.status };
  return b;
}
const getJson = <T>(url: string): Promise<T> => json<T>(session.fetch(url));
const postJson = <T>(url: string, body: unknown): Promise<T> => json<T>(session.post(url, body));

function applyTexts(): void {
  document.documentElement.lang = lang;
  document.title = T('title');
  for (const n of Array.from(document.querySelectorAll('[data-t]'))) n.textContent = T(n.getAttribute('data-t')!);
  for (const b of Array.from(document.querySelectorAll('[data-lang]'))) b.setAttribute('aria-pressed', b.getAttribute('data-lang') === lang ? 'true' : 'false');
  if (lastList) renderList(lastList);
  if (current) renderBatch(current.details, current.verify, current.exported);
}

function query(fresh: boolean): string {
  const f = byId<HTMLFormElement>('search');
  const p = new URLSearchParams();
  for (const k of ['case', 'station', 'operator', 'from', 'to']) {
    const v = (f.elements.namedItem(k) as HTMLInputElement | HTMLSelectElement).value.trim();
    if (v) p.set(k, v);
  }
  if (fresh) p.set('fresh', '1');
  return p.toString();
}
function search(fresh: boolean): Promise<void> {
  showAlert(null);
  byId('summary').textContent = T('scanning');
  return getJson<DeskCatalog>('/api/catalog?' + query(fresh))
    .then((res) => {
      lastList = res;
      renderList(res);
    })
    .catch(showAlert);
}

function headRow(keys: string[]): HTMLTableRowElement {
  return el('tr', null, keys.map((k) => el('th', { scope: 'col', text: k ? T(k) : '' })));
}

function renderList(res: DeskCatalog): void {
  byId('summary').textContent = T('found', { n: res.batches.length, total: res.total, at: when(res.scannedAt) });
  const list = byId('list');
  clear(list);
  if (res.batches.length === 0) {
    list.appendChild(el('p', { text: T('none'), 'data-testid': 'no-batches' }));
    return;
  }
  const body = el('tbody');
  for (const b of res.batches) {
    const btn = el('button', { type: 'button', text: T('open'), 'data-testid': 'open-' + b.batchId, 'aria-label': T('open') + ' ' + b.batchId });
    btn.addEventListener('click', () => void openBatch(b.batchId));
    body.appendChild(
      el('tr', { 'data-testid': 'row', 'data-batch': b.batchId }, [
        el('td', { text: when(b.startedAt) }),
        el('td', null, [el('code', { text: b.batchId })]),
        el('td', { text: b.station }),
        el('td', { text: b.case || '-', 'data-testid': 'row-case' }),
        el('td', { text: b.operator || '-' }),
        el('td', { text: String(b.files) }),
        el('td', { text: T('status-' + b.status), className: 'st-' + (b.status === 'complete' ? 'ok' : 'failed') }),
        el('td', { text: b.targets.join(', ') }),
        el('td', null, [btn]),
      ]),
    );
  }
  list.appendChild(el('table', null, [el('thead', null, [headRow(['started', 'batch', 'station', 'case', 'operator', 'files', 'status', 'targets', ''])]), body]));
}

function openBatch(id: string): Promise<void> {
  showAlert(null);
  return getJson<DeskBatch>('/api/batch/' + encodeURIComponent(id))
    .then((d) => {
      current = { details: d, verify: null, exported: null };
      renderBatch(d, null, null);
      const sec = byId('batch');
      sec.hidden = false;
      sec.focus();
    })
    .catch(showAlert);
}

/** A definition list of [term, value, test id]; empty values are left out. */
function facts(pairs: Array<[string, string | number | null | undefined, string?]>): HTMLElement {
  const dl = el('dl', { className: 'facts' });
  for (const [term, value, testId] of pairs) {
    if (value === undefined || value === null || value === '') continue;
    dl.appendChild(el('dt', { text: term }));
    dl.appendChild(el('dd', { text: String(value), 'data-testid': testId || null }));
  }
  return dl;
}

function custodySection(c: DeskBatch['custody']): HTMLElement {
  const cs = el('section', { 'aria-labelledby': 'custody-h', 'data-testid': 'custody' }, [el('h3', { id: 'custody-h', text: T('custody') })]);
  cs.appendChild(el('p', null, [el('span', { className: 'result st-' + c.result, text: T('result-' + c.result), 'data-testid': 'custody-result' })]));
  if (c.code || c.message) cs.appendChild(el('p', { className: 'problems', text: (c.message || '') + (c.code ? ' [' + c.code + ']' : '') }));
  const r = c.record;
  if (!r) return cs;
  cs.appendChild(el('p', { text: T('custodyLines', { n: r.lines, station: r.station.name, seq: r.audit.seq }) }));
  cs.appendChild(
    facts([
      [T('operator'), r.operator, 'c-operator'], [T('case'), r.case, 'c-case'],
      [T('card'), [r.card.label, r.card.uuid, r.card.fingerprint].filter(Boolean).join(' · '), 'c-card'],
      [T('cardSeen'), when(r.times.cardSeen), 'c-seen'], [T('safeToRemove'), when(r.times.safeToRemove), 'c-safe'],
      [T('lastSealed'), when(r.times.lastSealed)], [T('recorded'), when(r.recordedAt)],
    ]),
  );
  if (r.deliveries.length) {
    const drows = el('tbody');
    for (const x of r.deliveries) drows.appendChild(el('tr', null, [el('td', null, [el('code', { text: x.object })]), el('td', { text: x.target }), el('td', { text: when(x.delivered) }), el('td', { text: when(x.verified) })]));
    cs.appendChild(el('table', null, [el('caption', { text: T('deliveries') }), el('thead', null, [headRow(['object', 'targets', 'delivered', 'verifiedAt'])]), drows]));
  }
  if (c.lines) {
    const lrows = el('tbody');
    for (const l of c.lines) lrows.appendChild(el('tr', null, [el('td', { text: String(l.seq) }), el('td', { text: when(l.time) }), el('td', { text: l.type }), el('td', { className: 'path', text: l.file || l.object || '' }), el('td', { text: l.target || '' })]));
    cs.appendChild(el('details', { className: 'lines' }, [el('summary', { text: T('lines') + ' (' + c.lines.length + ')' }), el('table', null, [lrows])]));
  }
  return cs;
}

function exportForm(d: DeskBatch, exported: DeskExport | null): HTMLElement {
  const form = el('form', { className: 'export', 'data-testid': 'export-form' });
  const input = el('input', { name: 'out', 'data-testid': 'export-out', autocomplete: 'off' });
  form.appendChild(el('h3', { text: T('export') }));
  form.appendChild(el('p', { className: 'note', text: T('exportHelp') }));
  form.appendChild(el('label', null, [el('span', { text: T('exportFolder') }), input]));
  form.appendChild(el('div', { className: 'actions' }, [el('button', { type: 'submit', text: T('export'), 'data-testid': 'export' })]));
  const eout = el('p', { role: 'status', 'data-testid': 'export-out-msg' });
  if (exported) eout.textContent = T('exportDone', { files: exported.files, out: exported.out });
  form.appendChild(eout);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showAlert(null);
    postJson<DeskExport>('/api/export', { batchId: d.batchId, out: input.value.trim() })
      .then((r) => {
        if (current) current.exported = r;
        eout.textContent = T('exportDone', { files: r.files, out: r.out });
      })
      .catch(showAlert);
  });
  return form;
}

function renderBatch(d: DeskBatch, verify: DeskVerifyRun | null, exported: DeskExport | null): void {
  byId('batch-h').textContent = T('details', { id: d.batchId });
  const body = byId('batch-body');
  clear(body);
  const card = [d.card.label, d.card.uuid, d.card.fingerprint && d.card.fingerprint.slice(0, 16) + '…'].filter(Boolean).join(' · ');
  body.appendChild(
    facts([
      [T('station'), d.station.name, 'd-station'], [T('case'), d.case, 'd-case'], [T('operator'), d.operator, 'd-operator'],
      [T('card'), card, 'd-card'], [T('started'), when(d.startedAt)], [T('targets'), d.target],
    ]),
  );
  // Files with what was removed.
  const rows = el('tbody');
  for (const f of d.files) {
    const removed = f.removed && f.removed.length
      ? el('ul', { className: 'removed' }, f.removed.map((r) => el('li', { text: r.what + ' (' + r.where + ', ' + bytes(r.bytes) + ')' })))
      : document.createTextNode(f.class === 'footage' ? T('nothingRemoved') : '-');
    rows.appendChild(
      el('tr', { 'data-testid': 'file' }, [
        el('td', { className: 'path', text: f.path }), el('td', { text: f.class }), el('td', { text: f.status + (f.error ? ' (' + f.error.code + ')' : ''), className: 'st-' + f.status }),
        el('td', { text: bytes(f.size) }), el('td', null, [el('code', { text: f.cardSha256 || '-' })]), el('td', null, [removed]),
      ]),
    );
  }
  body.appendChild(el('table', null, [el('caption', { text: T('files') }), el('thead', null, [headRow(['path', 'class', 'status', 'size', 'cardHash', 'removed'])]), rows]));
  body.appendChild(custodySection(d.custody));
  // Verify.
  const vb = el('button', { type: 'button', text: T('verify'), 'data-testid': 'verify' });
  const vout = el('div', { role: 'status', 'data-testid': 'verify-out' });
  vb.addEventListener('click', () => startVerify(d.batchId));
  body.appendChild(el('div', { className: 'actions' }, [vb]));
  body.appendChild(vout);
  if (verify) renderVerify(vout, verify);
  body.appendChild(exportForm(d, exported));
}

function renderVerify(node: HTMLElement, run: DeskVerifyRun): void {
  clear(node);
  if (run.running) {
    node.appendChild(el('p', { text: T('verifying') }));
    return;
  }
  if (run.error) {
    node.appendChild(el('p', { className: 'problems', text: run.error.message + ' [' + run.error.code + ']' }));
    return;
  }
  const rep = run.report!;
  node.appendChild(el('p', null, [el('span', { className: 'result st-' + rep.result, text: T('verifyResult', { result: T('result-' + rep.result) }), 'data-testid': 'verify-result', 'data-result': rep.result })]));
  if (rep.problems.length) {
    node.appendChild(el('h4', { text: T('problems') }));
    node.appendChild(
      el('ul', { className: 'problems', 'data-testid': 'verify-problems' }, rep.problems.map((p) =>
        el('li', null, [p.message + (p.code ? ' [' + p.code + ']' : ''), p.hint ? el('br') : null, p.hint ? T('hint') + ': ' + p.hint : null]),
      )),
    );
  }
}

function startVerify(id: string): void {
  if (!current) return;
  showAlert(null);
  current.verify = { running: true };
  renderBatch(current.details, current.verify, current.exported);
  postJson('/api/verify', { batchId: id })
    .then(() => {
      const poll = (): void => {
        getJson<DeskVerifyRun>('/api/verify/' + encodeURIComponent(id))
          .then((run) => {
            if (!current || current.details.batchId !== id) return;
            current.verify = run;
            renderVerify(document.querySelector<HTMLElement>('[data-testid="verify-out"]')!, run);
            if (run.running) setTimeout(poll, 500);
          })
          .catch(showAlert);
      };
      poll();
    })
    .catch(showAlert);
}

byId('search').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void search(false);
});
byId('rescan').addEventListener('click', () => void search(true));
for (const b of Array.from(document.querySelectorAll('[data-lang]'))) {
  b.addEventListener('click', () => {
    lang = b.getAttribute('data-lang')!;
    remember(LANG_KEY, lang);
    applyTexts();
  });
}

async function start(): Promise<void> {
  texts = (await (await fetch('/api/texts', { credentials: 'omit' })).json()) as TextTables;
  applyTexts();
  if (!session.hasToken) throw session.logout('loginNeeded');
  const [sess, info] = await Promise.all([getJson<SessionReply>('/api/session'), getJson<DeskInfo>('/api/info')]);
  session.setCsrf(sess.csrf);
  const sel = document.querySelector('select[name="station"]')!;
  for (const s of info.stations) sel.appendChild(el('option', { value: s.name, text: s.name }));
  await search(false);
}

start().catch(showAlert);
