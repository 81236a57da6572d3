/** Real servers on loopback and small assertions shared by the intake tests. */
import type dns from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { JobError } from '../../lib/errors.ts';
import type { LookupFunction } from '../../lib/intake/index.ts';

export const FIXTURES = new URL('../../../shared/fixtures/images/', import.meta.url);

export interface TestServer {
  port: number;
  /** Base URL, e.g. http://127.0.0.1:PORT */
  origin: string;
  /** TCP connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

/** Listens on a free port of `host`, counting connections; close() also drops open sockets. */
async function listen(server: net.Server, host: string, origin: (port: number) => string): Promise<TestServer> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: origin(port),
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An HTTP server on 127.0.0.1 (or `host`) with the given handler. */
export function startHttpServer(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
  host = '127.0.0.1',
): Promise<TestServer> {
  return listen(http.createServer(handler), host, (port) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`);
}

/**
 * A trap: a raw TCP listener that counts connections and never answers.
 * Listening on `::` (dual stack) means any local address reaches it: 127.x,
 * ::1, ::ffff:127.0.0.1, 0.0.0.0 and the machine's own interface addresses.
 */
export async function startTrap(host = '::'): Promise<TestServer & { peers: string[] }> {
  const peers: string[] = [];
  const server = net.createServer((socket) => {
    peers.push(`${socket.remoteAddress} -> ${socket.localAddress}`);
    socket.destroy();
  });
  const handle = await listen(server, host, (port) => `http://127.0.0.1:${port}`);
  return Object.assign(handle, { peers });
}

/** A resolver answering from a table (names missing from it: ENOTFOUND); counts calls per name. */
export function tableLookup(table: Record<string, string | string[] | ((call: number) => string[])>): LookupFunction & {
  calls: Map<string, number>;
} {
  const calls = new Map<string, number>();
  const lookup = ((hostname: string, _options: dns.LookupAllOptions, callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void) => {
    const n = (calls.get(hostname) ?? 0) + 1;
    calls.set(hostname, n);
    const entry = table[hostname.toLowerCase().replace(/\.$/, '')]; // as a resolver would
    if (entry === undefined) {
      const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
      setImmediate(() => callback(err, []));
      return;
    }
    const list = typeof entry === 'function' ? entry(n) : Array.isArray(entry) ? entry : [entry];
    setImmediate(() => callback(null, list.map((address) => ({ address, family: net.isIP(address) }))));
  }) as LookupFunction & { calls: Map<string, number> };
  lookup.calls = calls;
  return lookup;
}

/** Await a promise that must reject with a JobError of this code; returns the error. */
export async function expectJobError(promise: Promise<unknown>, code: string): Promise<JobError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected JobError ${code}, got success`).toBeDefined();
  expect(caught).toBeInstanceOf(JobError);
  expect((caught as JobError).code, (caught as Error).message).toBe(code);
  return caught as JobError;
}

/** Synchronous variant. */
export function expectJobErrorSync(fn: () => unknown, code: string): JobError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected JobError ${code}, got success`).toBeDefined();
  expect(caught).toBeInstanceOf(JobError);
  expect((caught as JobError).code, (caught as Error).message).toBe(code);
  return caught as JobError;
}
