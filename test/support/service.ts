/**
 * Test harness: the real service (API + embedded daemon + real Postgres +
 * local storage) on a fresh database, with the engines a test chooses.
 *
 *   const svc = await startTestService({ engines: [createTestEngine()] });
 *   await fetch(`${svc.url}/face-swap`, ...);
 *   await svc.stop();
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { startService, type Service } from '../../src/service.ts';
import type { Engine } from '../../worker/engine.ts';
import { createTestDatabase } from './db.ts';

export interface TestServiceOptions {
  engines?: Engine[];
  env?: Record<string, string>;
  /** Run without the embedded daemon (WORKER=off). */
  noWorker?: boolean;
}

export interface TestService extends Service {
  config: Config;
  dataDir: string;
  databaseUrl: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const databaseUrl = options.env?.DATABASE_URL ?? (await createTestDatabase());
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceswap-test-data-'));
  const port = await freePort();
  const config = loadConfig({
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: databaseUrl,
    DATA_DIR: dataDir,
    WORKER: options.noWorker ? 'off' : 'embedded',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    FETCH_ALLOW_HOSTS: '127.0.0.1',
    JOB_LEASE_S: '10',
    ...options.env,
  });
  const log = createLogger(config.LOG_LEVEL);
  const service = await startService({ config, log, version: 'test', ...(options.engines ? { engines: options.engines } : {}) });
  return {
    ...service,
    config,
    dataDir,
    databaseUrl,
    async stop() {
      await service.stop();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
