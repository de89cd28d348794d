/**
 * The station dashboard's script (bundled by `npm run build`, served as /app.js by
 * dashboard/server.ts; the shell it runs in is page.ts). It renders everything from the JSON
 * state (wire.ts) with textContent, never innerHTML with data; re-renders only the parts of a card
 * that changed and keeps keyboard focus across live updates; and announces state changes (card
 * in, may be removed, secured, problems) in the aria-live region. The token and the login prompt:
 * session.ts. Thumbnails are fetched with the token header and shown as blobs; the report and the
 * status JSON open in a new tab through a one-use ticket (a navigation cannot carry the header).
 */
import type { ErrorReply, SessionReply, StationCard, StationState, TextTables, TicketReply } from '../wire.js';
import { byId, el, remember, remembered, translate } from './dom.js';
import { readEvents } from './sse.js';
import { LoginNeeded, Session, showLoginPrompt } from './session.js';

const LANG_KEY = 'kluis-lang';
let texts: TextTables | null = null;
let lang = remembered(LANG_KEY) || 'nl';
let state: StationState | null = null;
/** Why the login prompt shows (its text key), or null when logged in. */
let login: string | null = null;
let connected = false;
/** Thumbnail address → blob URL ('' while it is being fetched). */
const thumbs: Record<string, string> = {};
/** What was last announced per card. */
const prev: Record<string, { state: string; problems: number; safe: boolean }> = {};
/** Per card, per part: the data it was last rendered from. */
let cache: Record<string, Record<string, string>> = {};
/** Buttons whose action is under way, by id. */
const busy: Record<string, boolean> = {};

const session = new Session({
  storageKey: 'kluis-token',
  acceptQuery: true,
  onLogin(why) {
    login = why;
    showLoginPrompt(T(why), ['cards', 'targets']);
    const c = byId('conn');
    c.textContent = '';
    c.className = 'conn';
  },
});

function T(key: string, vars?: Record<string, string | number>): string {
  return translate(texts, lang, key, vars);
}
const locale = (): string => (lang === 'nl' ? 'nl-NL' : 'en-GB');
function num(n: number, d: number): string {
  return new Intl.NumberFormat(locale(), { minimumFractionDigits: d, maximumFractionDigits: d }).format(n);
}
function bytes(n: number): string {
  if (n >= 1e9) return num(n / 1e9, 2) + ' GB';
  if (n >= 1e6) return num(n / 1e6, 1) + ' MB';
  if (n >= 1e3) return num(n / 1e3, 0) + ' kB';
  return num(n, 0) + ' B';
}
function duration(s: number | null | undefined): string {
  if (s === null || s === undefined) return T('unknown');
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = Math.floor(s % 60);
  const mm = (h > 0 && m < 10 ? '0' : '') + m;
  const ss = (r < 10 ? '0' : '') + r;
  return (h > 0 ? h + ':' : '') + mm + ':' + ss;
}
function when(iso: string | null | undefined): string {
  if (!iso) return T('never');
  return new Date(iso).toLocaleString(locale(), { dateStyle: 'short', timeStyle: 'medium' });
}
function cardName(c: StationCard): string {
  return c.card.label || c.card.root;
}
function announce(msg: string): void {
  const a = byId('announce');
  a.appendChild(el('p', { text: msg }));
  while (a.childNodes.length > 5) a.removeChild(a.firstChild!);
}
function showAlert(msg: string): void {
  const a = byId('alert');
  a.textContent = msg;
  a.hidden = !msg;
}
function headRow(keys: string[]): HTMLTableSectionElement {
  return el('thead', {}, [el('tr', {}, keys.map((k) => el('th', { scope: 'col', text: T(k) })))]);
}

function stateBanner(c: StationCard): HTMLElement {
  let detail: string | null = null;
  if (c.state === 'safe') {
    detail = T('state.safeDetail') + (c.phase !== 'secured' ? ' ' + T('state.processing') + '.' : '');
  } else if (c.state === 'secured') detail = T('state.securedDetail');
  else if (c.state === 'missing') detail = T('state.missingDetail', { n: c.remaining === undefined ? '?' : c.remaining });
  else if (c.state === 'partial') detail = T('state.partialDetail');
  return el('p', { className: 'state state-' + c.state, 'data-testid': 'state', 'data-state': c.state }, [T('state.' + c.state), detail ? el('small', { text: detail }) : null]);
}

function progressBlock(c: StationCard): HTMLElement | null {
  const p = c.progress;
  if (!p) return null;
  const pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 0;
  const label = T('reading') + ' ' + cardName(c);
  return el('div', { className: 'progress', 'data-testid': 'progress' }, [
    el('progress', { max: String(p.bytesTotal || 1), value: String(p.bytesDone), 'aria-label': label, 'aria-valuetext': pct + '%' }),
    el('p', { text: pct + '% · ' + T('bytesOf', { done: bytes(p.bytesDone), total: bytes(p.bytesTotal) }) + ' · ' + T('filesOf', { done: p.filesDone, total: p.filesTotal }) }),
    el('p', { text: T('rate') + ': ' + (p.rate === null ? T('unknown') : bytes(p.rate) + '/s') + ' · ' + T('timeLeft') + ': ' + duration(p.eta) }),
    el('p', { text: T('currentFile') + ': ' + p.path }),
  ]);
}

function problemsBlock(c: StationCard): HTMLElement | null {
  if (!c.problems.length) return null;
  const ul = el(
    'ul',
    {},
    c.problems.map((p) =>
      el('li', { 'data-testid': 'problem', 'data-code': p.code }, [
        el('strong', { text: p.path }), ' — ', el('code', { text: p.code }), ' ', p.message,
        p.hint ? el('div', { text: T('hint') + ': ' + p.hint }) : null,
      ]),
    ),
  );
  return el('div', { className: 'problems' }, [el('h4', { text: T('problems') }), ul]);
}

function filesTable(c: StationCard): HTMLElement {
  const body = el(
    'tbody',
    {},
    c.files.map((f) => {
      const removed = f.removed && f.removed.length
        ? el('ul', { className: 'removed' }, f.removed.map((r) => el('li', { text: r.what + ' (' + r.where + ', ' + bytes(r.bytes) + ')' })))
        : document.createTextNode(f.removed ? T('nothingRemoved') : '—');
      const tg = f.targets ? Object.entries(f.targets).map(([t, s]) => t + ': ' + T('del.' + s)).join('; ') : '—';
      const thumbUrl = '/thumb/' + encodeURIComponent(c.batchId) + '?path=' + encodeURIComponent(f.path);
      const prevCell = f.thumb
        ? el('img', { className: 'thumb', 'data-thumb': thumbUrl, src: thumbs[thumbUrl] || undefined, alt: T('preview') + ' ' + f.path })
        : document.createTextNode(T('noPreview'));
      const statusCell = el('td', {}, [el('span', { className: 'st-' + f.status, text: T('file.' + f.status) })]);
      if (f.error) statusCell.appendChild(el('div', {}, [el('code', { text: f.error.code }), ' ', f.error.message]));
      return el('tr', { 'data-path': f.path, 'data-status': f.status }, [
        el('th', { scope: 'row', className: 'path', text: f.path }), el('td', { text: T('class.' + f.class) + (f.format ? ' (' + f.format + ')' : '') }),
        statusCell, el('td', {}, [removed]), el('td', { text: tg }), el('td', {}, [prevCell]),
      ]);
    }),
  );
  return el('table', {}, [el('caption', { text: T('files') }), headRow(['path', 'class', 'status', 'removed', 'targetsCol', 'preview']), body]);
}

function deliveriesTable(c: StationCard): HTMLElement | null {
  if (!c.deliveries.length) return null;
  const body = el(
    'tbody',
    {},
    c.deliveries.map((d) => {
      const id = 'retry-' + c.batchId + '-' + d.object.replace(/[^A-Za-z0-9]/g, '_') + '-' + d.target;
      const btn = d.canRetry
        ? el('button', { type: 'button', id, 'data-action': 'retry', 'data-batch': c.batchId, 'data-object': d.object, 'data-target': d.target, disabled: busy[id] ? true : undefined, text: T('retry') })
        : null;
      return el('tr', {}, [
        el('th', { scope: 'row', className: 'path', text: d.label }), el('td', { text: d.target }),
        el('td', {}, [el('span', { className: 'st-' + d.state, text: T('del.' + d.state) })]),
        el('td', { text: String(d.attempts) }),
        el('td', {}, d.error ? [el('code', { text: d.error.code }), ' ', d.error.message] : ['—']),
        el('td', {}, btn ? [btn] : ['—']),
      ]);
    }),
  );
  return el('table', {}, [el('caption', { text: T('deliveries') }), headRow(['object', 'target', 'status', 'attempts', 'lastError', 'action']), body]);
}

function verifyBlock(c: StationCard): HTMLElement | null {
  const v = c.verify;
  if (!v) return null;
  let ok = 0;
  let bad = 0;
  let un = 0;
  for (const i of v.items) {
    if (i.result === 'ok') ok++;
    else if (i.result === 'unchecked') un++;
    else bad++;
  }
  const kids: HTMLElement[] = [el('p', { 'data-testid': 'verify-result', text: v.running ? T('verifyRunning') : T('verifyResult', { time: when(v.finishedAt), ok, bad, unchecked: un }) })];
  const wrong = v.items.filter((i) => i.result !== 'ok');
  if (wrong.length) kids.push(el('ul', {}, wrong.map((i) => el('li', { className: 'st-' + i.result, text: i.label + ' → ' + i.target + ': ' + T('verify.' + i.result) + (i.detail ? ' (' + i.detail + ')' : '') }))));
  return el('div', { className: 'verify' }, kids);
}

const PARTS = ['head', 'problems', 'files', 'deliveries', 'actions'] as const;
type Part = (typeof PARTS)[number];

function cardParts(c: StationCard): Record<Part, HTMLElement> {
  const vid = 'verify-' + c.batchId;
  const running = (c.verify && c.verify.running) || busy[vid];
  return {
    head: el('div', {}, [
      el('h3', { text: T('card') + ': ' + cardName(c) }),
      el('p', { className: 'meta', text: T('batch') + ' ' + c.batchId + ' · ' + T('started') + ' ' + when(c.createdAt) + ' · ' + c.counts.secured + '/' + c.counts.footage + ' ' + T('file.secured') }),
      stateBanner(c), progressBlock(c),
    ]),
    problems: el('div', {}, [problemsBlock(c)]),
    files: el('div', {}, [filesTable(c)]),
    deliveries: el('div', {}, [deliveriesTable(c)]),
    actions: el('div', {}, [
      el('div', { className: 'actions' }, [
        el('a', { className: 'button', href: '/batch/' + encodeURIComponent(c.batchId) + '/report', 'data-ticket': '1', target: '_blank', rel: 'noopener', text: T('openReport') }),
        el('a', { className: 'button', href: '/api/batch/' + encodeURIComponent(c.batchId), 'data-ticket': '1', target: '_blank', rel: 'noopener', text: T('statusJson') }),
        el('button', { type: 'button', id: vid, 'data-action': 'verify', 'data-batch': c.batchId, disabled: running ? true : undefined, text: running ? T('verifyRunning') : T('verify') }),
      ]),
      el('p', { className: 'note', text: T('verifyNote') }),
      verifyBlock(c),
    ]),
  };
}

function renderCards(s: StationState): void {
  const list = byId('cardlist');
  if (!s.cards.length) {
    list.replaceChildren(el('p', { 'data-testid': 'no-cards', text: T('noCards') }));
    cache = {};
    return;
  }
  const seen: Record<string, boolean> = {};
  const order: HTMLElement[] = [];
  for (const c of s.cards) {
    seen[c.batchId] = true;
    const sec = document.getElementById('card-' + c.batchId) ?? el('section', { className: 'card', id: 'card-' + c.batchId, 'aria-label': T('card') + ' ' + cardName(c) });
    const cached = (cache[c.batchId] ??= {});
    sec.setAttribute('data-state', c.state);
    const parts = cardParts(c);
    const keyed: Record<Part, string> = {
      head: JSON.stringify([c.state, c.progress, c.counts, c.card, c.remaining, c.phase]),
      problems: JSON.stringify(c.problems),
      files: JSON.stringify(c.files),
      deliveries: JSON.stringify([c.deliveries, busy]),
      actions: JSON.stringify([c.verify, busy]),
    };
    for (const k of PARTS) {
      const old = sec.querySelector(':scope > [data-part="' + k + '"]');
      if (old && cached[k] === keyed[k]) continue;
      parts[k].setAttribute('data-part', k);
      if (old) old.replaceWith(parts[k]);
      else sec.appendChild(parts[k]);
      cached[k] = keyed[k];
    }
    order.push(sec);
  }
  for (const n of Array.from(list.children)) if (!seen[(n.id || '').slice(5)]) list.removeChild(n);
  order.forEach((sec, i) => {
    if (list.children[i] !== sec) list.insertBefore(sec, list.children[i] || null);
  });
}

function renderTargets(s: StationState): void {
  const body = el(
    'tbody',
    {},
    s.targets.map((t) =>
      el('tr', { 'data-target': t.name }, [
        el('th', { scope: 'row', text: t.name + ' (' + t.type + ')' }),
        el('td', { className: t.reachable === 'no' ? 'st-failed' : t.reachable === 'yes' ? 'st-ok' : '', text: T('reach.' + t.reachable) }),
        el('td', { text: when(t.lastSuccess) }),
        el('td', {}, t.lastError ? [el('code', { text: t.lastError.code }), ' ', t.lastError.message, ' (' + when(t.lastError.at) + ')'] : ['—']),
        el('td', { text: T('policy.' + t.class) + ', ' + T(t.required ? 'required' : 'optional') + (t.refused ? ', ' + T('refusedCount', { n: t.refused }) : '') }),
        el('td', { text: String(t.outbox) }),
      ]),
    ),
  );
  const head = headRow(['target', 'reachable', 'lastSuccess', 'lastError', 'policy', 'outbox']);
  byId('targetlist').replaceChildren(el('table', {}, [el('caption', { text: T('station') + ' ' + s.station }), head, body]));
}

function remembers(c: StationCard): { state: string; problems: number; safe: boolean } {
  return { state: c.state, problems: c.problems.length, safe: !!c.safeToRemoveAt };
}

function announceChanges(s: StationState): void {
  for (const c of s.cards) {
    const p = prev[c.batchId];
    const name = cardName(c);
    const now = remembers(c);
    // "May be removed" is said once, when it becomes true, even if the snapshot that carried it
    // already shows the card secured (a fast card can pass "safe" between two pushes).
    if (p && !p.safe && now.safe && c.state !== 'failed') announce(T('announceSafe', { card: name }));
    if (p && p.state !== c.state) {
      if (c.state === 'secured') announce(T('announceSecured', { card: name }));
      else if (c.state === 'missing') announce(T('announceMissing', { card: name }));
      else if (c.state === 'reading') announce(T('announceReading', { card: name }));
    } else if (!p && (c.state === 'reading' || c.state === 'inserted')) {
      announce(T('announceReading', { card: name }));
    }
    const before = p ? p.problems : 0;
    if (c.problems.length > before) announce(T('announceProblem', { card: name, path: c.problems[c.problems.length - 1]!.path }));
    prev[c.batchId] = now;
  }
}

function loadThumbs(): void {
  for (const img of Array.from(document.querySelectorAll<HTMLImageElement>('img[data-thumb]:not([src])'))) {
    const u = img.getAttribute('data-thumb')!;
    if (thumbs[u] === '') continue; // being fetched
    thumbs[u] = '';
    session
      .fetch(u)
      .then((r) => {
        if (!r.ok) throw new Error(String(r.status));
        return r.blob();
      })
      .then((b) => {
        const blobUrl = URL.createObjectURL(b);
        thumbs[u] = blobUrl;
        for (const i of Array.from(document.querySelectorAll<HTMLImageElement>('img[data-thumb]'))) if (i.getAttribute('data-thumb') === u) i.src = blobUrl;
      })
      .catch(() => {
        delete thumbs[u];
      });
  }
}

function render(): void {
  if (!state || !texts) return;
  const focusId = document.activeElement && document.activeElement.id;
  renderCards(state);
  renderTargets(state);
  loadThumbs();
  if (focusId && document.activeElement && document.activeElement.id !== focusId) document.getElementById(focusId)?.focus();
}

function applyLang(): void {
  document.documentElement.lang = lang;
  document.title = T('title');
  const ids: Array<[string, string]> = [
    ['title', 'title'], ['skip', 'skip'], ['langlabel', 'language'], ['cards-h', 'cards'], ['targets-h', 'targets'],
    ['login-h', 'loginTitle'], ['login-label', 'loginField'], ['login-button', 'loginButton'],
  ];
  for (const [id, key] of ids) byId(id).textContent = T(key);
  if (login) byId('login-text').textContent = T(login);
  for (const l of ['nl', 'en']) byId('lang-' + l).setAttribute('aria-pressed', String(l === lang));
  byId('cardlist').replaceChildren();
  cache = {};
  setConn(connected);
  render();
}

function setConn(up: boolean): void {
  connected = up;
  if (login) return; // not connected because not logged in: the login prompt says so
  const c = byId('conn');
  c.textContent = texts ? T(up ? 'connected' : 'disconnected') : '';
  c.className = 'conn' + (up ? '' : ' down');
}

/** An action; rejects with the server's error message and code. */
async function post<T>(url: string, body: unknown): Promise<T> {
  const r = await session.post(url, body);
  const j = (await r.json()) as T & Partial<ErrorReply>;
  if (!r.ok) throw new Error((j && j.error && j.error.message + ' [' + j.error.code + ']') || String(r.status));
  return j;
}

function failed(e: unknown): void {
  if (!(e instanceof LoginNeeded)) showAlert(T('actionFailed', { msg: (e as Error).message }));
}

document.addEventListener('click', (ev) => {
  if (!(ev.target instanceof Element)) return;
  const a = ev.target.closest('a[data-ticket]');
  if (a) {
    // A new tab cannot send the token header: ask for a one-use ticket for this path.
    ev.preventDefault();
    post<TicketReply>('/api/ticket', { path: a.getAttribute('href') })
      .then((j) => window.open(j.url, '_blank', 'noopener'))
      .catch(failed);
    return;
  }
  const b = ev.target.closest('button');
  if (!b) return;
  if (b.dataset.lang) {
    lang = b.dataset.lang;
    remember(LANG_KEY, lang);
    applyLang();
    return;
  }
  const action = b.dataset.action;
  if (!action) return;
  const id = b.id;
  busy[id] = true;
  b.disabled = true;
  showAlert('');
  const req =
    action === 'retry'
      ? post('/api/retry', { batchId: b.dataset.batch, object: b.dataset.object, target: b.dataset.target }).then(() => announce(T('retryDone')))
      : post('/api/verify', { batchId: b.dataset.batch });
  req.catch(failed).then(() => {
    delete busy[id];
    cache = {};
    render();
  });
});

function onState(s: StationState): void {
  state = s;
  announceChanges(s);
  render();
}

/** The live stream: a fresh state on each push; reconnects two seconds after it breaks. */
function connect(): void {
  session
    .fetch('/api/events', { headers: { Accept: 'text/event-stream' } })
    .then((r) => {
      if (!r.ok || !r.body) throw new Error(String(r.status));
      setConn(true);
      return readEvents(r.body, (type, data) => {
        if (type === 'state') onState(JSON.parse(data) as StationState);
      });
    })
    .catch((e: unknown) => {
      if (e instanceof LoginNeeded) return;
      setConn(false);
      setTimeout(connect, 2000);
    });
}

async function start(): Promise<void> {
  texts = (await (await fetch('/api/texts', { credentials: 'omit' })).json()) as TextTables;
  if (!texts[lang]) lang = 'nl';
  applyLang();
  if (!session.hasToken) throw session.logout('loginNeeded');
  const sess = (await (await session.fetch('/api/session')).json()) as SessionReply;
  session.setCsrf(sess.csrf);
  const s = (await (await session.fetch('/api/state')).json()) as StationState;
  state = s;
  for (const c of s.cards) prev[c.batchId] = remembers(c);
  render();
  connect();
}

start().catch((e: unknown) => {
  if (!(e instanceof LoginNeeded)) showAlert(String(e));
});
