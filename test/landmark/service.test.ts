/**
 * The real engines, loaded by the daemon's registry from the fixture models,
 * behind the real API: a face swap end to end, and /health telling which
 * engines are not ready and why.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createLogger } from '../../lib/logger.ts';
import { loadEngines } from '../../worker/engines/registry.ts';
import { createScrfdDetector } from '../../worker/face/scrfd.ts';
import { SCRFD_CONTRACT } from '../../worker/face/contracts.ts';
import { FIXTURE_MODEL, FIXTURE_MODEL_FILES, loadRgb, MODELS, testSessions } from '../face/fixtures.ts';
import { startImageServer, type ImageServer } from '../support/image-server.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { loadConfig } from '../../lib/config.ts';

let svc: TestService;
let images: ImageServer;
const env = { MODELS_DIR: MODELS, MODEL_FILES: FIXTURE_MODEL_FILES.join(','), ONNX_THREADS: '2' };

beforeAll(async () => {
  images = await startImageServer();
  const engines = await loadEngines(loadConfig(env), createLogger('silent'));
  svc = await startTestService({ engines, env });
});
afterAll(async () => {
  await svc?.stop();
  await images?.close();
});

test('/health: landmark ready; diffusion and replicate not ready, each saying why', async () => {
  const health = await (await fetch(`${svc.url}/health`)).json();
  expect(health.engines['face_swap:landmark']).toMatchObject({ ready: true, daemons: 1 });
  expect(health.engines['face_swap:diffusion']).toMatchObject({ ready: false, detail: expect.stringContaining('missing model files') });
  expect(health.engines['face_swap:diffusion'].detail).toContain('unet');
  expect(health.engines['cartoonify:replicate']).toMatchObject({ ready: false, detail: expect.stringContaining('REPLICATE_API_TOKEN') });

  const cartoon = await fetch(`${svc.url}/cartoonify-only`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image_url: images.url('obama.jpg') }),
  });
  expect(cartoon.status).toBe(503);
  expect((await cartoon.json()).error).toMatchObject({ code: 'engine_unavailable', message: expect.stringContaining('REPLICATE_API_TOKEN') });
});

test('POST /face-swap with the default engine swaps the face and leaves the rest of the photo untouched', async () => {
  const res = await fetch(`${svc.url}/face-swap`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', prefer: 'wait=60' },
    body: JSON.stringify({ base_image_url: images.url('biden.jpg'), face_image_url: images.url('obama.jpg') }),
  });
  expect(res.status).toBe(200);
  const { result_url, job_id } = await res.json();
  const row = await svc.core.store.get(job_id);
  expect(row).toMatchObject({ engine: 'landmark', status: 'completed' });

  const out = await sharp(Buffer.from(await (await fetch(result_url)).arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
  const base = await loadRgb('biden.jpg');
  expect([out.info.width, out.info.height, out.info.channels]).toEqual([base.width, base.height, 3]);

  // Outside twice the base face's box nothing changed; inside, the face did.
  const sessions = testSessions();
  const [face] = await createScrfdDetector(await sessions.load(FIXTURE_MODEL.scrfd25, SCRFD_CONTRACT)).detect(base);
  const [x1, y1, x2, y2] = face!.box;
  const cx = (x1 + x2) / 2, cy = (y1 + y2) / 2, hw = x2 - x1, hh = y2 - y1;
  let outsideChanged = 0, insideChanged = 0, inside = 0;
  for (let y = 0; y < base.height; y++) {
    for (let x = 0; x < base.width; x++) {
      const i = (y * base.width + x) * 3;
      const changed = out.data[i] !== base.data[i] || out.data[i + 1] !== base.data[i + 1] || out.data[i + 2] !== base.data[i + 2];
      if (Math.abs(x - cx) > hw || Math.abs(y - cy) > hh) outsideChanged += changed ? 1 : 0;
      else {
        inside++;
        insideChanged += changed ? 1 : 0;
      }
    }
  }
  expect(outsideChanged).toBe(0);
  expect(insideChanged / inside).toBeGreaterThan(0.1);
});
