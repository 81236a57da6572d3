/**
 * The cartoon face swap end to end: HTTP API, Postgres queue and the
 * embedded daemon, with the Replicate cartoonify engine talking to the local
 * fake Replicate (which returns a real image rendered from what it was sent)
 * and the CPU landmark engine doing the swap on the fixture models. The
 * result lands in our storage and the job's progress shows both stages.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../../lib/config.ts';
import { FaceSwapParamsSchema, type FaceSwapParams } from '../../lib/jobs/params.ts';
import { createLogger } from '../../lib/logger.ts';
import type { Engine } from '../../worker/engine.ts';
import { createLandmarkEngine } from '../../worker/engines/landmark/index.ts';
import { createReplicateCartoonifyEngine } from '../../worker/engines/replicate/cartoonify.ts';
import { SCRFD_CONTRACT } from '../../worker/face/contracts.ts';
import { chooseFaces } from '../../worker/face/detect.ts';
import { createScrfdDetector } from '../../worker/face/scrfd.ts';
import { FIXTURE_MODEL, FIXTURE_MODEL_FILES, MODELS, testSessions } from '../face/fixtures.ts';
import { startFakeReplicate, type FakeReplicate } from '../support/fake-replicate.ts';
import { startImageServer, type ImageServer } from '../support/image-server.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { configFor, FAST, inputImage } from './helpers.ts';

const log = createLogger('silent');
let landmark: Engine<FaceSwapParams>;
let fake: FakeReplicate;
let images: ImageServer;
let svc: TestService;

beforeAll(async () => {
  fake = await startFakeReplicate();
  images = await startImageServer();
  const landmarkConfig = loadConfig({ MODELS_DIR: MODELS, MODEL_FILES: FIXTURE_MODEL_FILES.join(','), ONNX_PROVIDER: 'cpu', ONNX_THREADS: '1' });
  landmark = await createLandmarkEngine({ config: landmarkConfig, log });
  const cartoonify = await createReplicateCartoonifyEngine({ config: configFor(fake), log, tuning: FAST });
  expect(landmark.status().ready).toBe(true);
  svc = await startTestService({ engines: [landmark, cartoonify] });
});
afterAll(async () => {
  await svc?.stop();
  await images?.close();
  await fake?.close();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${svc.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

function sseEvents(text: string): Array<{ event: string; data: Record<string, any> }> {
  return [...text.matchAll(/event: (\w+)\ndata: (.*)\n/g)].map((m) => ({ event: m[1]!, data: JSON.parse(m[2]!) }));
}

describe('POST /face-swap-with-cartoon', () => {
  test('cartoonifies the face on Replicate, swaps it into the base on the CPU, stores the result, shows both stages', async () => {
    fake.reset();
    fake.scenario.maxSyncWaitS = 0; // poll, so the Replicate stage reports progress while the job runs
    fake.scenario.runMs = 800;
    const res = await post(
      '/face-swap-with-cartoon',
      { base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg') },
      { prefer: 'respond-async' }, // the endpoint blocks by default; we want to watch its progress
    );
    expect(res.status).toBe(202);
    const { job_id } = await res.json();

    const events = sseEvents(await (await fetch(`${svc.url}/job/${job_id}/events`)).text());
    const done = events.at(-1)!;
    expect(done).toMatchObject({ event: 'done', data: { status: 'completed', result_url: expect.any(String) } });
    const stages = events.map((e) => e.data.stage).filter(Boolean) as string[];
    expect(stages.some((s) => s.startsWith('cartoonify: replicate'))).toBe(true);
    expect(stages.some((s) => s.startsWith('swap: '))).toBe(true);
    expect(stages.findIndex((s) => s.startsWith('swap: '))).toBeGreaterThan(stages.findIndex((s) => s.startsWith('cartoonify: ')));

    // Replicate got the face image (biden.jpg, 'image' field) and nothing else.
    const [prediction] = [...fake.predictions.values()];
    expect(fake.predictions.size).toBe(1);
    const sent = Buffer.from(String(prediction!.input.image).replace(/^data:image\/\w+;base64,/, ''), 'base64');
    const bidenMeta = await sharp(await (await fetch(images.url('biden.jpg'))).arrayBuffer()).metadata();
    expect((await sharp(sent).metadata()).width).toBe(bidenMeta.width);

    // The result is ours, not a Replicate URL, and is the base photo with a changed face.
    const resultUrl = String(done.data.result_url);
    expect(resultUrl.startsWith(`${svc.url}/files/results/`)).toBe(true);
    expect(resultUrl).not.toContain(fake.origin);
    const file = await fetch(resultUrl);
    expect(file.status).toBe(200);
    const result = await sharp(Buffer.from(await file.arrayBuffer())).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const base = await sharp(await (await fetch(images.url('obama.jpg'))).arrayBuffer()).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([result.info.width, result.info.height]).toEqual([base.info.width, base.info.height]);
    // The base face's box, found independently with the fixture SCRFD detector; the swap may only
    // touch pixels inside twice that box (same centre), and must clearly change the face.
    const detSession = await testSessions().load(FIXTURE_MODEL.scrfd25, SCRFD_CONTRACT);
    const baseRgb = { data: new Uint8Array(base.data), width: base.info.width, height: base.info.height, channels: 3 as const };
    const [baseFace] = chooseFaces(await createScrfdDetector(detSession).detect(baseRgb));
    await detSession.release();
    const [bx1, by1, bx2, by2] = baseFace!.box;
    const cx = (bx1 + bx2) / 2, cy = (by1 + by2) / 2, bw = bx2 - bx1, bh = by2 - by1;
    const [ox1, oy1, ox2, oy2] = [cx - bw, cy - bh, cx + bw, cy + bh];
    let changedOutside = 0, changedInside = 0, inside = 0, changed = 0;
    for (let y = 0; y < base.info.height; y++) {
      for (let x = 0; x < base.info.width; x++) {
        const isInside = x >= ox1 && x < ox2 && y >= oy1 && y < oy2;
        if (isInside) inside++;
        for (let k = 0; k < 3; k++) {
          const i = (y * base.info.width + x) * 3 + k;
          if (result.data[i] !== base.data[i]) {
            if (isInside) changedInside++;
            else changedOutside++;
          }
          if (Math.abs(result.data[i]! - base.data[i]!) > 8) changed++;
        }
      }
    }
    expect(inside).toBeLessThan(0.5 * base.info.width * base.info.height); // most of the photo is outside (measured 27% inside)
    expect(changedOutside).toBe(0); // bit-identical outside
    // Measured: 21% of the channel values inside the doubled box differ (0 outside); half of that is required.
    expect(changedInside / (inside * 3)).toBeGreaterThan(0.1); // the face changed

    // And the face that went in was the cartoon: a swap of the plain photo gives a different face.
    const plain = await landmark.run(
      { base: await inputImage('obama.jpg'), face: await inputImage('biden.jpg') },
      FaceSwapParamsSchema.parse({ engine: 'landmark' }),
      { signal: new AbortController().signal, progress: () => undefined, log },
    );
    const plainImage = plain.images[0]!;
    if (plainImage.kind !== 'raw') throw new Error('expected raw pixels from the landmark engine');
    let differs = 0;
    for (let i = 0; i < base.data.length; i++) if (Math.abs(result.data[i]! - plainImage.image.data[i]!) > 8) differs++;
    // Measured: 0.33 with the fake's cartoon; exactly 0 when the fake hands the photo back unchanged.
    expect(differs / changed).toBeGreaterThan(0.1);
  });
});

describe('POST /cartoonify-only', () => {
  test('blocks until done and answers with our stored copy of the Replicate output', async () => {
    fake.reset();
    const res = await post('/cartoonify-only', { image_url: images.url('astronaut_eileen_collins_nasa.png') }, { prefer: 'wait=60' });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ success: true, result_url: expect.stringContaining(`${svc.url}/files/results/`) });
    const stored = Buffer.from(await (await fetch(body.result_url)).arrayBuffer());
    const [prediction] = [...fake.predictions.values()];
    const fromReplicate = Buffer.from(await (await fetch(String(prediction!.output))).arrayBuffer());
    expect(stored.equals(fromReplicate)).toBe(true);
  });

  test('a failed prediction fails the job with provider_failed and Replicate\'s message', async () => {
    fake.reset();
    fake.scenario.outcome = 'failed';
    fake.scenario.error = 'NSFW content detected';
    const res = await post('/cartoonify-only', { image_url: images.url('astronaut_eileen_collins_nasa.png') }, { prefer: 'wait=60' });
    const body = await res.json();
    expect(body.success).toBe(false);
    expect(body.error).toMatchObject({ code: 'provider_failed', message: expect.stringContaining('NSFW content detected') });
  });
});

describe('without a Replicate token', () => {
  test('the cartoon endpoints answer 503 engine_unavailable naming the missing variable', async () => {
    const tokenless = await createReplicateCartoonifyEngine({ config: configFor(fake, { REPLICATE_API_TOKEN: undefined }), log });
    const other = await startTestService({ engines: [tokenless] });
    try {
      const health = await (await fetch(`${other.url}/health`)).json();
      expect(JSON.stringify(health)).toContain('REPLICATE_API_TOKEN is not set');
      for (const [path, body] of [
        ['/cartoonify-only', { image_url: images.url('obama.jpg') }],
        ['/face-swap-with-cartoon', { base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg') }],
      ] as const) {
        const res = await fetch(`${other.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        expect(res.status).toBe(503);
        const answer = await res.json();
        expect(answer.error.code).toBe('engine_unavailable');
      }
      const res = await fetch(`${other.url}/cartoonify-only`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image_url: images.url('obama.jpg') }),
      });
      expect((await res.json()).error.message).toContain('REPLICATE_API_TOKEN is not set');
    } finally {
      await other.stop();
    }
  });
});
