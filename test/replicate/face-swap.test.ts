/**
 * The optional Replicate face-swap engine against the local fake Replicate:
 * readiness, both images reaching the configured input fields, and the
 * shared error handling.
 */
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { InputImage } from '../../lib/images/raw.ts';
import type { Engine } from '../../worker/engine.ts';
import { createReplicateFaceSwapEngine } from '../../worker/engines/replicate/face-swap.ts';
import { cartoonRendering, FAKE_REPLICATE_VERSION, startFakeReplicate, type FakeReplicate } from '../support/fake-replicate.ts';
import { configFor, context, FAST, inputImage, rejection, silentLog } from './helpers.ts';

let fake: FakeReplicate;
let base: InputImage;
let face: InputImage;
const engines: Engine[] = [];

beforeAll(async () => {
  fake = await startFakeReplicate();
  base = await inputImage('astronaut_eileen_collins_nasa.png', { width: 256 });
  face = await inputImage('biden.jpg', { width: 200, format: 'jpeg' });
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((engine) => engine.close?.()));
  fake.reset();
});
afterAll(async () => {
  await fake.close();
});

async function engine(env: Record<string, string | undefined> = {}): Promise<Engine> {
  const created = await createReplicateFaceSwapEngine({
    config: configFor(fake, { REPLICATE_FACESWAP_MODEL: 'someone/face-swap', ...env }),
    log: silentLog,
    tuning: FAST,
  });
  engines.push(created);
  return created;
}

describe('readiness', () => {
  it('is not ready without a model or a token, naming what is missing', async () => {
    expect((await engine({ REPLICATE_FACESWAP_MODEL: undefined })).status()).toEqual({
      ready: false,
      detail: 'REPLICATE_FACESWAP_MODEL is not set',
    });
    expect((await engine({ REPLICATE_API_TOKEN: undefined })).status()).toEqual({
      ready: false,
      detail: 'REPLICATE_API_TOKEN is not set',
    });
    const neither = await engine({ REPLICATE_API_TOKEN: undefined, REPLICATE_FACESWAP_MODEL: undefined });
    expect(neither.status()).toEqual({ ready: false, detail: 'REPLICATE_API_TOKEN and REPLICATE_FACESWAP_MODEL are not set' });
    expect((await rejection(neither.run({ base, face }, {}, context()))).code).toBe('engine_unavailable');
    expect(fake.requests).toHaveLength(0);
  });

  it('is a remote face_swap engine named replicate', async () => {
    const e = await engine();
    expect([e.name, e.task, e.device, e.status().ready]).toEqual(['replicate', 'face_swap', 'remote', true]);
  });
});

describe('runs', () => {
  it('sends the base and the face to the configured fields and returns the result image', async () => {
    const e = await engine({
      REPLICATE_FACESWAP_BASE_FIELD: 'target_image',
      REPLICATE_FACESWAP_FACE_FIELD: 'swap_image',
      REPLICATE_FACESWAP_EXTRA_INPUT: '{"request_id":"test"}',
    });
    const out = await e.run({ base, face }, { output_format: 'png' }, context());
    const [p] = [...fake.predictions.values()];
    expect(p!.version).toBe(FAKE_REPLICATE_VERSION);
    expect(p!.input.target_image).toBe(`data:image/png;base64,${base.bytes.toString('base64')}`);
    expect(p!.input.swap_image).toBe(`data:image/jpeg;base64,${face.bytes.toString('base64')}`);
    expect(p!.input.request_id).toBe('test');
    const image = out.images[0]!;
    if (image.kind !== 'encoded') throw new Error('expected encoded bytes');
    // The fake renders its first image input, the base photo here.
    expect(image.bytes.equals(await cartoonRendering(base.bytes))).toBe(true);
    expect((await sharp(image.bytes).metadata()).width).toBe(base.width);
  });

  it('needs both images', async () => {
    const e = await engine();
    expect((await rejection(e.run({ base }, {}, context()))).code).toBe('invalid_input');
  });

  it('a failed prediction is provider_failed', async () => {
    fake.scenario.outcome = 'failed';
    fake.scenario.error = 'no face detected in swap_image';
    const e = await engine();
    const error = await rejection(e.run({ base, face }, {}, context()));
    expect(error.code).toBe('provider_failed');
    expect(error.message).toContain('no face detected in swap_image');
  });
});
