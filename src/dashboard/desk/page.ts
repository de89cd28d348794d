/**
 * The desk page: one HTML shell, one stylesheet (the station dashboard's, plus a few rules) and
 * one script, all served by the desk server itself, so the CSP forbids inline script and style
 * and every external source. The shell holds no data and no secret (it is served without the
 * token). The script is client/desk.ts, bundled at build time (desk/server.ts serves the bundle
 * as /app.js); its token handling and login prompt are the station page's (client/session.ts).
 */
import { PAGE_CSS, esc, htmlPage } from '../page.js';
import { DESK_DEFAULT_LANG, DESK_TEXTS } from './texts.js';

export function deskHtml(): string {
  const t = DESK_TEXTS[DESK_DEFAULT_LANG];
  return htmlPage(
    DESK_DEFAULT_LANG,
    t.title,
    `<a class="skip" href="#results" data-t="skip">${esc(t.skip)}</a>
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
`,
  );
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
