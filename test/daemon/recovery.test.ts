/**
 * Nothing is lost when a process dies: real daemon processes, killed and
 * stopped for real, against real Postgres.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startImageServer, type ImageServer } from '../support/image-server.ts';
import { startTestService, type TestService } from '../support/service.ts';

let svc: TestService;
let images: ImageServer;
const children: ChildProcess[] = [];

beforeAll(async () => {
  images = await startImageServer();
  svc = await startTestService({ noWorker: true, env: { JOB_LEASE_S: '10' } });
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await svc?.stop();
  await images?.close();
});

async function stopAllDaemons(): Promise<void> {
  await Promise.all(
    children.splice(0).map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => { c.once('exit', r); c.kill('SIGKILL'); }))),
  );
}

function startDaemon(steps: number, stepMs: number, extraEnv: Record<string, string> = {}): Promise<ChildProcess & { daemonId: string; output: string[] }> {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, '../support/daemon-process.ts')], {
    env: {
      ...process.env,
      DATABASE_URL: svc.databaseUrl,
      DATA_DIR: svc.dataDir,
      PUBLIC_BASE_URL: svc.config.PUBLIC_BASE_URL,
      FETCH_ALLOW_HOSTS: '127.0.0.1',
      JOB_LEASE_S: '10',
      LOG_LEVEL: 'silent',
      TEST_ENGINE_STEPS: String(steps),
      TEST_ENGINE_STEP_MS: String(stepMs),
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const output: string[] = [];
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output.push(chunk.toString());
      const ready = /daemon-ready (\S+)/.exec(chunk.toString());
      if (ready) resolve(Object.assign(child, { daemonId: ready[1]!, output }));
    });
    child.on('exit', (code) => reject(new Error(`daemon exited early with ${code}`)));
  });
}

const createJob = async () => {
  const res = await fetch(`${svc.url}/face-swap`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg') }),
  });
  expect(res.status).toBe(202);
  return (await res.json()).job_id as string;
};

const row = (id: string) => svc.core.store.get(id).then((r) => r!);

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a daemon killed with SIGKILL mid-job: another daemon picks the job up and completes it', async () => {
  const first = await startDaemon(100, 100); // 10 s of work: it will not finish
  const id = await createJob();
  await until(() => row(id), (r) => r.status === 'processing' && r.progress > 0, 15_000);
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));

  await startDaemon(3, 10);
  const done = await until(() => row(id), (r) => r.status === 'completed', 60_000);
  expect(done.attempt).toBe(2);
  expect(done.result_keys).toHaveLength(1);
  const status = await (await fetch(`${svc.url}/job/${id}`)).json();
  expect(status).toMatchObject({ status: 'completed', result_url: done.result_urls![0] });
}, 90_000);

test('a daemon that lost its lease and comes back cannot complete the job a second time', async () => {
  await stopAllDaemons();
  // The first daemon goes quiet after 3 of 40 steps, is frozen (SIGSTOP) past its lease, and resumed only
  // after a second daemon has completed the job: it then finishes its own run and tries to complete.
  const first = await startDaemon(40, 100, { TEST_ENGINE_QUIET_AFTER: '3', LOG_LEVEL: 'info' });
  const id = await createJob();
  await until(() => row(id), (r) => r.status === 'processing' && r.stage === 'step 3/40', 15_000);
  first.kill('SIGSTOP');

  await startDaemon(3, 10);
  const done = await until(() => row(id), (r) => r.status === 'completed', 60_000);
  expect(done.attempt).toBe(2);
  first.kill('SIGCONT');
  // Resumed, the late attempt gives up: either pg-boss's own lease timer aborts it (lease_lost), or it
  // finishes, finds the job no longer processing for its attempt, and discards what it stored.
  await until(async () => first.output.join(''), (out) => out.includes('discarding its result') || out.includes('"code":"lease_lost"'), 15_000);
  await new Promise((r) => setTimeout(r, 500));

  const after = await row(id);
  expect(after).toMatchObject({ status: 'completed', attempt: 2, result_keys: done.result_keys, finished_at: done.finished_at });
  // Exactly one result file: the late attempt deleted what it had stored.
  const files = await fs.readdir(path.join(svc.dataDir, 'files', 'results', id));
  expect(files).toEqual([done.result_keys![0]!.split('/').at(-1)]);
}, 90_000);

test('SIGTERM: the daemon finishes its current job, then exits', async () => {
  await stopAllDaemons();
  const daemon = await startDaemon(15, 100); // 1.5 s job
  const id = await createJob();
  await until(() => row(id), (r) => r.status === 'processing' && r.daemon_id === daemon.daemonId, 15_000);
  const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
  daemon.kill('SIGTERM');
  // A job created after the signal is not taken by the stopping daemon: it waits for another one.
  const later = await createJob();
  expect(await exited).toBe(0);
  const done = await row(id);
  expect(done.status).toBe('completed');
  expect(done.attempt).toBe(1);
  expect(await row(later)).toMatchObject({ status: 'queued', daemon_id: null, attempt: 0 });
}, 60_000);
