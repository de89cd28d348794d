/**
 * HTTP(S) plumbing for network targets, with the egress guard in the connection path.
 *
 * Promises:
 * - every new connection made by these agents first asks the guard: the host name is resolved
 *   once, every resolved address is checked, and the socket is opened to a checked address (the
 *   socket gets an IP literal, so Node performs no second lookup; a stray lookup is refused);
 * - TLS is always verified (rejectUnauthorized); `caFile` adds the CA to trust for an own server;
 *   an optional `tlsPin` (base64 SHA-256 of the SubjectPublicKeyInfo) is checked during the
 *   handshake, i.e. before any request byte is sent;
 * - HTTP(S)_PROXY / NO_PROXY are never read: connections go direct;
 * - `send()` refuses redirects (E_EGRESS_REDIRECT) and never follows them.
 *
 * A refusal fails the request before it has a socket, so no body byte leaves the station.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { createHash, X509Certificate } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { KluisError } from '../errors.js';
import { EgressGuard, normaliseHost } from './egress.js';

export interface GuardedAgentOptions {
  guard: EgressGuard;
  /** PEM CA bundle to trust (replaces the system roots for this target). */
  ca?: string | Buffer;
  /** base64 SHA-256 of the server certificate's SubjectPublicKeyInfo (DER). */
  tlsPin?: string;
  /** This target sends a password in clear on plain http (WebDAV basic auth): loopback only. */
  plaintextPassword?: boolean;
  /** Idle socket timeout; a stalled server becomes E_TARGET_UNREACHABLE. */
  socketTimeoutMs?: number;
}

export interface GuardedAgents {
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
  destroy(): void;
}

/**
 * base64 SHA-256 of a certificate's SubjectPublicKeyInfo (DER): the value for `tlsPin`, the same
 * as `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`.
 * (Node's `cert.pubkey` is the bare key for EC certificates, not the SPKI, so it is not used.)
 */
export function spkiPin(cert: { raw: Buffer } | tls.PeerCertificate): string {
  const spki = new X509Certificate(cert.raw).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

type ConnCb = (err: Error | null, socket?: net.Socket) => void;
type CreateConnection = (options: Record<string, unknown>, cb: ConnCb) => net.Socket | undefined;

const refuseSecondLookup = (_h: string, _o: unknown, cb: (err: Error) => void): void => {
  cb(new KluisError('E_EGRESS_RANGE', 'a second DNS lookup was attempted and refused'));
};

function guardConnections(agent: http.Agent, base: CreateConnection, opts: GuardedAgentOptions, scheme: 'http' | 'https'): void {
  const guarded: CreateConnection = function (this: http.Agent, options, cb) {
    const rawHost = String(options.host ?? options.hostname ?? 'localhost');
    const host = normaliseHost(rawHost);
    const plaintextPassword = scheme === 'http' && !!opts.plaintextPassword;
    if (scheme === 'http' && opts.guard.targetClass === 'cloud') {
      cb(opts.guard.refuse('E_EGRESS_PLAINTEXT', 'cloud targets must use https', { host }));
      return undefined;
    }
    opts.guard.resolveAndCheck(host, { plaintextPassword }).then(
      (addrs) => {
        const addr = addrs[0]!;
        const connectOpts: Record<string, unknown> = {
          ...options,
          host: addr.address,
          lookup: refuseSecondLookup,
        };
        if (scheme === 'https') connectOpts.servername = net.isIP(host) ? undefined : host;
        // Verification uses servername || host: the original name, or the literal IP.
        if (scheme === 'https' && net.isIP(host)) connectOpts.host = addr.address;
        let sock: net.Socket | undefined;
        try {
          sock = base.call(this, connectOpts, cb);
        } catch (err) {
          cb(err as Error);
          return;
        }
        if (sock) {
          if (opts.socketTimeoutMs) sock.setTimeout(opts.socketTimeoutMs, () => sock!.destroy(Object.assign(new Error('socket idle timeout'), { code: 'ETIMEDOUT' })));
          cb(null, sock);
        }
      },
      (err: unknown) => cb(err as Error),
    );
    return undefined;
  };
  (agent as unknown as { createConnection: CreateConnection }).createConnection = guarded;
}

export function createGuardedAgents(opts: GuardedAgentOptions): GuardedAgents {
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  guardConnections(
    httpAgent,
    (http.Agent.prototype as unknown as { createConnection: CreateConnection }).createConnection ??
      ((o: Record<string, unknown>) => net.createConnection(o as unknown as net.NetConnectOpts)),
    opts,
    'http',
  );
  const httpsAgent = new https.Agent({
    keepAlive: true,
    maxSockets: 8,
    rejectUnauthorized: true,
    ...(opts.ca ? { ca: opts.ca } : {}),
    checkServerIdentity: (host: string, cert: tls.PeerCertificate): Error | undefined => {
      const e = tls.checkServerIdentity(host, cert);
      if (e) return e;
      if (opts.tlsPin) {
        const got = spkiPin(cert);
        if (got !== opts.tlsPin) {
          return opts.guard.refuse('E_EGRESS_PIN', `TLS public key ${got} is not the pinned ${opts.tlsPin}`, { host });
        }
      }
      return undefined;
    },
  });
  guardConnections(
    httpsAgent,
    (https.Agent.prototype as unknown as { createConnection: CreateConnection }).createConnection,
    opts,
    'https',
  );
  return {
    httpAgent,
    httpsAgent,
    destroy() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/** True for errors that mean "the server or network is not there (now)": worth retrying later. */
export function isNetworkError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return (
    typeof code === 'string' &&
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'ECONNABORTED',
      'EPIPE',
      'ETIMEDOUT',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'ENETDOWN',
      'EHOSTDOWN',
      'EAI_AGAIN',
      'ENOTFOUND',
      'ERR_STREAM_PREMATURE_CLOSE',
      'UND_ERR_SOCKET',
    ].includes(code)
  );
}

/** True for TLS verification failures (wrong CA, name, expired): not retryable, an admin matter. */
export function isTlsError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  return /CERT|SELF_SIGNED|ERR_TLS|UNABLE_TO_VERIFY|ALTNAME/.test(code);
}

/** Finds a KluisError anywhere on the cause chain (the SDK wraps what the agent threw). */
export function findKluisError(err: unknown): KluisError | undefined {
  let e: unknown = err;
  for (let i = 0; i < 6 && e; i++) {
    if (e instanceof KluisError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export function unreachable(target: string, err: unknown, what: string): KluisError {
  return new KluisError('E_TARGET_UNREACHABLE', `target ${target}: ${what}: ${(err as Error).message || (err as { code?: string }).code}`, {
    hint: 'the server or network is down; queued uploads are retried later',
    cause: err,
    details: { retryable: true },
  });
}

export function tlsFailure(target: string, err: unknown): KluisError {
  return new KluisError('E_TARGET_TLS', `target ${target}: TLS verification failed: ${(err as Error).message}`, {
    hint: 'for an own server with a self-signed certificate set caFile in the target config; check the host name in the URL',
    cause: err,
    details: { retryable: false },
  });
}

export interface SendRequest {
  method: string;
  url: URL;
  headers?: Record<string, string | number>;
  /** A buffer, or a stream piped with backpressure (Content-Length must be set for streams). */
  body?: Buffer | string | Readable;
}

/**
 * One request through the guarded agents. Resolves with the response (its body not yet read);
 * a 3xx is refused as E_EGRESS_REDIRECT. Network failures reject with the raw Node error; the
 * target maps it.
 */
export function send(agents: GuardedAgents, guard: EgressGuard, req: SendRequest): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    const mod = req.url.protocol === 'https:' ? https : http;
    const r = mod.request(
      req.url,
      {
        method: req.method,
        headers: req.headers,
        agent: req.url.protocol === 'https:' ? agents.httpsAgent : agents.httpAgent,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && status !== 304) {
          res.resume();
          fail(
            guard.refuse('E_EGRESS_REDIRECT', `server answered ${status} redirect to ${res.headers.location ?? '(no location)'}`, {
              host: req.url.hostname,
            }),
          );
          return;
        }
        if (settled) {
          res.resume();
          return;
        }
        settled = true;
        resolve(res);
      },
    );
    r.on('error', fail);
    const body = req.body;
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) {
      r.end(body);
    } else {
      pipeline(body, r).catch((err: unknown) => {
        r.destroy(err as Error);
        fail(err);
      });
    }
  });
}

/** Reads a (small) response body, refusing more than `limit` bytes. */
export async function readBody(res: http.IncomingMessage, limit = 32 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > limit) {
      res.destroy();
      throw new KluisError('E_TARGET_IO', `response larger than ${limit} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
