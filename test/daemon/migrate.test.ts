/** `npm run migrate` as a process against a fresh database: applies every migration once, then nothing. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { expect, test } from 'vitest';
import { createTestDatabase } from '../support/db.ts';

const run = promisify(execFile);
const script = path.join(import.meta.dirname, '../../scripts/migrate.ts');

test('migrates a fresh database, and a second run finds it up to date', async () => {
  const url = await createTestDatabase();
  const env = { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'info' };
  const first = await run(process.execPath, [script], { env });
  expect(first.stdout).toContain('"migration":"0001_jobs"');
  expect(first.stdout).toContain('"migration":"0002_webhooks"');
  const second = await run(process.execPath, [script], { env });
  expect(second.stdout).toContain('database is up to date');

  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs' AND column_name = 'webhook_sent_at'`);
  await client.end();
  expect(rows).toHaveLength(1);
});
