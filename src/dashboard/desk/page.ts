/**
 * The desk page: one HTML shell, one stylesheet (the station dashboard's, plus a few rules) and
 * one script, all served by the desk server itself, so the CSP forbids inline script and style
 * and every external source. The shell holds no data and no secret (it is served without the
 * token). The script takes the token from the address's fragment (`#token=…`, never sent to a
 * server) into sessionStorage, sends it as `Authorization: Bearer` on every request, gets the
 * CSRF value from /api/session, renders everything with textContent (never innerHTML with data),
 * and asks for the address again when the token is missing or stale (the desk was restarted).
 */
import { PAGE_CSS } from '../page.js';
import { DESK_DEFAULT_LANG, DESK_TEXTS } from './texts.js';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function deskHtml(): string {
  const t = DESK_TEXTS[DESK_DEFAULT_LANG];
  return `<!DOCTYPE html>
<html lang="${DESK_DEFAULT_LANG}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(t.title)}</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<a class="skip" href="#results" data-t="skip">${esc(t.skip)}</a>
<header>
  <h1 data-t="title">${esc(t.title)}</h1>
  <div class="bar">
    <p id="conn" class="conn" role="status"></p>
    <div role="group" aria-labelledby="langlabel" class="lang">
      <span id="langlabel" data-t="language">${esc(t.language)}</span>
      <button type="button" data-lang="nl" aria-pressed="true">Nederlands</button>
      <button type="button" data-lang="en" aria-pressed="false">English</button>
    </div>
  </div>
</header>
<div id="alert" class="alert" role="alert" hidden></div>
<main>
  <section id="login" aria-labelledby="login-h" hidden>
    <h2 id="login-h" data-t="loginTitle">${esc(t.loginTitle)}</h2>
    <p id="login-text" data-testid="login-text"></p>
    <form id="login-form">
      <label><span data-t="loginField">${esc(t.loginField)}</span> <input id="login-input" autocomplete="off"></label>
      <div class="actions"><button type="submit" data-t="loginButton">${esc(t.loginButton)}</button></div>
    </form>
  </section>
  <section id="search-section" aria-labelledby="search-h">
    <h2 id="search-h" data-t="search">${esc(t.search)}</h2>
    <p class="note" data-t="searchHelp">${esc(t.searchHelp)}</p>
    <form id="search" class="search">
      <label><span data-t="case">${esc(t.case)}</span> <input name="case" data-testid="q-case" autocomplete="off"></label>
      <label><span data-t="station">${esc(t.station)}</span> <select name="station" data-testid="q-station"><option value="" data-t="anyStation">${esc(t.anyStation)}</option></select></label>
      <label><span data-t="operator">${esc(t.operator)}</span> <input name="operator" data-testid="q-operator" autocomplete="off"></label>
      <label><span data-t="from">${esc(t.from)}</span> <input name="from" type="date" data-testid="q-from"></label>
      <label><span data-t="to">${esc(t.to)}</span> <input name="to" type="date" data-testid="q-to"></label>
      <div class="actions">
        <button type="submit" data-testid="find" data-t="find">${esc(t.find)}</button>
        <button type="button" id="rescan" data-testid="rescan" data-t="rescan">${esc(t.rescan)}</button>
      </div>
    </form>
  </section>
  <section id="results" aria-labelledby="results-h" tabindex="-1">
    <h2 id="results-h" data-t="results">${esc(t.results)}</h2>
    <p id="summary" class="meta" role="status" data-testid="summary"></p>
    <div id="list"></div>
  </section>
  <section id="batch" aria-labelledby="batch-h" tabindex="-1" hidden>
    <h2 id="batch-h"></h2>
    <div id="batch-body"></div>
  </section>
</main>
</body>
</html>
`;
}

export const DESK_CSS = `${PAGE_CSS}
form.search { display: flex; flex-wrap: wrap; gap: 0.6rem 1.2rem; align-items: flex-end; }
form.search label, form.export label { display: flex; flex-direction: column; font-weight: bold; }
input, select { font: inherit; font-size: 1rem; padding: 0.35rem 0.5rem; border: 3px solid var(--fg); background: var(--bg); color: var(--fg); border-radius: 0.3rem; }
input[name="out"] { min-width: 28rem; max-width: 100%; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; margin: 0.4rem 0 0.8rem; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.result { font-size: 1.4rem; font-weight: 800; padding: 0.4rem 0.8rem; border: 3px solid var(--fg); display: inline-block; }
.result.st-verified { background: var(--ok); color: #fff; }
.result.st-mismatch, .result.st-missing { background: var(--bad); color: #fff; }
details.lines summary { cursor: pointer; font-weight: bold; }
`;

/*
 * The browser script. Plain ES2020, no framework, no template literals (it lives in a string).
 */
export const DESK_JS = String.raw`
'use strict';
(function () {
  var TOKEN_KEY = 'kluis-desk-token';
  var token = null;
  var csrf = null;
  var texts = null;
  var lang = 'nl';
  try { lang = localStorage.getItem('kluis-desk-lang') || 'nl'; } catch (e) { /* private mode */ }
  var current = null; // the batch shown
  var lastList = null;

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
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function when(iso) {
    if (!iso) return '?';
    var d = new Date(iso);
    return isNaN(d.getTime()) ? iso : d.toLocaleString(lang === 'nl' ? 'nl-NL' : 'en-GB');
  }
  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' kB';
    return (n / 1048576).toFixed(1) + ' MB';
  }
  function showAlert(err) {
    var a = document.getElementById('alert');
    clear(a);
    if (!err || err.loginNeeded) { a.hidden = true; return; }
    a.appendChild(el('p', { text: T('error') + ': ' + err.message + (err.code ? ' [' + err.code + ']' : '') }));
    if (err.hint) a.appendChild(el('p', { text: T('hint') + ': ' + err.hint }));
    a.hidden = false;
  }
  // ---- the token: from the address (once), then sessionStorage; sent as a header only ----
  function tokenFromAddress() {
    var m = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
    if (!m) return null;
    try { sessionStorage.setItem(TOKEN_KEY, m[1]); } catch (e) { /* kept in memory only */ }
    history.replaceState(null, '', location.pathname);
    return m[1];
  }
  function storedToken() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }
  function LoginNeeded() { this.loginNeeded = true; }
  function showLogin(why) {
    token = null;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
    document.getElementById('login-text').textContent = T(why);
    document.getElementById('login').hidden = false;
    ['search-section', 'results', 'batch'].forEach(function (id) { document.getElementById(id).hidden = true; });
  }
  function api(url, opts) {
    opts = opts || {};
    var headers = { Authorization: 'Bearer ' + token };
    for (var k in (opts.headers || {})) headers[k] = opts.headers[k];
    return fetch(url, { method: opts.method || 'GET', headers: headers, body: opts.body, credentials: 'omit', cache: 'no-store' }).then(function (r) {
      if (r.status === 401) { showLogin('loginStale'); throw new LoginNeeded(); }
      return r.json().then(function (b) {
        if (!r.ok) throw (b && b.error) || { message: 'HTTP ' + r.status };
        return b;
      });
    });
  }
  function getJson(url) { return api(url); }
  function postJson(url, body) {
    return api(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Kluis-CSRF': csrf }, body: JSON.stringify(body) });
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
  window.addEventListener('hashchange', function () { if (tokenFromAddress()) location.reload(); });

  function applyTexts() {
    document.documentElement.lang = lang;
    document.title = T('title');
    Array.prototype.forEach.call(document.querySelectorAll('[data-t]'), function (n) { n.textContent = T(n.getAttribute('data-t')); });
    Array.prototype.forEach.call(document.querySelectorAll('[data-lang]'), function (b) { b.setAttribute('aria-pressed', b.getAttribute('data-lang') === lang ? 'true' : 'false'); });
    if (lastList) renderList(lastList);
    if (current) renderBatch(current.details, current.verify, current.exported);
  }

  function query(fresh) {
    var f = document.getElementById('search');
    var p = new URLSearchParams();
    ['case', 'station', 'operator', 'from', 'to'].forEach(function (k) { var v = f.elements[k].value.trim(); if (v) p.set(k, v); });
    if (fresh) p.set('fresh', '1');
    return p.toString();
  }
  function search(fresh) {
    showAlert(null);
    document.getElementById('summary').textContent = T('scanning');
    return getJson('/api/catalog?' + query(fresh)).then(function (res) {
      lastList = res;
      renderList(res);
    }).catch(showAlert);
  }

  function renderList(res) {
    document.getElementById('summary').textContent = T('found', { n: res.batches.length, total: res.total, at: when(res.scannedAt) });
    var list = document.getElementById('list');
    clear(list);
    if (res.batches.length === 0) { list.appendChild(el('p', { text: T('none'), 'data-testid': 'no-batches' })); return; }
    var head = el('tr', null, ['started', 'batch', 'station', 'case', 'operator', 'files', 'status', 'targets', ''].map(function (k) { return el('th', { scope: 'col', text: k ? T(k) : '' }); }));
    var body = el('tbody');
    res.batches.forEach(function (b) {
      var btn = el('button', { type: 'button', text: T('open'), 'data-testid': 'open-' + b.batchId, 'aria-label': T('open') + ' ' + b.batchId });
      btn.addEventListener('click', function () { openBatch(b.batchId); });
      body.appendChild(el('tr', { 'data-testid': 'row', 'data-batch': b.batchId }, [
        el('td', { text: when(b.startedAt) }),
        el('td', null, [el('code', { text: b.batchId })]),
        el('td', { text: b.station }),
        el('td', { text: b.case || '-', 'data-testid': 'row-case' }),
        el('td', { text: b.operator || '-' }),
        el('td', { text: String(b.files) }),
        el('td', { text: T('status-' + b.status), className: 'st-' + (b.status === 'complete' ? 'ok' : 'failed') }),
        el('td', { text: b.targets.join(', ') }),
        el('td', null, [btn]),
      ]));
    });
    list.appendChild(el('table', null, [el('thead', null, [head]), body]));
  }

  function openBatch(id) {
    showAlert(null);
    return getJson('/api/batch/' + encodeURIComponent(id)).then(function (d) {
      current = { details: d, verify: null, exported: null };
      renderBatch(d, null, null);
      var sec = document.getElementById('batch');
      sec.hidden = false;
      sec.focus();
    }).catch(showAlert);
  }

  function facts(pairs) {
    var dl = el('dl', { className: 'facts' });
    pairs.forEach(function (p) { if (p[1] !== undefined && p[1] !== null && p[1] !== '') { dl.appendChild(el('dt', { text: p[0] })); dl.appendChild(el('dd', { text: String(p[1]), 'data-testid': p[2] || null })); } });
    return dl;
  }

  function renderBatch(d, verify, exported) {
    document.getElementById('batch-h').textContent = T('details', { id: d.batchId });
    var body = document.getElementById('batch-body');
    clear(body);
    var card = [d.card.label, d.card.uuid, d.card.fingerprint && d.card.fingerprint.slice(0, 16) + '…'].filter(Boolean).join(' · ');
    body.appendChild(facts([
      [T('station'), d.station.name, 'd-station'], [T('case'), d.case, 'd-case'], [T('operator'), d.operator, 'd-operator'],
      [T('card'), card, 'd-card'], [T('started'), when(d.startedAt)], [T('targets'), d.target],
    ]));
    // Files with what was removed.
    var rows = el('tbody');
    d.files.forEach(function (f) {
      var removed = f.removed && f.removed.length ? el('ul', { className: 'removed' }, f.removed.map(function (r) { return el('li', { text: r.what + ' (' + r.where + ', ' + bytes(r.bytes) + ')' }); })) : document.createTextNode(f.class === 'footage' ? T('nothingRemoved') : '-');
      rows.appendChild(el('tr', { 'data-testid': 'file' }, [
        el('td', { className: 'path', text: f.path }), el('td', { text: f.class }), el('td', { text: f.status + (f.error ? ' (' + f.error.code + ')' : ''), className: 'st-' + f.status }),
        el('td', { text: bytes(f.size) }), el('td', null, [el('code', { text: f.cardSha256 || '-' })]), el('td', null, [removed]),
      ]));
    });
    body.appendChild(el('table', null, [
      el('caption', { text: T('files') }),
      el('thead', null, [el('tr', null, ['path', 'class', 'status', 'size', 'cardHash', 'removed'].map(function (k) { return el('th', { scope: 'col', text: T(k) }); }))]),
      rows,
    ]));
    // The custody record.
    var c = d.custody;
    var cs = el('section', { 'aria-labelledby': 'custody-h', 'data-testid': 'custody' }, [el('h3', { id: 'custody-h', text: T('custody') })]);
    cs.appendChild(el('p', null, [el('span', { className: 'result st-' + c.result, text: T('result-' + c.result), 'data-testid': 'custody-result' })]));
    if (c.code || c.message) cs.appendChild(el('p', { className: 'problems', text: (c.message || '') + (c.code ? ' [' + c.code + ']' : '') }));
    if (c.record) {
      var r = c.record;
      cs.appendChild(el('p', { text: T('custodyLines', { n: r.lines, station: r.station.name, seq: r.audit.seq }) }));
      cs.appendChild(facts([
        [T('operator'), r.operator, 'c-operator'], [T('case'), r.case, 'c-case'],
        [T('card'), [r.card.label, r.card.uuid, r.card.fingerprint].filter(Boolean).join(' · '), 'c-card'],
        [T('cardSeen'), when(r.times.cardSeen), 'c-seen'], [T('safeToRemove'), when(r.times.safeToRemove), 'c-safe'],
        [T('lastSealed'), when(r.times.lastSealed)], [T('recorded'), when(r.recordedAt)],
      ]));
      if (r.deliveries.length) {
        var drows = el('tbody');
        r.deliveries.forEach(function (x) { drows.appendChild(el('tr', null, [el('td', null, [el('code', { text: x.object })]), el('td', { text: x.target }), el('td', { text: when(x.delivered) }), el('td', { text: when(x.verified) })])); });
        cs.appendChild(el('table', null, [el('caption', { text: T('deliveries') }), el('thead', null, [el('tr', null, ['object', 'targets', 'delivered', 'verifiedAt'].map(function (k) { return el('th', { scope: 'col', text: T(k) }); }))]), drows]));
      }
      if (c.lines) {
        var lrows = el('tbody');
        c.lines.forEach(function (l) { lrows.appendChild(el('tr', null, [el('td', { text: String(l.seq) }), el('td', { text: when(l.time) }), el('td', { text: l.type }), el('td', { className: 'path', text: l.file || l.object || '' }), el('td', { text: l.target || '' })])); });
        cs.appendChild(el('details', { className: 'lines' }, [el('summary', { text: T('lines') + ' (' + c.lines.length + ')' }), el('table', null, [lrows])]));
      }
    }
    body.appendChild(cs);
    // Verify.
    var vb = el('button', { type: 'button', text: T('verify'), 'data-testid': 'verify' });
    var vout = el('div', { role: 'status', 'data-testid': 'verify-out' });
    vb.addEventListener('click', function () { startVerify(d.batchId); });
    body.appendChild(el('div', { className: 'actions' }, [vb]));
    body.appendChild(vout);
    if (verify) renderVerify(vout, verify);
    // Export.
    var form = el('form', { className: 'export', 'data-testid': 'export-form' });
    var input = el('input', { name: 'out', 'data-testid': 'export-out', autocomplete: 'off' });
    form.appendChild(el('h3', { text: T('export') }));
    form.appendChild(el('p', { className: 'note', text: T('exportHelp') }));
    form.appendChild(el('label', null, [el('span', { text: T('exportFolder') }), input]));
    form.appendChild(el('div', { className: 'actions' }, [el('button', { type: 'submit', text: T('export'), 'data-testid': 'export' })]));
    var eout = el('p', { role: 'status', 'data-testid': 'export-out-msg' });
    if (exported) eout.textContent = T('exportDone', { files: exported.files, out: exported.out });
    form.appendChild(eout);
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      showAlert(null);
      postJson('/api/export', { batchId: d.batchId, out: input.value.trim() }).then(function (r) {
        current.exported = r;
        eout.textContent = T('exportDone', { files: r.files, out: r.out });
      }).catch(showAlert);
    });
    body.appendChild(form);
  }

  function renderVerify(node, run) {
    clear(node);
    if (run.running) { node.appendChild(el('p', { text: T('verifying') })); return; }
    if (run.error) { node.appendChild(el('p', { className: 'problems', text: run.error.message + ' [' + run.error.code + ']' })); return; }
    var rep = run.report;
    node.appendChild(el('p', null, [el('span', { className: 'result st-' + rep.result, text: T('verifyResult', { result: T('result-' + rep.result) }), 'data-testid': 'verify-result', 'data-result': rep.result })]));
    if (rep.problems.length) {
      node.appendChild(el('h4', { text: T('problems') }));
      node.appendChild(el('ul', { className: 'problems', 'data-testid': 'verify-problems' }, rep.problems.map(function (p) {
        return el('li', null, [p.message + (p.code ? ' [' + p.code + ']' : ''), p.hint ? el('br') : null, p.hint ? T('hint') + ': ' + p.hint : null]);
      })));
    }
  }

  function startVerify(id) {
    showAlert(null);
    current.verify = { running: true };
    renderBatch(current.details, current.verify, current.exported);
    postJson('/api/verify', { batchId: id }).then(function () {
      var poll = function () {
        getJson('/api/verify/' + encodeURIComponent(id)).then(function (run) {
          if (!current || current.details.batchId !== id) return;
          current.verify = run;
          renderVerify(document.querySelector('[data-testid="verify-out"]'), run);
          if (run.running) setTimeout(poll, 500);
        }).catch(showAlert);
      };
      poll();
    }).catch(showAlert);
  }

  document.getElementById('search').addEventListener('submit', function (ev) { ev.preventDefault(); search(false); });
  document.getElementById('rescan').addEventListener('click', function () { search(true); });
  Array.prototype.forEach.call(document.querySelectorAll('[data-lang]'), function (b) {
    b.addEventListener('click', function () {
      lang = b.getAttribute('data-lang');
      try { localStorage.setItem('kluis-desk-lang', lang); } catch (e) { /* private mode */ }
      applyTexts();
    });
  });
  token = tokenFromAddress() || storedToken();
  fetch('/api/texts', { credentials: 'omit' }).then(function (r) { return r.json(); }).then(function (t) {
    texts = t;
    applyTexts();
    if (!token) { showLogin('loginNeeded'); throw new LoginNeeded(); }
    return Promise.all([getJson('/api/session'), getJson('/api/info')]);
  }).then(function (r) {
    csrf = r[0].csrf;
    var sel = document.querySelector('select[name="station"]');
    r[1].stations.forEach(function (s) { sel.appendChild(el('option', { value: s.name, text: s.name })); });
    return search(false);
  }).catch(showAlert);
})();
`;
