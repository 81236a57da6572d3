/** `npm run migrate`: apply migrations/ to DATABASE_URL (or the embedded Postgres under DATA_DIR). */
import { createLogger } from '../lib/logger.ts';
import { configOrExit } from '../lib/process.ts';
import { connectDatabase } from '../lib/db/database.ts';
import { startEmbeddedPostgres } from '../lib/db/embedded.ts';
import { migrateToLatest } from '../lib/db/migrate.ts';

const config = configOrExit();
const log = createLogger(config.LOG_LEVEL, { service: 'migrate' });
const embedded = config.DATABASE_URL ? undefined : await startEmbeddedPostgres({ dataDir: config.DATA_DIR, port: config.EMBEDDED_PG_PORT });
const database = connectDatabase(config.DATABASE_URL ?? embedded!.url);
try {
  const results = await migrateToLatest(database.db);
  if (results.length === 0) log.info('database is up to date');
  for (const r of results) log.info({ migration: r.migrationName, status: r.status }, 'migration applied');
} finally {
  await database.close();
  await embedded?.stop();
}
