/**
 * The dashboard page: one HTML shell, one stylesheet and one script, all served by the
 * dashboard itself (no external asset, no inline script or style, so the CSP can forbid both).
 * The script renders everything from the JSON state with textContent (never innerHTML with
 * data), keeps keyboard focus across live updates, and announces state changes (card in,
 * safe to remove, secured, problems) in an aria-live region. Texts come from i18n.ts.
 *
 * The token: the address `kluis serve` prints carries it in the fragment (`#token=…`, never
 * sent to a server). The script moves it to sessionStorage (per origin, so per port: no other
 * local service can read it), takes it out of the address bar, and sends it as an
 * `Authorization: Bearer` header on every request: state, the live stream (read with fetch,
 * since EventSource cannot send a header), thumbnails (fetched, shown as blobs) and actions.
 * The report and the status JSON open in a new tab through a one-use ticket. When there is no
 * token, or the server refuses it (the dashboard was restarted), the page says so and offers a
 * field for the new address; opening the new address in the same tab also logs in.
 */
import { TEXTS, DEFAULT_LANG } from './i18n.js';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function pageHtml(): string {
  const nl = TEXTS[DEFAULT_LANG];
  return `<!DOCTYPE html>
<html lang="${DEFAULT_LANG}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(nl.title)}</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<a class="skip" href="#cards" id="skip">${esc(nl.skip)}</a>
<header>
  <h1 id="title">${esc(nl.title)}</h1>
  <div class="bar">
    <p id="conn" class="conn" role="status"></p>
    <div role="group" aria-labelledby="langlabel" class="lang">
      <span id="langlabel">${esc(nl.language)}</span>
      <button type="button" id="lang-nl" data-lang="nl" aria-pressed="true">Nederlands</button>
      <button type="button" id="lang-en" data-lang="en" aria-pressed="false">English</button>
    </div>
  </div>
</header>
<div id="announce" class="sr-only" aria-live="polite" aria-atomic="false"></div>
<div id="alert" class="alert" role="alert" hidden></div>
<main>
  <noscript><p>${esc(TEXTS.nl.noScript)} / ${esc(TEXTS.en.noScript)}</p></noscript>
  <section id="login" aria-labelledby="login-h" data-testid="login" hidden>
    <h2 id="login-h">${esc(nl.loginTitle)}</h2>
    <p id="login-text" data-testid="login-text"></p>
    <form id="login-form" class="login">
      <label for="login-input" id="login-label">${esc(nl.loginField)}</label>
      <input id="login-input" type="password" autocomplete="off" spellcheck="false">
      <button type="submit" id="login-button">${esc(nl.loginButton)}</button>
    </form>
  </section>
  <section id="cards" aria-labelledby="cards-h" tabindex="-1"><h2 id="cards-h">${esc(nl.cards)}</h2><div id="cardlist"></div></section>
  <section id="targets" aria-labelledby="targets-h"><h2 id="targets-h">${esc(nl.targets)}</h2><div id="targetlist"></div></section>
</main>
</body>
</html>
`;
}

export const PAGE_CSS = `
:root { --fg:#000; --bg:#fff; --muted:#333; --line:#000; --focus:#0040ff; --ok:#005a1e; --warn:#ffd400; --bad:#a30000; --info:#003a8c; }
* { box-sizing: border-box; }
html { font-size: 20px; }
body { margin: 0; font-family: system-ui, "DejaVu Sans", Arial, sans-serif; color: var(--fg); background: var(--bg); line-height: 1.4; }
header, main { padding: 0.6rem 1rem; max-width: 80rem; margin: 0 auto; }
header { border-bottom: 3px solid var(--line); }
h1 { font-size: 1.6rem; margin: 0.2rem 0; }
h2 { font-size: 1.4rem; margin: 1.2rem 0 0.5rem; }
h3 { font-size: 1.2rem; margin: 1rem 0 0.4rem; }
.bar { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; justify-content: space-between; }
.conn { margin: 0; font-weight: bold; }
.conn.down { color: var(--bad); }
button, a.button { font: inherit; font-size: 1rem; padding: 0.45rem 0.9rem; border: 3px solid var(--fg); background: var(--bg); color: var(--fg); border-radius: 0.3rem; cursor: pointer; text-decoration: none; display: inline-block; }
button[aria-pressed="true"] { background: var(--fg); color: var(--bg); }
button:disabled { opacity: 0.6; cursor: default; }
:focus-visible { outline: 5px solid var(--focus); outline-offset: 3px; }
.skip { position: absolute; left: -100rem; }
.skip:focus { left: 1rem; top: 1rem; background: var(--bg); padding: 0.5rem; z-index: 2; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.alert { border: 4px solid var(--bad); padding: 0.6rem; margin: 0.6rem 1rem; font-weight: bold; }
.login { display: flex; flex-wrap: wrap; gap: 0.6rem; align-items: center; }
.login input { font: inherit; font-size: 1rem; padding: 0.4rem; border: 3px solid var(--fg); min-width: 20rem; }
.card { border: 3px solid var(--line); border-radius: 0.4rem; padding: 0.8rem 1rem; margin: 0 0 1.2rem; }
.card h3 { margin-top: 0; }
.state { font-size: 2rem; font-weight: 800; padding: 0.6rem 1rem; margin: 0.4rem 0; border-radius: 0.3rem; border: 3px solid var(--fg); }
.state small { display: block; font-size: 1rem; font-weight: normal; }
.state-reading, .state-inserted { background: var(--warn); color: #000; }
.state-safe { background: var(--ok); color: #fff; font-size: 2.6rem; }
.state-secured { background: var(--info); color: #fff; }
.state-missing, .state-failed, .state-partial { background: var(--bad); color: #fff; }
.state-waiting { background: #e6e6e6; color: #000; }
.meta { margin: 0.2rem 0; color: var(--muted); }
progress { width: 100%; height: 1.6rem; }
.progress p { margin: 0.2rem 0; font-size: 1.1rem; }
.problems { border-left: 8px solid var(--bad); padding-left: 0.8rem; }
.problems li { margin-bottom: 0.5rem; }
code { font-size: 0.95em; background: #eee; padding: 0 0.2rem; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 0.4rem 0 0.8rem; }
caption { text-align: left; font-weight: bold; font-size: 1.1rem; padding: 0.2rem 0; }
th, td { border: 2px solid var(--line); padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
thead th { background: #000; color: #fff; }
td.path { overflow-wrap: anywhere; }
img.thumb { max-width: 160px; max-height: 120px; display: block; }
.st-failed, .st-rejected, .st-mismatch, .st-missing, .st-refused { color: var(--bad); font-weight: bold; }
.st-secured, .st-verified, .st-ok { color: var(--ok); font-weight: bold; }
.actions { display: flex; flex-wrap: wrap; gap: 0.6rem; margin: 0.6rem 0; }
.note { font-size: 0.9rem; color: var(--muted); max-width: 60rem; }
ul.removed { margin: 0; padding-left: 1.1rem; font-size: 0.9rem; overflow-wrap: anywhere; }
@media (prefers-color-scheme: dark) {
  :root { --fg:#fff; --bg:#000; --muted:#ddd; --line:#fff; --focus:#7fb0ff; --ok:#00853a; --info:#2f6fd6; }
  thead th { background: #fff; color: #000; }
  code { background: #222; }
  .state-waiting { background: #333; color: #fff; }
}
`;

/*
 * The browser script. Plain ES2020, no framework. Written without template literals so it can
 * live in this TypeScript string unchanged.
 */
export const PAGE_JS = String.raw`
'use strict';
(function () {
  var TOKEN_KEY = 'kluis-token';
  var token = null;
  var csrf = null;
  var login = null;
  var thumbs = {};
  var texts = null;
  var lang = 'nl';
  try { lang = localStorage.getItem('kluis-lang') || 'nl'; } catch (e) { /* private mode */ }
  var state = null;
  var prev = {};
  var cache = {};
  var busy = {};

  function T(key, vars) {
    var s = (texts && texts[lang] && texts[lang][key]) || (texts && texts.nl[key]) || key;
    if (vars) s = s.replace(/\{(\w+)\}/g, function (m, k) { return k in vars ? String(vars[k]) : m; });
    return s;
  }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (attrs[k] === undefined || attrs[k] === null || attrs[k] === false) continue;
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'className') e.className = attrs[k];
      else e.setAttribute(k, attrs[k] === true ? '' : attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  var locale = function () { return lang === 'nl' ? 'nl-NL' : 'en-GB'; };
  function num(n, d) { return new Intl.NumberFormat(locale(), { minimumFractionDigits: d, maximumFractionDigits: d }).format(n); }
  function bytes(n) {
    if (n >= 1e9) return num(n / 1e9, 2) + ' GB';
    if (n >= 1e6) return num(n / 1e6, 1) + ' MB';
    if (n >= 1e3) return num(n / 1e3, 0) + ' kB';
    return num(n, 0) + ' B';
  }
  function duration(s) {
    if (s === null || s === undefined) return T('unknown');
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = Math.floor(s % 60);
    var mm = (h > 0 && m < 10 ? '0' : '') + m, ss = (r < 10 ? '0' : '') + r;
    return (h > 0 ? h + ':' : '') + mm + ':' + ss;
  }
  function when(iso) {
    if (!iso) return T('never');
    var d = new Date(iso);
    return d.toLocaleString(locale(), { dateStyle: 'short', timeStyle: 'medium' });
  }
  function cardName(c) { return c.card.label || c.card.root; }
  function announce(msg) {
    var a = document.getElementById('announce');
    a.appendChild(el('p', { text: msg }));
    while (a.childNodes.length > 5) a.removeChild(a.firstChild);
  }
  function showAlert(msg) {
    var a = document.getElementById('alert');
    a.textContent = msg; a.hidden = !msg;
  }

  function stateBanner(c) {
    var key = 'state.' + c.state, detail = null;
    if (c.state === 'safe') {
      detail = T('state.safeDetail') + (c.phase !== 'secured' ? ' ' + T('state.processing') + '.' : '');
    } else if (c.state === 'secured') detail = T('state.securedDetail');
    else if (c.state === 'missing') detail = T('state.missingDetail', { n: c.remaining === undefined ? '?' : c.remaining });
    else if (c.state === 'partial') detail = T('state.partialDetail');
    var kids = [T(key)];
    if (detail) kids.push(el('small', { text: detail }));
    return el('p', { className: 'state state-' + c.state, 'data-testid': 'state', 'data-state': c.state }, kids);
  }

  function progressBlock(c) {
    var p = c.progress; if (!p) return null;
    var pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 0;
    var label = T('reading') + ' ' + cardName(c);
    return el('div', { className: 'progress', 'data-testid': 'progress' }, [
      el('progress', { max: String(p.bytesTotal || 1), value: String(p.bytesDone), 'aria-label': label, 'aria-valuetext': pct + '%' }),
      el('p', { text: pct + '% · ' + T('bytesOf', { done: bytes(p.bytesDone), total: bytes(p.bytesTotal) }) + ' · ' + T('filesOf', { done: p.filesDone, total: p.filesTotal }) }),
      el('p', { text: T('rate') + ': ' + (p.rate === null ? T('unknown') : bytes(p.rate) + '/s') + ' · ' + T('timeLeft') + ': ' + duration(p.eta) }),
      el('p', { text: T('currentFile') + ': ' + p.path })
    ]);
  }

  function problemsBlock(c) {
    if (!c.problems.length) return null;
    var ul = el('ul', {}, c.problems.map(function (p) {
      return el('li', { 'data-testid': 'problem', 'data-code': p.code }, [
        el('strong', { text: p.path }), ' — ', el('code', { text: p.code }), ' ', p.message,
        p.hint ? el('div', { text: T('hint') + ': ' + p.hint }) : null
      ]);
    }));
    return el('div', { className: 'problems' }, [el('h4', { text: T('problems') }), ul]);
  }

  function filesTable(c) {
    var head = el('thead', {}, [el('tr', {}, ['path', 'class', 'status', 'removed', 'targetsCol', 'preview'].map(function (k) { return el('th', { scope: 'col', text: T(k) }); }))]);
    var body = el('tbody', {}, c.files.map(function (f) {
      var removed = f.removed && f.removed.length
        ? el('ul', { className: 'removed' }, f.removed.map(function (r) { return el('li', { text: r.what + ' (' + r.where + ', ' + bytes(r.bytes) + ')' }); }))
        : document.createTextNode(f.removed ? T('nothingRemoved') : '—');
      var tg = f.targets ? Object.keys(f.targets).map(function (t) { return t + ': ' + T('del.' + f.targets[t]); }).join('; ') : '—';
      var thumbUrl = '/thumb/' + encodeURIComponent(c.batchId) + '?path=' + encodeURIComponent(f.path);
      var prevCell = f.thumb
        ? el('img', { className: 'thumb', 'data-thumb': thumbUrl, src: thumbs[thumbUrl] || undefined, alt: T('preview') + ' ' + f.path })
        : document.createTextNode(T('noPreview'));
      var status = el('span', { className: 'st-' + f.status, text: T('file.' + f.status) });
      var statusCell = el('td', {}, [status]);
      if (f.error) statusCell.appendChild(el('div', {}, [el('code', { text: f.error.code }), ' ', f.error.message]));
      return el('tr', { 'data-path': f.path, 'data-status': f.status }, [
        el('th', { scope: 'row', className: 'path', text: f.path }), el('td', { text: T('class.' + f.class) + (f.format ? ' (' + f.format + ')' : '') }),
        statusCell, el('td', {}, [removed]), el('td', { text: tg }), el('td', {}, [prevCell])
      ]);
    }));
    return el('table', {}, [el('caption', { text: T('files') }), head, body]);
  }

  function deliveriesTable(c) {
    if (!c.deliveries.length) return null;
    var head = el('thead', {}, [el('tr', {}, ['object', 'target', 'status', 'attempts', 'lastError', 'action'].map(function (k) { return el('th', { scope: 'col', text: T(k) }); }))]);
    var body = el('tbody', {}, c.deliveries.map(function (d) {
      var id = 'retry-' + c.batchId + '-' + d.object.replace(/[^A-Za-z0-9]/g, '_') + '-' + d.target;
      var btn = d.canRetry ? el('button', { type: 'button', id: id, 'data-action': 'retry', 'data-batch': c.batchId, 'data-object': d.object, 'data-target': d.target, disabled: busy[id] ? true : undefined, text: T('retry') }) : null;
      return el('tr', {}, [
        el('th', { scope: 'row', className: 'path', text: d.label }), el('td', { text: d.target }),
        el('td', {}, [el('span', { className: 'st-' + d.state, text: T('del.' + d.state) })]),
        el('td', { text: String(d.attempts) }),
        el('td', {}, d.error ? [el('code', { text: d.error.code }), ' ', d.error.message] : ['—']),
        el('td', {}, btn ? [btn] : ['—'])
      ]);
    }));
    return el('table', {}, [el('caption', { text: T('deliveries') }), head, body]);
  }

  function verifyBlock(c) {
    var v = c.verify; if (!v) return null;
    var ok = 0, bad = 0, un = 0;
    v.items.forEach(function (i) { if (i.result === 'ok') ok++; else if (i.result === 'unchecked') un++; else bad++; });
    var kids = [el('p', { 'data-testid': 'verify-result', text: v.running ? T('verifyRunning') : T('verifyResult', { time: when(v.finishedAt), ok: ok, bad: bad, unchecked: un }) })];
    var wrong = v.items.filter(function (i) { return i.result !== 'ok'; });
    if (wrong.length) kids.push(el('ul', {}, wrong.map(function (i) { return el('li', { className: 'st-' + i.result, text: i.label + ' → ' + i.target + ': ' + T('verify.' + i.result) + (i.detail ? ' (' + i.detail + ')' : '') }); })));
    return el('div', { className: 'verify' }, kids);
  }

  function cardParts(c) {
    var vid = 'verify-' + c.batchId;
    var running = (c.verify && c.verify.running) || busy[vid];
    return {
      head: el('div', {}, [
        el('h3', { text: T('card') + ': ' + cardName(c) }),
        el('p', { className: 'meta', text: T('batch') + ' ' + c.batchId + ' · ' + T('started') + ' ' + when(c.createdAt) + ' · ' +
          c.counts.secured + '/' + c.counts.footage + ' ' + T('file.secured') }),
        stateBanner(c), progressBlock(c)
      ]),
      problems: el('div', {}, [problemsBlock(c)]),
      files: el('div', {}, [filesTable(c)]),
      deliveries: el('div', {}, [deliveriesTable(c)]),
      actions: el('div', {}, [
        el('div', { className: 'actions' }, [
          el('a', { className: 'button', href: '/batch/' + encodeURIComponent(c.batchId) + '/report', 'data-ticket': '1', target: '_blank', rel: 'noopener', text: T('openReport') }),
          el('a', { className: 'button', href: '/api/batch/' + encodeURIComponent(c.batchId), 'data-ticket': '1', target: '_blank', rel: 'noopener', text: T('statusJson') }),
          el('button', { type: 'button', id: vid, 'data-action': 'verify', 'data-batch': c.batchId, disabled: running ? true : undefined, text: running ? T('verifyRunning') : T('verify') })
        ]),
        el('p', { className: 'note', text: T('verifyNote') }),
        verifyBlock(c)
      ])
    };
  }

  function renderCards() {
    var list = document.getElementById('cardlist');
    if (!state.cards.length) {
      list.replaceChildren(el('p', { 'data-testid': 'no-cards', text: T('noCards') }));
      cache = {};
      return;
    }
    var seen = {};
    var order = [];
    state.cards.forEach(function (c) {
      seen[c.batchId] = true;
      var sec = document.getElementById('card-' + c.batchId);
      if (!sec) sec = el('section', { className: 'card', id: 'card-' + c.batchId, 'aria-label': T('card') + ' ' + cardName(c) });
      if (!cache[c.batchId]) cache[c.batchId] = {};
      sec.setAttribute('data-state', c.state);
      var parts = cardParts(c);
      var keyed = {
        head: JSON.stringify([c.state, c.progress, c.counts, c.card, c.remaining, c.phase]),
        problems: JSON.stringify(c.problems),
        files: JSON.stringify(c.files),
        deliveries: JSON.stringify([c.deliveries, busy]),
        actions: JSON.stringify([c.verify, busy])
      };
      ['head', 'problems', 'files', 'deliveries', 'actions'].forEach(function (k) {
        var old = sec.querySelector(':scope > [data-part="' + k + '"]');
        if (old && cache[c.batchId][k] === keyed[k]) return;
        parts[k].setAttribute('data-part', k);
        if (old) old.replaceWith(parts[k]); else sec.appendChild(parts[k]);
        cache[c.batchId][k] = keyed[k];
      });
      order.push(sec);
    });
    Array.prototype.slice.call(list.children).forEach(function (n) { if (!seen[(n.id || '').slice(5)]) list.removeChild(n); });
    order.forEach(function (sec, i) { if (list.children[i] !== sec) list.insertBefore(sec, list.children[i] || null); });
  }

  function renderTargets() {
    var head = el('thead', {}, [el('tr', {}, ['target', 'reachable', 'lastSuccess', 'lastError', 'policy', 'outbox'].map(function (k) { return el('th', { scope: 'col', text: T(k) }); }))]);
    var body = el('tbody', {}, state.targets.map(function (t) {
      return el('tr', { 'data-target': t.name }, [
        el('th', { scope: 'row', text: t.name + ' (' + t.type + ')' }),
        el('td', { className: t.reachable === 'no' ? 'st-failed' : t.reachable === 'yes' ? 'st-ok' : '', text: T('reach.' + t.reachable) }),
        el('td', { text: when(t.lastSuccess) }),
        el('td', {}, t.lastError ? [el('code', { text: t.lastError.code }), ' ', t.lastError.message, ' (' + when(t.lastError.at) + ')'] : ['—']),
        el('td', { text: T('policy.' + t.class) + ', ' + T(t.required ? 'required' : 'optional') + (t.refused ? ', ' + T('refusedCount', { n: t.refused }) : '') }),
        el('td', { text: String(t.outbox) })
      ]);
    }));
    document.getElementById('targetlist').replaceChildren(el('table', {}, [el('caption', { text: T('station') + ' ' + state.station }), head, body]));
  }

  function announceChanges() {
    state.cards.forEach(function (c) {
      var p = prev[c.batchId];
      var name = cardName(c);
      var safeNow = !!c.safeToRemoveAt;
      // "May be removed" is said once, when it becomes true, even if the snapshot that carried it
      // already shows the card secured (a fast card can pass "safe" between two pushes).
      if (p && !p.safe && safeNow && c.state !== 'failed') announce(T('announceSafe', { card: name }));
      if (p && p.state !== c.state) {
        if (c.state === 'secured') announce(T('announceSecured', { card: name }));
        else if (c.state === 'missing') announce(T('announceMissing', { card: name }));
        else if (c.state === 'reading') announce(T('announceReading', { card: name }));
      } else if (!p && (c.state === 'reading' || c.state === 'inserted')) {
        announce(T('announceReading', { card: name }));
      }
      var before = p ? p.problems : 0;
      if (c.problems.length > before) announce(T('announceProblem', { card: name, path: c.problems[c.problems.length - 1].path }));
      prev[c.batchId] = { state: c.state, problems: c.problems.length, safe: safeNow };
    });
  }

  function loadThumbs() {
    Array.prototype.forEach.call(document.querySelectorAll('img[data-thumb]:not([src])'), function (img) {
      var u = img.getAttribute('data-thumb');
      if (thumbs[u] === '') return; // being fetched
      thumbs[u] = '';
      api(u).then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.blob(); }).then(function (b) {
        thumbs[u] = URL.createObjectURL(b);
        Array.prototype.forEach.call(document.querySelectorAll('img[data-thumb]'), function (i) { if (i.getAttribute('data-thumb') === u) i.src = thumbs[u]; });
      }).catch(function () { delete thumbs[u]; });
    });
  }

  function render() {
    if (!state || !texts) return;
    var focusId = document.activeElement && document.activeElement.id;
    renderCards();
    renderTargets();
    loadThumbs();
    if (focusId && document.activeElement && document.activeElement.id !== focusId) {
      var f = document.getElementById(focusId); if (f) f.focus();
    }
  }

  function applyLang() {
    document.documentElement.lang = lang;
    document.title = T('title');
    document.getElementById('title').textContent = T('title');
    document.getElementById('skip').textContent = T('skip');
    document.getElementById('langlabel').textContent = T('language');
    document.getElementById('cards-h').textContent = T('cards');
    document.getElementById('targets-h').textContent = T('targets');
    document.getElementById('login-h').textContent = T('loginTitle');
    document.getElementById('login-label').textContent = T('loginField');
    document.getElementById('login-button').textContent = T('loginButton');
    if (login) document.getElementById('login-text').textContent = T(login);
    ['nl', 'en'].forEach(function (l) { document.getElementById('lang-' + l).setAttribute('aria-pressed', String(l === lang)); });
    document.getElementById('cardlist').replaceChildren();
    cache = {};
    setConn(connected);
    render();
  }

  var connected = false;
  function setConn(up) {
    connected = up;
    if (login) return; // not connected because not logged in: the login prompt says so
    var c = document.getElementById('conn');
    c.textContent = texts ? T(up ? 'connected' : 'disconnected') : '';
    c.className = 'conn' + (up ? '' : ' down');
  }

  // ---- the token: from the address (once), then sessionStorage; sent as a header only ----
  function tokenFromAddress() {
    var m = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
    var t = m ? m[1] : new URLSearchParams(location.search).get('token');
    if (!t) return null;
    try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { /* kept in memory only */ }
    history.replaceState(null, '', location.pathname);
    return t;
  }
  function storedToken() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }
  function LoginNeeded() { this.loginNeeded = true; }
  function api(url, opts) {
    opts = opts || {};
    var headers = { Authorization: 'Bearer ' + token };
    for (var k in (opts.headers || {})) headers[k] = opts.headers[k];
    return fetch(url, { method: opts.method || 'GET', headers: headers, body: opts.body, credentials: 'omit', cache: 'no-store', signal: opts.signal })
      .then(function (r) {
        if (r.status === 401) { showLogin('loginStale'); throw new LoginNeeded(); }
        return r;
      });
  }
  function showLogin(why) {
    login = why;
    token = null;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
    document.getElementById('login-text').textContent = T(why);
    document.getElementById('login').hidden = false;
    document.getElementById('cards').hidden = true;
    document.getElementById('targets').hidden = true;
    var c = document.getElementById('conn');
    c.textContent = '';
    c.className = 'conn';
  }
  document.getElementById('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var v = document.getElementById('login-input').value.trim();
    var m = /token=([A-Za-z0-9_-]+)/.exec(v);
    var t = m ? m[1] : v;
    if (!/^[A-Za-z0-9_-]{20,}$/.test(t)) return;
    try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { /* ignore */ }
    location.reload();
  });
  // The new address opened in this same tab only changes the fragment: no reload by itself.
  window.addEventListener('hashchange', function () { if (tokenFromAddress()) location.reload(); });

  function post(url, body) {
    return api(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Kluis-CSRF': csrf }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error((j && j.error && (j.error.message + ' [' + j.error.code + ']')) || String(r.status)); return j; }); });
  }

  document.addEventListener('click', function (ev) {
    var a = ev.target.closest('a[data-ticket]');
    if (a) {
      // A new tab cannot send the token header: ask for a one-use ticket for this path.
      ev.preventDefault();
      post('/api/ticket', { path: a.getAttribute('href') })
        .then(function (j) { window.open(j.url, '_blank', 'noopener'); })
        .catch(function (e) { if (!e.loginNeeded) showAlert(T('actionFailed', { msg: e.message })); });
      return;
    }
    var b = ev.target.closest('button');
    if (!b) return;
    if (b.dataset.lang) {
      lang = b.dataset.lang;
      try { localStorage.setItem('kluis-lang', lang); } catch (e) { /* ignore */ }
      applyLang();
      return;
    }
    var action = b.dataset.action;
    if (!action) return;
    var id = b.id;
    busy[id] = true; b.disabled = true; showAlert('');
    var req = action === 'retry'
      ? post('/api/retry', { batchId: b.dataset.batch, object: b.dataset.object, target: b.dataset.target }).then(function () { announce(T('retryDone')); })
      : post('/api/verify', { batchId: b.dataset.batch });
    req.catch(function (e) { if (!e.loginNeeded) showAlert(T('actionFailed', { msg: e.message })); })
      .then(function () { delete busy[id]; cache = {}; render(); });
  });

  function onState(s) {
    state = s;
    announceChanges();
    render();
  }

  // The live stream: server-sent events read with fetch, so the token goes in a header.
  function connect() {
    api('/api/events', { headers: { Accept: 'text/event-stream' } }).then(function (r) {
      if (!r.ok || !r.body) throw new Error(String(r.status));
      setConn(true);
      var reader = r.body.getReader();
      var dec = new TextDecoder();
      var buf = '';
      function pump() {
        return reader.read().then(function (x) {
          if (x.done) throw new Error('stream closed');
          buf += dec.decode(x.value, { stream: true });
          var i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            var block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            var ev = 'message', data = [];
            block.split('\n').forEach(function (line) {
              if (line.indexOf('event:') === 0) ev = line.slice(6).trim();
              else if (line.indexOf('data:') === 0) data.push(line.slice(5).replace(/^ /, ''));
            });
            if (ev === 'state' && data.length) onState(JSON.parse(data.join('\n')));
          }
          return pump();
        });
      }
      return pump();
    }).catch(function (e) {
      if (e && e.loginNeeded) return;
      setConn(false);
      setTimeout(connect, 2000);
    });
  }

  token = tokenFromAddress() || storedToken();
  fetch('/api/texts', { credentials: 'omit' }).then(function (r) { return r.json(); }).then(function (t) {
    texts = t;
    if (!texts[lang]) lang = 'nl';
    applyLang();
    if (!token) { showLogin('loginNeeded'); throw new LoginNeeded(); }
    return api('/api/session').then(function (r) { return r.json(); });
  }).then(function (sess) {
    csrf = sess.csrf;
    return api('/api/state').then(function (r) { return r.json(); });
  }).then(function (s) {
    state = s;
    s.cards.forEach(function (c) { prev[c.batchId] = { state: c.state, problems: c.problems.length, safe: !!c.safeToRemoveAt }; });
    render();
    connect();
  }).catch(function (e) { if (!e.loginNeeded) showAlert(String(e)); });
})();
`;
