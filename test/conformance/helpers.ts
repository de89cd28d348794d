/**
 * Helpers for the target conformance suite: deterministic bodies (AES-CTR keystream from a seed,
 * so any size streams without being held in memory), and a loopback TCP relay that can be "pulled
 * out" mid-upload to play a server going down.
 */
import { createCipheriv, createHash } from 'node:crypto';
import * as net from 'node:net';
import { Readable } from 'node:stream';

const CHUNK = 64 * 1024;

export interface BodyOptions {
  /** Fail the stream with this error once this many bytes were produced. */
  failAfter?: number;
  /** Called once when this many bytes were produced. */
  onBytes?: { at: number; fn: () => void };
}

export function body(seed: string, size: number, opts: BodyOptions = {}): Readable {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  let sent = 0;
  let fired = false;
  return new Readable({
    read() {
      if (opts.failAfter !== undefined && sent >= opts.failAfter) {
        this.destroy(new Error('body source failed on purpose (test)'));
        return;
      }
      if (opts.onBytes && !fired && sent >= opts.onBytes.at) {
        fired = true;
        opts.onBytes.fn();
      }
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK, size - sent);
      sent += n;
      this.push(cipher.update(zeros.subarray(0, n)));
    },
  });
}

export async function sha256Of(s: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return h.digest('hex');
}

export async function bodySha(seed: string, size: number): Promise<string> {
  return sha256Of(body(seed, size));
}

/** A TCP relay on 127.0.0.1:0 to `to`; `kill()` drops every connection and stops listening. */
export async function relay(to: { host: string; port: number }): Promise<{ port: number; kill: () => void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(to.port, to.host);
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    kill() {
      server.close();
      for (const s of sockets) s.resetAndDestroy();
    },
  };
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
