/**
 * The HTTP API over real HTTP, against real Postgres, the real queue and an
 * embedded daemon driven by a test engine (it inverts the base image; it
 * does not pretend to swap faces).
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { JobError } from '../../lib/errors.ts';
import { startImageServer, type ImageServer } from '../support/image-server.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { createTestEngine } from '../support/test-engine.ts';

let svc: TestService;
let images: ImageServer;
const swapEngine = createTestEngine({
  steps: 4,
  stepMs: 20,
  onRun: () => {
    if (failNext) {
      const error = failNext;
      failNext = undefined;
      throw error;
    }
  },
});
let failNext: Error | undefined;
const cartoonEngine = createTestEngine({ name: 'replicate', task: 'cartoonify', steps: 3, stepMs: 20 });

beforeAll(async () => {
  images = await startImageServer();
  svc = await startTestService({
    engines: [swapEngine, cartoonEngine],
  });
});
afterAll(async () => {
  await svc?.stop();
  await images?.close();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${svc.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

async function waitDone(id: string): Promise<Record<string, any>> {
  for (let i = 0; i < 200; i++) {
    const body = await (await fetch(`${svc.url}/job/${id}`)).json();
    if (['completed', 'failed', 'canceled'].includes(body.status)) return body;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('job did not finish');
}

describe('POST /face-swap', () => {
  test('answers 202 with the original JSON, and the job completes with a stored result', async () => {
    const res = await post('/face-swap', { base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg') });
    expect(res.status).toBe(202);
    const body = await res.json();
    expect(body).toMatchObject({ success: true, message: expect.any(String) });
    expect(body.job_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('location')).toBe(`/job/${body.job_id}`);

    const done = await waitDone(body.job_id);
    expect(done).toEqual({ job_id: body.job_id, status: 'completed', result_url: expect.any(String), processing_time: expect.stringMatching(/^\d+\.\ds$/) });

    const file = await fetch(done.result_url);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('image/png');
    expect(file.headers.get('cache-control')).toContain('immutable');
    // The test engine inverts the base image: check a pixel against the original.
    const result = await sharp(Buffer.from(await file.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    const original = await sharp(await (await fetch(images.url('obama.jpg'))).arrayBuffer()).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect(result.info.width).toBe(original.info.width);
    expect(result.data[1000]).toBe(255 - original.data[1000]!);
  });

  test('Prefer: wait=N blocks until the result is there', async () => {
    const res = await post('/face-swap', { base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg') }, { prefer: 'wait=30' });
    expect(res.status).toBe(200);
    expect(res.headers.get('preference-applied')).toBe('wait=30');
    expect(await res.json()).toMatchObject({ success: true, result_url: expect.stringContaining('/files/results/'), processing_time: expect.any(String) });
  });

  test('a permanent engine error fails the job at once with its code', async () => {
    failNext = new JobError('no_face_in_source', 'No face was found in the face image');
    const res = await post('/face-swap', { base_image_url: images.url('obama.jpg'), face_image_url: images.url('noface_coffee.png') }, { prefer: 'wait=30' });
    expect(res.status).toBe(422);
    const body = await res.json();
    expect(body).toMatchObject({ success: false, error: { code: 'no_face_in_source', message: 'No face was found in the face image' } });
    expect(await (await fetch(`${svc.url}/job/${body.job_id}`)).json()).toEqual({
      job_id: body.job_id,
      status: 'failed',
      error: { code: 'no_face_in_source', message: 'No face was found in the face image' },
    });
  });

  test('a transient engine error is retried and the job still completes', async () => {
    failNext = new JobError('provider_unavailable', 'upstream 503', { retryable: true });
    const runsBefore = swapEngine.runs;
    const res = await post('/face-swap', { base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg') });
    const done = await waitDone((await res.json()).job_id);
    expect(done.status).toBe('completed');
    expect(swapEngine.runs - runsBefore).toBe(2);
  });

  test('an unreachable image fails the job with the fetcher\'s code', async () => {
    const res = await post('/face-swap', { base_image_url: images.url('missing.jpg'), face_image_url: images.url('biden.jpg') }, { prefer: 'wait=30' });
    const body = await res.json();
    expect(res.status).toBe(502);
    expect(body.success).toBe(false);
    expect(body.error.code).toBe('fetch_failed');
    expect(body.error.message).toContain('404');
  });
});

describe('request validation', () => {
  test('missing fields are named', async () => {
    const res = await post('/face-swap', { base_image_url: images.url('obama.jpg') });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.success).toBe(false);
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.message).toContain('face_image_url');
  });

  test('unknown fields and out-of-range options are refused, naming the field', async () => {
    const res = await post('/face-swap', { base_image_url: images.url('a.jpg'), face_image_url: images.url('b.jpg'), stepz: 3, steps: 500 });
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error.message).toContain('stepz');
    expect(error.message).toContain('steps');
    expect(error.fields.map((f: { field: string }) => f.field).sort()).toEqual(['stepz', 'steps'].sort());
  });

  test('NUL characters are an input error, not a server error', async () => {
    const res = await post('/face-swap', { base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg'), prompt: 'a\u0000b' });
    expect(res.status).toBe(400);
    expect((await res.json()).error.fields).toEqual([{ field: 'prompt', message: 'must not contain NUL characters' }]);
  });

  test('unparseable JSON is 400, a wrong content type 415, a huge body 413', async () => {
    const bad = await post('/face-swap', '{"base_image_url": ');
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.code).toBe('invalid_json');

    const text = await fetch(`${svc.url}/face-swap`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    expect(text.status).toBe(415);
    expect((await text.json()).error.code).toBe('unsupported_media_type');

    const huge = await post('/face-swap', { base_image_url: 'x'.repeat(2 * 1024 * 1024), face_image_url: 'y' });
    expect(huge.status).toBe(413);
    expect((await huge.json()).error.code).toBe('payload_too_large');

    const array = await post('/face-swap', '[1,2]');
    expect(array.status).toBe(400);
  });

  test('URLs that point inside the network are refused at once', async () => {
    const res = await post('/face-swap', { base_image_url: 'http://169.254.169.254/latest/meta-data', face_image_url: images.url('biden.jpg') });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error.code).toBe('url_forbidden');
    expect(body.error.message).toContain('base_image_url');
    const ftp = await post('/face-swap', { base_image_url: 'ftp://example.com/a.jpg', face_image_url: images.url('biden.jpg') });
    expect(ftp.status).toBe(400);
    expect((await ftp.json()).error.code).toBe('url_forbidden');
  });

  test('an engine no daemon offers is 503 engine_unavailable', async () => {
    const res = await post('/face-swap', { base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg'), engine: 'diffusion' });
    expect(res.status).toBe(503);
    const body = await res.json();
    expect(body.error.code).toBe('engine_unavailable');
    expect(body.error.message).toContain('diffusion');
  });
});

describe('GET /job/{id}', () => {
  test('a malformed id is 400, an unknown one 404, both JSON', async () => {
    const bad = await fetch(`${svc.url}/job/not-a-uuid`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ success: false, error: { code: 'invalid_job_id' } });
    const missing = await fetch(`${svc.url}/job/00000000-0000-4000-8000-000000000000`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ success: false, error: { code: 'not_found' } });
  });

  test('unknown routes answer JSON 404', async () => {
    const res = await fetch(`${svc.url}/nope`);
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe('not_found');
  });
});

describe('blocking endpoints', () => {
  test('POST /cartoonify-only blocks and answers the original JSON', async () => {
    const res = await post('/cartoonify-only', { image_url: images.url('astronaut_eileen_collins_nasa.png') });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toEqual({ success: true, job_id: expect.any(String), result_url: expect.any(String), processing_time: expect.stringMatching(/^\d+\.\ds$/) });
  });

  test('POST /face-swap-with-cartoon runs the cartoonify stage then the swap stage', async () => {
    const swapRuns = swapEngine.runs;
    const cartoonRuns = cartoonEngine.runs;
    const res = await post('/face-swap-with-cartoon', { base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg') }, { prefer: 'respond-async' });
    const { job_id } = await res.json();
    const text = await (await fetch(`${svc.url}/job/${job_id}/events`)).text();
    const events = [...text.matchAll(/data: (.*)\n/g)].map((m) => JSON.parse(m[1]!));
    expect(events.at(-1)).toMatchObject({ status: 'completed', result_url: expect.any(String) });
    const stages: string[] = events.map((e) => e.stage).filter(Boolean);
    const firstSwap = stages.findIndex((s) => s.startsWith('swap: '));
    const lastCartoon = stages.findLastIndex((s) => s.startsWith('cartoonify: '));
    expect(lastCartoon).toBeGreaterThanOrEqual(0);
    expect(firstSwap).toBeGreaterThan(lastCartoon);
    expect([swapEngine.runs - swapRuns, cartoonEngine.runs - cartoonRuns]).toEqual([1, 1]);
  });

  test('Prefer: respond-async makes a blocking endpoint answer 202 at once', async () => {
    const res = await post('/cartoonify-only', { image_url: images.url('obama.jpg') }, { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    const body = await res.json();
    expect(body).toMatchObject({ success: true, job_id: expect.any(String), message: expect.any(String) });
    expect((await waitDone(body.job_id)).status).toBe('completed');
  });
});

describe('Idempotency-Key', () => {
  test('the same key and body return the same job; another body with the key is refused', async () => {
    const key = `k-${Math.random()}`;
    const body = { base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg') };
    const [a, b] = await Promise.all([post('/face-swap', body, { 'idempotency-key': key }), post('/face-swap', body, { 'idempotency-key': key })]);
    const [ja, jb] = [await a.json(), await b.json()];
    expect(ja.job_id).toBe(jb.job_id);
    const replay = await post('/face-swap', body, { 'idempotency-key': key });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect((await replay.json()).job_id).toBe(ja.job_id);

    const other = await post('/face-swap', { ...body, swap_all: true }, { 'idempotency-key': key });
    expect(other.status).toBe(422);
    expect((await other.json()).error.code).toBe('idempotency_key_mismatch');

    const count = await svc.core.database.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('idempotency_key', '=', key)
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(1);
  });
});

describe('progress and events', () => {
  test('GET /job/{id}/events streams progress and ends with the result', async () => {
    const res = await post('/face-swap', { base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg') });
    const { job_id } = await res.json();
    const stream = await fetch(`${svc.url}/job/${job_id}/events`);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const text = await stream.text();
    const events = [...text.matchAll(/event: (\w+)\ndata: (.*)\n/g)].map((m) => ({ event: m[1], data: JSON.parse(m[2]!) }));
    expect(events.at(-1)).toMatchObject({ event: 'done', data: { status: 'completed', result_url: expect.any(String) } });
    const running = events.filter((e) => e.data.status === 'processing' && e.data.stage?.startsWith('step'));
    expect(running.length).toBeGreaterThanOrEqual(2);
    expect(running[0]!.data).toEqual({ job_id, status: 'processing', message: 'Job is being processed', progress: expect.any(Number), stage: expect.stringMatching(/^step \d\/4$/) });
    const progress = running.map((e) => e.data.progress as number);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });
});

describe('GET /health and GET /', () => {
  test('health reports the database, the queue and the daemon with its engines', async () => {
    const res = await fetch(`${svc.url}/health`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ status: 'ok', database: { ok: true }, queue: { depth: expect.any(Number) } });
    expect(body.daemons).toHaveLength(1);
    expect(body.daemons[0].engines.map((e: { name: string }) => e.name).sort()).toEqual(['landmark', 'replicate']);
    expect(body.engines['face_swap:landmark']).toMatchObject({ ready: true, daemons: 1 });
  });

  test('health counts only daemons seen in the last minute that are not stopping', async () => {
    const db = svc.core.database.db;
    const { sql } = await import('kysely');
    const engines = JSON.stringify([{ name: 'landmark', task: 'face_swap', device: 'cpu', ready: true }]);
    await sql`INSERT INTO daemons (id, host, pid, version, device, engines, last_seen_at) VALUES
      ('fresh-peer', 'h1', 1, 't', 'cpu', ${engines}::jsonb, now()),
      ('stale-peer', 'h2', 2, 't', 'cpu', ${engines}::jsonb, now() - interval '2 minutes')`.execute(db);
    await sql`INSERT INTO daemons (id, host, pid, version, device, engines, status) VALUES ('stopping-peer', 'h3', 3, 't', 'cpu', ${engines}::jsonb, 'stopping')`.execute(db);
    await new Promise((r) => setTimeout(r, 2_100)); // past the directory's cache
    const body = await (await fetch(`${svc.url}/health`)).json();
    const ids = body.daemons.map((d: { id: string }) => d.id);
    expect(ids).toContain('fresh-peer');
    expect(ids).not.toContain('stale-peer');
    expect(ids).not.toContain('stopping-peer');
    expect(body.engines['face_swap:landmark'].daemons).toBe(2);
    await sql`DELETE FROM daemons WHERE id IN ('fresh-peer', 'stale-peer', 'stopping-peer')`.execute(db);
  });

  test('GET / describes the API', async () => {
    const body = await (await fetch(`${svc.url}/`)).json();
    expect(body.name).toBe('faceswap-job-api');
    expect(Object.keys(body.endpoints)).toContain('POST /face-swap');
  });
});
