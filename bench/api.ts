/**
 * API and queue benchmarks on this machine, against a real embedded Postgres:
 * - POST /face-swap and GET /job/{id} under autocannon (a separate process, 50 connections);
 * - queue pickup latency (job created → daemon starts it) over N jobs.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { startService, type Service } from '../src/service.ts';
import type { Engine } from '../worker/engine.ts';

const AUTOCANNON = path.resolve(import.meta.dirname, '../node_modules/.bin/autocannon');

interface CannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
}

function autocannon(args: string[]): Promise<CannonResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(AUTOCANNON, ['--json', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as CannonResult) : reject(new Error(`autocannon exited ${code}`))));
  });
}

/** A daemon engine that answers at once, so that only queue and bookkeeping are measured. */
const instantEngine: Engine = {
  name: 'landmark',
  task: 'face_swap',
  device: 'cpu',
  status: () => ({ ready: true }),
  run: async () => ({ images: [{ kind: 'raw', image: { data: new Uint8Array(3), width: 1, height: 1, channels: 3 } }] }),
};

async function withService<T>(env: Record<string, string>, engines: Engine[], fn: (svc: Service) => Promise<T>): Promise<T> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceswap-bench-'));
  const config = loadConfig({ DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'silent', MAX_QUEUE_DEPTH: '100000000', EMBEDDED_PG_PORT: '54391', ...env });
  const svc = await startService({ config, log: createLogger('silent'), version: 'bench', engines });
  try {
    return await fn(svc);
  } finally {
    await svc.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

const fmt = (r: CannonResult) =>
  `${Math.round(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}, errors ${r.errors}`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function benchApi(opts: { seconds: number; pickupJobs: number }): Promise<void> {
  // A tiny input image on loopback, so a daemon's fetch costs next to nothing.
  const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).png().toBuffer();
  const images = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(png));
  await new Promise<void>((r) => images.listen(0, '127.0.0.1', r));
  const imageUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}/x.png`;
  const body = JSON.stringify({ base_image_url: imageUrl, face_image_url: imageUrl });
  try {
    // Jobs are only created here (no daemon), so the queue grows as it would under a burst.
    await withService({ WORKER: 'off', FETCH_ALLOW_HOSTS: '127.0.0.1' }, [], async (svc) => {
      await autocannon(['-c', '10', '-d', '2', '-m', 'POST', '-H', 'content-type=application/json', '-b', body, `${svc.url}/face-swap`]); // warm-up
      const create = await autocannon(['-c', '50', '-d', String(opts.seconds), '-m', 'POST', '-H', 'content-type=application/json', '-b', body, `${svc.url}/face-swap`]);
      console.log(`POST /face-swap (50 connections, ${opts.seconds}s): ${fmt(create)}`);

      const { job_id } = (await (await fetch(`${svc.url}/face-swap`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json()) as { job_id: string };
      const read = await autocannon(['-c', '50', '-d', String(opts.seconds), `${svc.url}/job/${job_id}`]);
      console.log(`GET /job/{id}   (50 connections, ${opts.seconds}s): ${fmt(read)}`);
    });

    await withService({ WORKER: 'embedded', FETCH_ALLOW_HOSTS: '127.0.0.1' }, [instantEngine], async (svc) => {
      const db = svc.core.database.db;
      const ids: string[] = [];
      for (let i = 0; i < opts.pickupJobs; i++) {
        // One job at a time, each created when the daemon is idle again: a pickup is a wake-up, not
        // a wait behind the previous job. `Prefer: wait` blocks on the job-events NOTIFY, not on polling.
        const res = await fetch(`${svc.url}/face-swap`, { method: 'POST', headers: { 'content-type': 'application/json', prefer: 'wait=10' }, body });
        ids.push(((await res.json()) as { job_id: string }).job_id);
      }
      const rows = await db.selectFrom('jobs').select(['created_at', 'started_at']).where('id', 'in', ids).execute();
      const waits = rows
        .filter((r) => r.started_at)
        .map((r) => new Date(r.started_at!).getTime() - new Date(r.created_at).getTime())
        .sort((a, b) => a - b);
      console.log(`queue pickup (created → daemon starts, ${waits.length}/${ids.length} jobs): p50 ${percentile(waits, 50)} ms, p99 ${percentile(waits, 99)} ms, max ${waits.at(-1)} ms`);
    });
  } finally {
    images.close();
  }
}
