/** The job record's conditional writes, directly against Postgres. */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startTestService, type TestService } from '../support/service.ts';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({ noWorker: true });
});
afterAll(() => svc?.stop());

async function newJob(): Promise<string> {
  const { job } = await svc.core.store.create({
    kind: 'face_swap',
    engine: 'landmark',
    queue: 'face_swap.landmark',
    owner: 'anonymous',
    input: { base: { url: 'http://127.0.0.1/a.jpg' }, face: { url: 'http://127.0.0.1/b.jpg' } },
    params: {},
  });
  return job.id;
}

test('a stale attempt can neither report progress, complete nor fail; the job completes once', async () => {
  const store = svc.core.store;
  const id = await newJob();
  expect((await store.startAttempt(id, 1, 'daemon-a'))?.status).toBe('processing');
  // The lease expired and another daemon took the job as attempt 2.
  expect((await store.startAttempt(id, 2, 'daemon-b'))?.attempt).toBe(2);

  expect(await store.progress(id, 1, 0.9, 'late')).toBe(false);
  expect(await store.complete(id, 1, { urls: ['http://x/a1.png'], keys: ['a1'] })).toBeUndefined();
  expect(await store.fail(id, 1, { code: 'x', message: 'late failure' })).toBeUndefined();
  expect(await store.requeue(id, 1, { code: 'x', message: 'late retry' })).toBe(false);

  expect(await store.progress(id, 2, 0.5, 'half')).toBe(true);
  const done = await store.complete(id, 2, { urls: ['http://x/b.png'], keys: ['b'] });
  expect(done).toMatchObject({ status: 'completed', attempt: 2, result_urls: ['http://x/b.png'] });
  expect(await store.complete(id, 2, { urls: ['http://x/again.png'], keys: ['again'] })).toBeUndefined();
  expect((await store.get(id))?.result_urls).toEqual(['http://x/b.png']);
});

test('a canceled job cannot be started, completed or failed', async () => {
  const store = svc.core.store;
  const id = await newJob();
  await store.startAttempt(id, 1, 'daemon-a');
  expect((await store.cancel(id))?.canceled).toBe(true);
  expect(await store.complete(id, 1, { urls: ['u'], keys: ['k'] })).toBeUndefined();
  expect(await store.fail(id, 1, { code: 'x', message: 'm' })).toBeUndefined();
  expect(await store.startAttempt(id, 2, 'daemon-b')).toBeUndefined();
  expect((await store.get(id))?.status).toBe('canceled');
  expect((await store.cancel(id))?.canceled).toBe(false);
});

test('concurrent creates with one idempotency key make one job; a different body conflicts', async () => {
  const store = svc.core.store;
  const job = {
    kind: 'face_swap' as const,
    engine: 'landmark',
    queue: 'face_swap.landmark',
    owner: 'anonymous',
    input: { base: { url: 'http://127.0.0.1/a.jpg' } },
    params: {},
    idempotencyKey: `key-${Date.now()}`,
    requestHash: 'h1',
  };
  const results = await Promise.all(Array.from({ length: 20 }, () => store.create(job)));
  expect(new Set(results.map((r) => r.job.id)).size).toBe(1);
  expect(results.filter((r) => r.outcome === 'created')).toHaveLength(1);
  expect(results.filter((r) => r.outcome === 'replayed')).toHaveLength(19);
  expect((await store.create({ ...job, requestHash: 'h2' })).outcome).toBe('key_conflict');
});

test('one bad row in a batch does not fail the others', async () => {
  const store = svc.core.store;
  const good = Array.from({ length: 5 }, () =>
    store.create({ kind: 'face_swap', engine: 'landmark', queue: 'face_swap.landmark', owner: 'anonymous', input: {}, params: {} }),
  );
  // A kind the table's CHECK constraint refuses, sent in the same burst.
  const bad = store.create({ kind: 'nope' as 'face_swap', engine: 'landmark', queue: 'face_swap.landmark', owner: 'anonymous', input: {}, params: {} });
  await expect(bad).rejects.toThrow(/check constraint/);
  for (const r of await Promise.all(good)) expect(r.outcome).toBe('created');
});
