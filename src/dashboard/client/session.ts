/**
 * The page's credentials, for both pages' scripts. The address `kluis serve` prints carries the
 * per-start token in its fragment (`#token=…`, never sent to a server). The script moves it to
 * sessionStorage (per origin, so per port: no other local service can read it), takes it out of
 * the address bar, and sends it only as an `Authorization: Bearer` header (credentials omitted:
 * no cookie, ever). Actions also send the CSRF value the page got from /api/session.
 *
 * No token, or a 401 (the server was restarted, so the token is stale): the page shows its login
 * prompt, which takes the new address (or the token alone). Opening the new address in the same
 * tab only changes the fragment, which does not reload by itself: the script does.
 */
import { byId } from './dom.js';

/** A request could not be made or answered until the user logs in; the prompt shows already. */
export class LoginNeeded extends Error {
  constructor() {
    super('login needed');
    this.name = 'LoginNeeded';
  }
}

export interface SessionOptions {
  /** The sessionStorage key for the token. */
  storageKey: string;
  /** Also take `?token=` from the query (the station's addresses of older versions carried it there). */
  acceptQuery: boolean;
  /** Shows the login prompt, saying why: 'loginNeeded' (no token) or 'loginStale' (refused). */
  onLogin: (why: 'loginNeeded' | 'loginStale') => void;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

export class Session {
  private token: string | null;
  private csrf = '';

  constructor(private readonly o: SessionOptions) {
    byId<HTMLFormElement>('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = byId<HTMLInputElement>('login-input').value.trim();
      const m = /token=([A-Za-z0-9_-]+)/.exec(v);
      const t = m ? m[1]! : v;
      if (!/^[A-Za-z0-9_-]{20,}$/.test(t)) return;
      this.store(t);
      location.reload();
    });
    window.addEventListener('hashchange', () => {
      if (this.fromAddress()) location.reload();
    });
    this.token = this.fromAddress() || this.stored();
  }

  get hasToken(): boolean {
    return Boolean(this.token);
  }

  setCsrf(csrf: string): void {
    this.csrf = csrf;
  }

  /** Forgets the token and shows the login prompt; returns the LoginNeeded for the caller to throw. */
  logout(why: 'loginNeeded' | 'loginStale'): LoginNeeded {
    this.token = null;
    try {
      sessionStorage.removeItem(this.o.storageKey);
    } catch {
      /* nothing stored */
    }
    this.o.onLogin(why);
    return new LoginNeeded();
  }

  /** A request with the token header; a 401 logs out and rejects with LoginNeeded. */
  async fetch(url: string, opts: RequestOptions = {}): Promise<Response> {
    const r = await fetch(url, {
      method: opts.method ?? 'GET',
      headers: { Authorization: `Bearer ${this.token}`, ...opts.headers },
      body: opts.body,
      credentials: 'omit',
      cache: 'no-store',
    });
    if (r.status === 401) throw this.logout('loginStale');
    return r;
  }

  /** An action: POST of a JSON body with the CSRF value. */
  post(url: string, body: unknown): Promise<Response> {
    return this.fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Kluis-CSRF': this.csrf }, body: JSON.stringify(body) });
  }

  /** The token from the address, once: stored, and the address bar cleaned. */
  private fromAddress(): string | null {
    const m = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
    const t = m ? m[1]! : this.o.acceptQuery ? new URLSearchParams(location.search).get('token') : null;
    if (!t) return null;
    this.store(t);
    history.replaceState(null, '', location.pathname);
    return t;
  }

  private stored(): string | null {
    try {
      return sessionStorage.getItem(this.o.storageKey);
    } catch {
      return null;
    }
  }

  private store(t: string): void {
    try {
      sessionStorage.setItem(this.o.storageKey, t);
    } catch {
      /* kept in memory only */
    }
  }
}

/** Shows the login prompt (#login, with #login-text) and hides the page's data sections. */
export function showLoginPrompt(text: string, hide: readonly string[]): void {
  byId('login-text').textContent = text;
  byId('login').hidden = false;
  for (const id of hide) byId(id).hidden = true;
}
