/**
 * The dashboard page: one HTML shell, one stylesheet and one script, all served by the
 * dashboard itself (no external asset, no inline script or style, so the CSP can forbid both).
 * The shell holds no data and no secret: it is served without the token. The script is
 * client/station.ts, bundled at build time (server.ts serves the bundle as /app.js); it renders
 * everything from the JSON state, keeps keyboard focus across live updates, and announces state
 * changes in the aria-live region (#announce). Texts come from i18n.ts.
 *
 * The token: the address `kluis serve` prints carries it in the fragment (`#token=…`, never
 * sent to a server). The script keeps it in sessionStorage and sends it as an
 * `Authorization: Bearer` header on every request (client/session.ts). When there is no token,
 * or the server refuses it (the dashboard was restarted), the page says so in #login and offers
 * a field for the new address.
 */
import { TEXTS, DEFAULT_LANG } from './i18n.js';

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A page of ours: its style and script from our own origin (/app.css, /app.js), never inline. */
export function htmlPage(lang: string, title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
${body}</body>
</html>
`;
}

export function pageHtml(): string {
  const nl = TEXTS[DEFAULT_LANG];
  return htmlPage(
    DEFAULT_LANG,
    nl.title,
    `<a class="skip" href="#cards" id="skip">${esc(nl.skip)}</a>
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
`,
  );
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
