/**
 * Job lifecycle edges over real HTTP: cancel (queued and running), the
 * blocking limit, back-pressure, and multipart uploads.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, expect, test } from 'vitest';
import { createLogger } from '../../lib/logger.ts';
import { createDaemon, type Daemon } from '../../worker/daemon.ts';
import type { Engine } from '../../worker/engine.ts';
import { fixtureImage, startImageServer, type ImageServer } from '../support/image-server.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { createTestEngine } from '../support/test-engine.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(options: Parameters<typeof startTestService>[0]): Promise<{ svc: TestService; images: ImageServer }> {
  const images = await startImageServer();
  const svc = await startTestService(options);
  cleanups.push(() => images.close(), () => svc.stop());
  return { svc, images };
}

function startDaemon(svc: TestService, engines: Engine[]): Daemon {
  const daemon = createDaemon(svc.core, svc.config, { engines, log: createLogger('silent'), version: 'test' });
  cleanups.unshift(() => daemon.stop());
  return daemon;
}

const swapBody = (images: ImageServer) => JSON.stringify({ base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg') });
const postJson = (svc: TestService, p: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${svc.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

test('cancel a queued job: it is never run', async () => {
  const { svc, images } = await setup({ noWorker: true });
  const { job_id } = await (await postJson(svc, '/face-swap', swapBody(images))).json();
  const cancel = await fetch(`${svc.url}/job/${job_id}/cancel`, { method: 'POST' });
  expect(cancel.status).toBe(200);
  expect(await cancel.json()).toEqual({ success: true, job_id, status: 'canceled', message: 'Job was canceled' });
  const again = await fetch(`${svc.url}/job/${job_id}/cancel`, { method: 'POST' });
  expect(again.status).toBe(409);
  expect((await again.json()).error.code).toBe('job_finished');

  const engine = createTestEngine();
  await startDaemon(svc, [engine]).start();
  // A job created now runs and completes: the daemon is pulling, yet it never ran the canceled one.
  const { job_id: other } = await (await postJson(svc, '/face-swap', swapBody(images), { prefer: 'wait=30' })).json();
  expect((await svc.core.store.get(other))?.status).toBe('completed');
  expect(engine.runs).toBe(1);
  expect((await (await fetch(`${svc.url}/job/${job_id}`)).json()).status).toBe('canceled');
});

test('cancel a running job: the engine is aborted between steps and nothing is stored', async () => {
  let aborted = false;
  const engine = createTestEngine({ steps: 200, stepMs: 25 });
  const run = engine.run.bind(engine);
  engine.run = async (inputs, params, ctx) => {
    ctx.signal.addEventListener('abort', () => (aborted = true));
    return run(inputs, params, ctx);
  };
  const { svc, images } = await setup({ engines: [engine] });
  const { job_id } = await (await postJson(svc, '/face-swap', swapBody(images))).json();
  let seen = false;
  for (let i = 0; i < 100 && !seen; i++) {
    const s = await (await fetch(`${svc.url}/job/${job_id}`)).json();
    seen = s.status === 'processing' && s.progress > 0;
    if (!seen) await new Promise((r) => setTimeout(r, 50));
  }
  expect(seen).toBe(true);
  const cancel = await fetch(`${svc.url}/job/${job_id}/cancel`, { method: 'POST' });
  expect((await cancel.json()).status).toBe('canceled');
  for (let i = 0; i < 40 && !aborted; i++) await new Promise((r) => setTimeout(r, 50));
  expect(aborted).toBe(true);
  await new Promise((r) => setTimeout(r, 300));
  const row = await svc.core.store.get(job_id);
  expect(row?.status).toBe('canceled');
  expect(row?.result_urls).toBeNull();
  await expect(fs.readdir(path.join(svc.dataDir, 'files', 'results', job_id))).rejects.toThrow();
});

test('a blocking call that runs out of time answers 202 with the job, not an error', async () => {
  const { svc, images } = await setup({
    engines: [createTestEngine({ name: 'replicate', task: 'cartoonify', steps: 40, stepMs: 50 })],
    env: { SYNC_TIMEOUT_S: '1' },
  });
  const started = Date.now();
  const res = await postJson(svc, '/cartoonify-only', JSON.stringify({ image_url: images.url('obama.jpg') }));
  const elapsed = Date.now() - started;
  expect(elapsed).toBeGreaterThanOrEqual(900); // it did wait for SYNC_TIMEOUT_S
  expect(elapsed).toBeLessThan(5_000);
  expect(res.status).toBe(202);
  const body = await res.json();
  expect(body).toMatchObject({ success: true, job_id: expect.any(String), status: expect.stringMatching(/queued|processing/) });
});

test('a full queue answers 429 with Retry-After', async () => {
  const { svc, images } = await setup({ noWorker: true, env: { MAX_QUEUE_DEPTH: '2' } });
  for (let i = 0; i < 2; i++) expect((await postJson(svc, '/face-swap', swapBody(images))).status).toBe(202);
  await new Promise((r) => setTimeout(r, 1_100)); // the depth is re-counted at most once a second
  const full = await postJson(svc, '/face-swap', swapBody(images));
  expect(full.status).toBe(429);
  expect(full.headers.get('retry-after')).toBe('30');
  expect((await full.json()).error.code).toBe('queue_full');
});

test('multipart uploads: files under the same field names, validated, stored without metadata', async () => {
  const { svc, images } = await setup({ engines: [createTestEngine()] });
  const form = new FormData();
  form.set('base_image', new Blob([await fs.readFile(fixtureImage('obama.jpg'))], { type: 'image/jpeg' }), 'obama.jpg');
  form.set('face_image_url', images.url('biden.jpg'));
  form.set('swap_all', 'true');
  form.set('mask_blur', '20');
  const res = await fetch(`${svc.url}/face-swap`, { method: 'POST', body: form, headers: { prefer: 'wait=30' } });
  const body = await res.json();
  expect(res.status).toBe(200);
  const result = await sharp(Buffer.from(await (await fetch(body.result_url)).arrayBuffer())).metadata();
  const original = await sharp(fixtureImage('obama.jpg')).metadata();
  expect([result.width, result.height]).toEqual([original.width, original.height]);
  const row = (await svc.core.store.get(body.job_id))!;
  expect(row.params).toMatchObject({ swap_all: true, mask_blur: 20 });
  const stored = await svc.core.storage.get((row.input.base as { upload: string }).upload);
  expect(stored?.contentType).toBe('image/jpeg');
  expect((await sharp(stored!.bytes).metadata()).exif).toBeUndefined();

  const gif = new FormData();
  gif.set('base_image', new Blob([Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'binary')], { type: 'image/jpeg' }), 'x.jpg');
  gif.set('face_image_url', images.url('biden.jpg'));
  const bad = await fetch(`${svc.url}/face-swap`, { method: 'POST', body: gif });
  expect(bad.status).toBe(415);
  expect((await bad.json()).error).toMatchObject({ code: 'image_unsupported', message: expect.stringContaining('base_image') });

  const both = new FormData();
  both.set('base_image', new Blob([await fs.readFile(fixtureImage('obama.jpg'))]), 'a.jpg');
  both.set('base_image_url', images.url('obama.jpg'));
  both.set('face_image_url', images.url('biden.jpg'));
  const conflict = await fetch(`${svc.url}/face-swap`, { method: 'POST', body: both });
  expect(conflict.status).toBe(400);
  expect((await conflict.json()).error.message).toContain('not both');
});

test('cartoon face swaps go only to daemons that have a cartoonify engine', async () => {
  const { svc, images } = await setup({ noWorker: true });
  const swapOnly = createTestEngine();
  const both = [createTestEngine(), createTestEngine({ name: 'replicate', task: 'cartoonify' })];
  const a = startDaemon(svc, [swapOnly]);
  const b = startDaemon(svc, both);
  await a.start();
  await b.start();
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await postJson(svc, '/face-swap-with-cartoon', swapBody(images), { prefer: 'respond-async' });
    ids.push((await res.json()).job_id);
  }
  for (const id of ids) {
    for (let i = 0; i < 200; i++) {
      if ((await svc.core.store.get(id))?.status === 'completed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await svc.core.store.get(id)).toMatchObject({ status: 'completed', daemon_id: b.id, attempt: 1 });
  }
  expect(swapOnly.runs).toBe(0);
});

test('NOTIFY wakes the daemon and the waiting request: no poll interval in the path', async () => {
  const { svc, images } = await setup({ noWorker: true });
  const daemon = createDaemon(svc.core, svc.config, {
    engines: [createTestEngine({ steps: 1, stepMs: 1 })],
    log: createLogger('silent'),
    version: 'test',
    // Fallback polls far longer than the test: only notifications can make it pass.
    pollingIntervalSeconds: 60,
    notifyPollingIntervalSeconds: 60,
  });
  cleanups.unshift(() => daemon.stop());
  await daemon.start();
  for (let i = 0; i < 3; i++) {
    const started = Date.now();
    const res = await postJson(svc, '/face-swap', swapBody(images), { prefer: 'wait=30' });
    expect(res.status).toBe(200);
    const { job_id } = await res.json();
    const row = (await svc.core.store.get(job_id))!;
    expect(new Date(row.started_at!).getTime() - new Date(row.created_at).getTime()).toBeLessThan(1_000);
    expect(Date.now() - started).toBeLessThan(3_000);
  }
});
