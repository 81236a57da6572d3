import pg from 'pg';
import { expect, test } from 'vitest';
import { createTestDatabase } from './support/db.ts';

test('the test Postgres answers', async () => {
  const client = new pg.Client({ connectionString: await createTestDatabase() });
  await client.connect();
  const { rows } = await client.query('select 1 + 1 as two');
  await client.end();
  expect(rows[0].two).toBe(2);
});
