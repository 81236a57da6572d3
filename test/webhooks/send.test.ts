/**
 * Webhook delivery against real local servers: the host is resolved and
 * checked at delivery time (a name that resolves inside the network is
 * refused without a connection), non-2xx answers and slow receivers fail
 * as retryable.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { JobError } from '../../lib/errors.ts';
import type { LookupFunction } from '../../lib/intake/index.ts';
import { postWebhook } from '../../lib/webhooks/send.ts';

let server: http.Server;
let port: number;
let connections = 0;
const behaviour = { status: 204, hang: false };

beforeAll(async () => {
  server = http.createServer((_req, res) => {
    if (!behaviour.hang) res.writeHead(behaviour.status).end();
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));

/** A resolver that answers 127.0.0.1 for every name: a public-looking host that points inside. */
const toLoopback: LookupFunction = (_host, _options, callback) => callback(null, [{ address: '127.0.0.1', family: 4 }]);
const url = () => `http://hooks.example.com:${port}/hook`;
const policy = { allowHosts: [], allowPrivate: false, timeoutMs: 500, lookup: toLoopback };

test('a host that resolves to a loopback address at delivery is refused before any connection', async () => {
  connections = 0;
  await expect(postWebhook(url(), {}, '{}', policy)).rejects.toMatchObject({ code: 'url_forbidden' });
  expect(connections).toBe(0);
});

test('with WEBHOOK_ALLOW_PRIVATE the same target is delivered to', async () => {
  connections = 0;
  behaviour.status = 204;
  await expect(postWebhook(url(), {}, '{}', { ...policy, allowPrivate: true })).resolves.toBe(204);
  expect(connections).toBe(1);
});

test('a non-2xx answer and a receiver that never answers are retryable failures', async () => {
  behaviour.status = 503;
  const refused = await postWebhook(url(), {}, '{}', { ...policy, allowPrivate: true }).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(JobError);
  expect(refused).toMatchObject({ code: 'webhook_failed', retryable: true, status: 503 });

  behaviour.hang = true;
  const started = Date.now();
  const slow = await postWebhook(url(), {}, '{}', { ...policy, allowPrivate: true }).catch((e: unknown) => e);
  behaviour.hang = false;
  expect(slow).toMatchObject({ code: 'webhook_failed', retryable: true });
  expect(Date.now() - started).toBeLessThan(2_000);
});
