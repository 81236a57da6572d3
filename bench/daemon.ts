/**
 * The landmark engine end to end in the daemon: POST /face-swap with
 * `Prefer: wait`, through queue, fetch, decode, swap, encode, storage and
 * completion, on 1024×1024 photos served from loopback. Uses the fixture
 * models (../shared/fixtures/models).
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { startService } from '../src/service.ts';
import { createLandmarkEngine } from '../worker/engines/landmark/index.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../../shared/fixtures');

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, p95: s[Math.min(s.length - 1, Math.floor(s.length * 0.95))]! };
};

export async function benchDaemon(opts: { jobs: number; format: 'png' | 'jpeg' }): Promise<void> {
  // The top square of each portrait (where the face is), at 1024×1024, as a client would upload it.
  const photo = (name: string) =>
    sharp(path.join(FIXTURES, 'images', name)).resize(1024, 1024, { fit: 'cover', position: 'top' }).jpeg({ quality: 90 }).toBuffer();
  const files = new Map([['base.jpg', await photo('biden.jpg')], ['face.jpg', await photo('obama.jpg')]]);
  const server = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(files.get(req.url!.slice(1))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceswap-bench-daemon-'));
  const config = loadConfig({
    DATA_DIR: dataDir,
    PORT: '0',
    LOG_LEVEL: 'silent',
    EMBEDDED_PG_PORT: '54393',
    FETCH_ALLOW_HOSTS: '127.0.0.1',
    MODELS_DIR: path.join(FIXTURES, 'models'),
    MODEL_FILES: 'detector=insightface_det_2.5g.onnx',
  });
  const log = createLogger('silent');
  const engine = await createLandmarkEngine({ config, log });
  const svc = await startService({ config, log, version: 'bench', engines: [engine] });
  try {
    const body = JSON.stringify({ base_image_url: `${base}/base.jpg`, face_image_url: `${base}/face.jpg`, output_format: opts.format, engine: 'landmark' });
    const request = async () => {
      const t0 = performance.now();
      const res = await fetch(`${svc.url}/face-swap`, { method: 'POST', headers: { 'content-type': 'application/json', prefer: 'wait=60' }, body });
      const json = (await res.json()) as { job_id: string; result_url?: string };
      if (!json.result_url) throw new Error(`job failed: ${JSON.stringify(json)}`);
      return { ms: performance.now() - t0, id: json.job_id };
    };
    for (let i = 0; i < 3; i++) await request(); // warm-up
    const wall: number[] = [];
    const run: number[] = [];
    for (let i = 0; i < opts.jobs; i++) {
      const { ms, id } = await request();
      wall.push(ms);
      const row = await svc.core.store.get(id);
      run.push(new Date(row!.finished_at!).getTime() - new Date(row!.started_at!).getTime());
    }
    const w = stats(wall);
    const r = stats(run);
    console.log(`landmark swap in the daemon, 1024×1024 JPEG in, ${opts.format.toUpperCase()} out, ${opts.jobs} jobs one at a time:`);
    console.log(`  job run time (started → completed: fetch, decode, swap, encode, store): median ${r.median} ms, p95 ${r.p95} ms`);
    console.log(`  request (POST with Prefer: wait, until the answer):                    median ${w.median.toFixed(0)} ms, p95 ${w.p95.toFixed(0)} ms`);
  } finally {
    await svc.stop();
    await engine.close?.();
    server.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}
