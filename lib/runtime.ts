/**
 * Opens what both processes share: the database (embedded or DATABASE_URL),
 * migrations, the queue, the job-events listener and storage. Called from
 * the `main` files and the test harness; nothing here runs at import time.
 */
import type { Config } from './config.ts';
import { connectDatabase, type DatabaseHandle } from './db/database.ts';
import { startEmbeddedPostgres } from './db/embedded.ts';
import { migrateToLatest } from './db/migrate.ts';
import { JobEvents } from './jobs/events.ts';
import { JobQueue } from './jobs/queue.ts';
import { JobStore } from './jobs/store.ts';
import type { Logger } from './logger.ts';
import { createStorage, type Storage } from './storage/index.ts';
import { WebhookDispatcher } from './webhooks/dispatcher.ts';

export interface Core {
  databaseUrl: string;
  database: DatabaseHandle;
  queue: JobQueue;
  events: JobEvents;
  store: JobStore;
  storage: Storage;
  /** Present when WEBHOOK_SECRET is set; every process delivers queued webhooks. */
  webhooks: WebhookDispatcher | undefined;
  close(): Promise<void>;
}

export async function openCore(config: Config, log: Logger, options: { storage?: Storage } = {}): Promise<Core> {
  const closers: Array<() => Promise<void>> = [];
  try {
    let databaseUrl = config.DATABASE_URL;
    if (!databaseUrl) {
      const pgLog = log.child({ component: 'postgres' });
      const embedded = await startEmbeddedPostgres({
        dataDir: config.DATA_DIR,
        port: config.EMBEDDED_PG_PORT,
        log: (m) => pgLog.debug(m),
      });
      closers.push(embedded.stop);
      databaseUrl = embedded.url;
      log.info({ dataDir: config.DATA_DIR, port: config.EMBEDDED_PG_PORT }, 'embedded Postgres running');
    }
    const database = connectDatabase(databaseUrl, { onError: (e) => log.warn({ err: e }, 'database pool error') });
    closers.push(database.close);
    const applied = await migrateToLatest(database.db);
    for (const m of applied) log.info({ migration: m.migrationName, status: m.status }, 'migration');
    const queue = await JobQueue.start(
      databaseUrl,
      {
        maxAttempts: config.JOB_MAX_ATTEMPTS,
        leaseSeconds: config.JOB_LEASE_S,
        jobTimeoutSeconds: config.JOB_TIMEOUT_S,
        retentionDays: config.JOB_RETENTION_DAYS,
      },
      log.child({ component: 'queue' }),
    );
    closers.push(() => queue.stop());
    const events = await JobEvents.start(databaseUrl, log.child({ component: 'events' }));
    closers.push(() => events.close());
    const store = new JobStore(database.db, database.pool, queue);
    const storage = options.storage ?? createStorage(config);
    let webhooks: WebhookDispatcher | undefined;
    if (config.WEBHOOK_SECRET) {
      webhooks = new WebhookDispatcher({
        db: database.db,
        queue,
        secret: config.WEBHOOK_SECRET,
        policy: webhookPolicy(config),
        log: log.child({ component: 'webhooks' }),
      });
      await webhooks.startWorker();
    }
    return {
      databaseUrl,
      database,
      queue,
      events,
      store,
      storage,
      webhooks,
      async close() {
        for (const close of closers.reverse()) await close().catch((e: unknown) => log.warn({ err: e }, 'error while closing'));
      },
    };
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => {});
    throw error;
  }
}

export function webhookPolicy(config: Config) {
  return { allowHosts: config.FETCH_ALLOW_HOSTS, allowPrivate: config.WEBHOOK_ALLOW_PRIVATE, timeoutMs: 10_000 };
}
