/**
 * A loopback TCP relay in front of a real server (Ceph RGW), so a test can take the "target"
 * down and bring it back on the same port without stopping the shared server itself.
 * `stop()` drops every connection and stops listening; `startRelay(to, samePort)` brings it back.
 */
import * as net from 'node:net';

export interface Relay {
  port: number;
  stop(): Promise<void>;
}

export async function startRelay(to: { host: string; port: number }, port = 0): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(to.port, to.host);
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', drop);
      s.on('close', drop);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.resetAndDestroy();
        server.close(() => resolve());
      }),
  };
}
