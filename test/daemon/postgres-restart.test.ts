/**
 * Postgres restarted under a running API and daemon: both recover without a
 * restart of their own. This file runs its own Postgres so that stopping it
 * does not disturb the other test files.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../lib/db/embedded.ts';
import { startImageServer, type ImageServer } from '../support/image-server.ts';
import { freePort, startTestService, type TestService } from '../support/service.ts';
import { createTestEngine } from '../support/test-engine.ts';

let pgDir: string;
let pgPort: number;
let pg: EmbeddedPostgresHandle;
let svc: TestService;
let images: ImageServer;

beforeAll(async () => {
  pgDir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceswap-restart-pg-'));
  pgPort = await freePort();
  pg = await startEmbeddedPostgres({ dataDir: pgDir, port: pgPort });
  images = await startImageServer();
  svc = await startTestService({ engines: [createTestEngine()], env: { DATABASE_URL: pg.url } });
});
afterAll(async () => {
  await svc?.stop();
  await pg?.stop();
  await images?.close();
  await fs.rm(pgDir, { recursive: true, force: true });
});

async function swap(): Promise<Response> {
  return fetch(`${svc.url}/face-swap`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', prefer: 'wait=30' },
    body: JSON.stringify({ base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg') }),
  });
}

test('API and daemon survive a Postgres restart', async () => {
  expect((await swap()).status).toBe(200);

  await pg.stop();
  const down = await fetch(`${svc.url}/health`);
  expect(down.status).toBe(503);
  expect((await down.json()).status).toBe('down');
  const refused = await swap();
  expect(refused.status).toBe(503);
  expect((await refused.json()).error.code).toBe('database_unavailable');

  pg = await startEmbeddedPostgres({ dataDir: pgDir, port: pgPort });
  let healthy = false;
  for (let i = 0; i < 100 && !healthy; i++) {
    healthy = (await fetch(`${svc.url}/health`)).status === 200;
    if (!healthy) await new Promise((r) => setTimeout(r, 200));
  }
  expect(healthy).toBe(true);

  // A new job is accepted, picked up by the same daemon and completed; the blocking wait sees it through NOTIFY.
  const res = await swap();
  expect(res.status).toBe(200);
  expect((await res.json()).result_url).toContain('/files/results/');
}, 120_000);
