/** Housekeeping against real Postgres and the real queue tables. */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createLogger } from '../../lib/logger.ts';
import { deleteExpiredJobs, reconcileLostJobs } from '../../lib/jobs/maintenance.ts';
import { startTestService, type TestService } from '../support/service.ts';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({ noWorker: true });
});
afterAll(() => svc?.stop());

async function makeJob(): Promise<string> {
  const res = await fetch(`${svc.url}/face-swap`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ base_image_url: 'http://127.0.0.1:9/a.jpg', face_image_url: 'http://127.0.0.1:9/b.jpg' }),
  });
  return (await res.json()).job_id;
}

test('a processing job whose queue entry failed (all its daemons died) is failed as worker_lost', async () => {
  const lost = await makeJob();
  const healthy = await makeJob();
  const db = svc.core.database.db;
  // The queue gave up on `lost` (what pg-boss does once every attempt's lease has expired).
  await sql`UPDATE pgboss.job SET state = 'failed' WHERE id = ${lost}`.execute(db);
  await sql`UPDATE jobs SET status = 'processing', attempt = 3, updated_at = now() - interval '5 minutes' WHERE id IN (${lost}, ${healthy})`.execute(db);

  expect(await reconcileLostJobs(db)).toBe(1);
  expect(await svc.core.store.get(lost)).toMatchObject({ status: 'failed', error_code: 'worker_lost' });
  expect((await svc.core.store.get(healthy))?.status).toBe('processing');
});

test('jobs past retention are deleted with their stored results and uploaded inputs', async () => {
  const id = await makeJob();
  const storage = svc.core.storage;
  const key = `results/${id}/0123456789abcdef.png`;
  const upload = `inputs/${id}/fedcba9876543210.jpg`;
  await storage.put(key, Buffer.from('png'), 'image/png');
  await storage.put(upload, Buffer.from('jpg'), 'image/jpeg');
  const db = svc.core.database.db;
  await sql`UPDATE jobs SET status = 'completed', result_keys = ${JSON.stringify([key])}::jsonb,
    input = ${JSON.stringify({ base: { upload }, face: { url: 'http://127.0.0.1:9/b.jpg' } })}::jsonb,
    finished_at = now() - interval '8 days' WHERE id = ${id}`.execute(db);
  const recent = await makeJob();
  await sql`UPDATE jobs SET status = 'completed', finished_at = now() - interval '1 day' WHERE id = ${recent}`.execute(db);

  const deleted = await deleteExpiredJobs({ db, store: svc.core.store, storage, log: createLogger('silent'), retentionDays: 7 });
  expect(deleted).toBe(1);
  expect(await svc.core.store.get(id)).toBeUndefined();
  expect(await storage.get(key)).toBeUndefined();
  expect(await storage.get(upload)).toBeUndefined();
  expect((await svc.core.store.get(recent))?.id).toBe(recent);
});
