/**
 * The Replicate cartoonify engine through the official `replicate` client
 * against the local fake Replicate server: success (sync wait and polling),
 * inputs inline and uploaded, failures, cancellation, timeouts, retries and
 * malformed answers, each ending in the right output or JobError code.
 */
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JobError } from '../../lib/errors.ts';
import type { InputImage } from '../../lib/images/raw.ts';
import type { Engine } from '../../worker/engine.ts';
import { createReplicateCartoonifyEngine } from '../../worker/engines/replicate/cartoonify.ts';
import { cartoonRendering, FAKE_REPLICATE_VERSION, startFakeReplicate, type FakeReplicate } from '../support/fake-replicate.ts';
import { configFor, context, FAST, inputImage, rejection, silentLog } from './helpers.ts';

let fake: FakeReplicate;
let face: InputImage;
const engines: Engine[] = [];

beforeAll(async () => {
  fake = await startFakeReplicate();
  face = await inputImage('obama.jpg', { width: 240, format: 'jpeg' });
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((engine) => engine.close?.()));
  fake.reset();
});
afterAll(async () => {
  await fake.close();
});

async function engine(env: Record<string, string | undefined> = {}, tuning = FAST): Promise<Engine> {
  const created = await createReplicateCartoonifyEngine({ config: configFor(fake, env), log: silentLog, tuning });
  engines.push(created);
  return created;
}

function onlyPrediction() {
  const all = [...fake.predictions.values()];
  return all[all.length - 1]!;
}

describe('readiness', () => {
  it('is not ready without a token, and refuses to run instead of crashing', async () => {
    const e = await engine({ REPLICATE_API_TOKEN: undefined });
    expect(e.name).toBe('replicate');
    expect(e.task).toBe('cartoonify');
    expect(e.device).toBe('remote');
    expect(e.status()).toEqual({ ready: false, detail: 'REPLICATE_API_TOKEN is not set' });
    const error = await rejection(e.run({ image: face }, {}, context()));
    expect(error).toBeInstanceOf(JobError);
    expect(error.code).toBe('engine_unavailable');
    expect(fake.requests).toHaveLength(0);
  });

  it('is ready with a token and names its model', async () => {
    const e = await engine();
    expect(e.status().ready).toBe(true);
    expect(e.status().detail).toContain('catacolabs/cartoonify');
  });
});

describe('successful predictions', () => {
  it('returns the output image as bytes after a sync wait', async () => {
    const e = await engine();
    const ctx = context();
    const out = await e.run({ image: face }, { output_format: 'png' }, ctx);

    expect(out.images).toHaveLength(1);
    const image = out.images[0]!;
    if (image.kind !== 'encoded') throw new Error('expected encoded bytes');
    expect(image.contentType).toBe('image/png');
    // The fake renders the very image we sent: same size, and exactly its rendering.
    const meta = await sharp(image.bytes).metadata();
    expect([meta.width, meta.height]).toEqual([face.width, face.height]);
    expect(image.bytes.equals(await cartoonRendering(face.bytes))).toBe(true);

    const p = onlyPrediction();
    expect(p.version).toBe(configFor(fake).REPLICATE_CARTOONIFY_MODEL.split(':')[1]);
    expect(p.input.image).toBe(`data:image/jpeg;base64,${face.bytes.toString('base64')}`);
    const create = fake.requests.find((r) => r.route === 'predictions.create')!;
    expect(create.headers.prefer).toBe('wait=5');
    expect(create.headers.authorization).toBe(`Bearer ${fake.token}`);
    // The sync wait covered the whole run: no polling.
    expect(fake.count('predictions.get')).toBe(0);
    expect(fake.count('output')).toBe(1);
    expect(out.info).toMatchObject({ provider: 'replicate', prediction_id: p.id, output_width: face.width });
    expect(ctx.steps.at(-1)).toEqual({ fraction: 1, stage: 'replicate done' });
    expect(ctx.steps.map((s) => s.stage)).toContain('replicate download');
  });

  it('falls back to polling when the sync wait ends first, reporting progress from the logs', async () => {
    fake.scenario.maxSyncWaitS = 0;
    fake.scenario.runMs = 300;
    const e = await engine();
    const ctx = context();
    const out = await e.run({ image: face }, {}, ctx);
    expect(out.images[0]!.kind).toBe('encoded');
    expect(fake.count('predictions.get')).toBeGreaterThan(2);
    const stages = ctx.steps.map((s) => s.stage);
    expect(stages).toContain('replicate queued');
    expect(stages.some((s) => /^replicate processing \d+%$/.test(s))).toBe(true);
    const fractions = ctx.steps.map((s) => s.fraction);
    expect([...fractions].sort((a, b) => a - b)).toEqual(fractions);
  });

  it.each([
    ['a list of URLs', 'url-array' as const],
    ['a data: URI', 'data-uri' as const],
  ])('accepts output given as %s', async (_label, shape) => {
    fake.scenario.output = shape;
    const e = await engine();
    const out = await e.run({ image: face }, {}, context());
    const image = out.images[0]!;
    if (image.kind !== 'encoded') throw new Error('expected encoded bytes');
    expect(image.bytes.equals(await cartoonRendering(face.bytes))).toBe(true);
  });

  it('re-encodes to the requested output format', async () => {
    const e = await engine();
    const out = await e.run({ image: face }, { output_format: 'jpeg', output_quality: 80 }, context());
    const image = out.images[0]!;
    if (image.kind !== 'encoded') throw new Error('expected encoded bytes');
    expect(image.contentType).toBe('image/jpeg');
    expect((await sharp(image.bytes).metadata()).format).toBe('jpeg');
  });

  it('resolves owner/name to the latest version, once, and sends the configured input field and extra inputs', async () => {
    const e = await engine({
      REPLICATE_CARTOONIFY_MODEL: 'someone/toonify',
      REPLICATE_CARTOONIFY_INPUT_FIELD: 'input_image',
      REPLICATE_CARTOONIFY_EXTRA_INPUT: '{"prompt":"make it a cartoon","seed":7}',
    });
    await e.run({ image: face }, {}, context());
    await e.run({ image: face }, {}, context());
    expect(fake.count('models.get')).toBe(1);
    const p = onlyPrediction();
    expect(p.version).toBe(FAKE_REPLICATE_VERSION);
    expect(Object.keys(p.input).sort()).toEqual(['input_image', 'prompt', 'seed']);
    expect(p.input.prompt).toBe('make it a cartoon');
  });

  it('uploads large images through the Files API and deletes them afterwards', async () => {
    const e = await engine({}, { ...FAST, dataUriMaxBytes: 1_000 });
    const out = await e.run({ image: face }, {}, context());
    await e.close?.();
    const image = out.images[0]!;
    if (image.kind !== 'encoded') throw new Error('expected encoded bytes');
    expect(image.bytes.equals(await cartoonRendering(face.bytes))).toBe(true);
    const p = onlyPrediction();
    expect(String(p.input.image)).toMatch(new RegExp(`^${fake.url}/files/fakefile\\d+$`));
    const [file] = [...fake.files.values()];
    expect(file!.bytes.equals(face.bytes)).toBe(true);
    expect(file!.contentType).toBe('image/jpeg');
    expect(file!.deleted).toBe(true);
  });
});

describe('failed and cancelled predictions', () => {
  it('a failed prediction is a permanent provider_failed with Replicate\'s error text', async () => {
    fake.scenario.outcome = 'failed';
    fake.scenario.error = 'NSFW content detected in the input';
    const e = await engine();
    const error = await rejection(e.run({ image: face }, {}, context()));
    expect(error).toBeInstanceOf(JobError);
    expect(error.code).toBe('provider_failed');
    expect(error.message).toContain('NSFW content detected in the input');
    expect(error.retryable).toBe(false);
    expect(fake.count('output')).toBe(0);
  });

  it('a prediction cancelled on Replicate\'s side ends as canceled', async () => {
    fake.scenario.outcome = 'canceled';
    fake.scenario.maxSyncWaitS = 0;
    const e = await engine();
    const error = await rejection(e.run({ image: face }, {}, context()));
    expect(error.code).toBe('canceled');
  });

  it('cancelling the job while polling cancels the prediction on Replicate, promptly', async () => {
    fake.scenario.outcome = 'hang';
    fake.scenario.maxSyncWaitS = 0;
    const e = await engine();
    const ctx = context();
    const running = e.run({ image: face }, {}, ctx);
    await expect.poll(() => fake.count('predictions.get'), { timeout: 5_000 }).toBeGreaterThan(0);
    const abortedAt = Date.now();
    ctx.controller.abort();
    const error = await rejection(running);
    expect(Date.now() - abortedAt).toBeLessThan(1_000);
    expect(error.code).toBe('canceled');
    await e.close?.();
    const p = onlyPrediction();
    expect(fake.cancels).toEqual([p.id]);
    expect(p.status).toBe('canceled');
  });

  it('cancelling during the sync wait rejects at once and cancels the prediction once its id arrives', async () => {
    fake.scenario.outcome = 'hang';
    fake.scenario.maxSyncWaitS = 3;
    const e = await engine();
    const ctx = context();
    const running = e.run({ image: face }, {}, ctx);
    await expect.poll(() => fake.predictions.size, { timeout: 5_000 }).toBe(1);
    const abortedAt = Date.now();
    ctx.controller.abort();
    const error = await rejection(running);
    // Far less than the 3 s the create call is still held open for.
    expect(Date.now() - abortedAt).toBeLessThan(1_500);
    expect(error.code).toBe('canceled');
    expect(fake.cancels).toEqual([]);
    await e.close?.(); // waits for the create answer and the cancel it triggers
    expect(fake.cancels).toEqual([onlyPrediction().id]);
    expect(onlyPrediction().status).toBe('canceled');
  });

  it('a prediction slower than REPLICATE_TIMEOUT_S is provider_timeout, and is cancelled', async () => {
    fake.scenario.outcome = 'hang';
    const e = await engine({ REPLICATE_TIMEOUT_S: '1' }, { ...FAST, syncWaitS: 0.3 });
    const started = Date.now();
    const error = await rejection(e.run({ image: face }, {}, context()));
    const elapsed = Date.now() - started;
    expect(error.code).toBe('provider_timeout');
    expect(error.retryable).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(2_500);
    await e.close?.();
    expect(fake.cancels).toEqual([onlyPrediction().id]);
  });
});

describe('rate limits and server errors', () => {
  it('waits out a 429 with Retry-After, then succeeds', async () => {
    fake.scenario.inject = [{ route: 'predictions.create', status: 429, headers: { 'retry-after': '1' } }];
    const e = await engine();
    const started = Date.now();
    const out = await e.run({ image: face }, {}, context());
    expect(out.images).toHaveLength(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(fake.count('predictions.create')).toBe(2);
    expect(fake.predictions.size).toBe(1);
  });

  it('retries a 500 on create and on a poll, then succeeds', async () => {
    fake.scenario.maxSyncWaitS = 0;
    fake.scenario.inject = [
      { route: 'predictions.create', status: 500 },
      { route: 'predictions.get', status: 503, body: '<html>upstream unavailable</html>' },
    ];
    const e = await engine();
    const out = await e.run({ image: face }, {}, context());
    expect(out.images).toHaveLength(1);
    expect(fake.count('predictions.create')).toBe(2);
  });

  it('gives up after its retry budget with a retryable error, without multiplying requests', async () => {
    fake.scenario.inject = [{ route: 'predictions.create', status: 502, times: 100 }];
    const e = await engine();
    const error = await rejection(e.run({ image: face }, {}, context()));
    expect(error).toBeInstanceOf(JobError);
    expect(error.code).toBe('provider_unavailable');
    expect(error.retryable).toBe(true);
    expect(error.status).toBe(502);
    // maxRetries 3 in the FAST tuning: exactly four attempts reach the server.
    expect(fake.count('predictions.create')).toBe(4);
  });

  it('a Retry-After longer than the budget gives up at once, passing the wait on to the queue', async () => {
    fake.scenario.inject = [{ route: 'predictions.create', status: 429, headers: { 'retry-after': '120' }, times: 100 }];
    const e = await engine();
    const started = Date.now();
    const error = await rejection(e.run({ image: face }, {}, context()));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error.code).toBe('provider_rate_limited');
    expect(error.retryable).toBe(true);
    expect(error.retryAfter).toBe(120);
    expect(fake.count('predictions.create')).toBe(1);
  });

  it('an unreachable Replicate is provider_unavailable (retryable)', async () => {
    const closed = await startFakeReplicate();
    const url = closed.url;
    await closed.close();
    const created = await createReplicateCartoonifyEngine({
      config: configFor(fake, { REPLICATE_BASE_URL: url }),
      log: silentLog,
      tuning: FAST,
    });
    engines.push(created);
    const error = await rejection(created.run({ image: face }, {}, context()));
    expect(error.code).toBe('provider_unavailable');
    expect(error.retryable).toBe(true);
  });
});

describe('refusals and malformed answers', () => {
  it('a wrong token is provider_unauthorized (permanent)', async () => {
    const e = await engine({ REPLICATE_API_TOKEN: 'r8_wrong' });
    const error = await rejection(e.run({ image: face }, {}, context()));
    expect(error.code).toBe('provider_unauthorized');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('valid authentication token');
  });

  it('a 422 is provider_rejected with Replicate\'s detail', async () => {
    fake.scenario.inject = [
      { route: 'predictions.create', status: 422, body: JSON.stringify({ detail: 'input.image: Does not match format uri' }) },
    ];
    const e = await engine();
    const error = await rejection(e.run({ image: face }, {}, context()));
    expect(error.code).toBe('provider_rejected');
    expect(error.message).toContain('input.image: Does not match format uri');
  });

  it('a create answer that is not JSON is provider_bad_response', async () => {
    fake.scenario.inject = [{ route: 'predictions.create', status: 200, body: '<html>gateway</html>' }];
    const e = await engine();
    const error = await rejection(e.run({ image: face }, {}, context()));
    expect(error.code).toBe('provider_bad_response');
  });

  it('a create answer without id or status is provider_bad_response', async () => {
    fake.scenario.inject = [{ route: 'predictions.create', status: 201, body: '{"hello":"world"}' }];
    const e = await engine();
    const error = await rejection(e.run({ image: face }, {}, context()));
    expect(error.code).toBe('provider_bad_response');
    expect(error.message).toContain('malformed prediction');
  });

  it('a malformed poll answer is provider_bad_response, and the abandoned prediction is cancelled', async () => {
    fake.scenario.outcome = 'hang';
    fake.scenario.maxSyncWaitS = 0;
    fake.scenario.inject = [{ route: 'predictions.get', status: 200, body: '{"id":"x","status":"exploded"}' }];
    const e = await engine();
    const error = await rejection(e.run({ image: face }, {}, context()));
    expect(error.code).toBe('provider_bad_response');
    await e.close?.();
    expect(fake.cancels).toEqual([onlyPrediction().id]);
  });

  it('an output without a file URL is provider_bad_response', async () => {
    fake.scenario.output = { raw: { caption: 'a cartoon' } };
    const e = await engine();
    const error = await rejection(e.run({ image: face }, {}, context()));
    expect(error.code).toBe('provider_bad_response');
    expect(error.message).toContain('no file URL');
  });

  it('an output file that is not an image is provider_bad_response', async () => {
    fake.scenario.outputBytes = Buffer.from('this is not an image at all');
    fake.scenario.outputContentType = 'image/png';
    const e = await engine();
    const error = await rejection(e.run({ image: face }, {}, context()));
    expect(error.code).toBe('provider_bad_response');
    expect(error.message).toContain('not an image');
  });
});
