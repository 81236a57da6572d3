/**
 * The queue: pg-boss, one queue per (job kind, engine) route, e.g.
 * `face_swap.landmark`, `face_swap_cartoon.landmark` or `cartoonify.replicate`,
 * so that each daemon pulls only what its ready engines can do.
 *
 * The pg-boss job id is the job's own id. Creation goes through `send` with
 * the caller's transaction, so the row and the queue entry commit together.
 * Leases: daemons heart-beat their running job; one that stops (killed,
 * machine gone) is retried by pg-boss's supervisor after `leaseSeconds`.
 */
import { CompiledQuery, type Transaction } from 'kysely';
import { PgBoss, type Db as IDatabase } from 'pg-boss';
import type { Database } from '../db/schema.ts';
import type { JobKind } from './params.ts';
import type { Logger } from '../logger.ts';

export interface QueueSettings {
  maxAttempts: number;
  leaseSeconds: number;
  jobTimeoutSeconds: number;
  retentionDays: number;
}

export interface JobPayload {
  jobId: string;
}

/** Wraps a Kysely transaction as the `db` pg-boss runs its statements on. */
export function bossDb(trx: Transaction<Database>): IDatabase {
  return {
    executeSql: async (text, values) => {
      const result = await trx.executeQuery(CompiledQuery.raw(text, (values ?? []) as unknown[]));
      return { rows: result.rows as unknown[] as Record<string, unknown>[] };
    },
  };
}

export class JobQueue {
  readonly boss: PgBoss;
  readonly settings: QueueSettings;
  readonly #known = new Set<string>();
  readonly #log: Logger;

  constructor(boss: PgBoss, settings: QueueSettings, log: Logger) {
    this.boss = boss;
    this.settings = settings;
    this.#log = log;
  }

  static async start(url: string, settings: QueueSettings, log: Logger): Promise<JobQueue> {
    const interval = Math.max(1, Math.min(30, Math.floor(settings.leaseSeconds / 2)));
    const boss = new PgBoss({
      connectionString: url,
      max: 4,
      useListenNotify: true,
      superviseIntervalSeconds: interval,
      monitorIntervalSeconds: interval,
      application_name: 'faceswap-queue',
    });
    boss.on('error', (e: unknown) => log.warn({ err: e }, 'queue error'));
    boss.on('warning', (w: unknown) => log.debug({ warning: w }, 'queue warning'));
    await boss.start();
    return new JobQueue(boss, settings, log);
  }

  /** Create the route's queue once per process (idempotent in pg-boss too). */
  async ensure(name: string): Promise<void> {
    if (this.#known.has(name)) return;
    const existing = await this.boss.getQueue(name);
    if (!existing) {
      try {
        await this.boss.createQueue(name, {
          notify: true,
          retryLimit: this.settings.maxAttempts - 1,
          retryDelay: 2,
          retryBackoff: true,
          retryDelayMax: 300,
          heartbeatSeconds: Math.max(10, this.settings.leaseSeconds),
          expireInSeconds: this.settings.jobTimeoutSeconds,
          deleteAfterSeconds: this.settings.retentionDays * 86_400,
        });
      } catch (error) {
        // Another process created it at the same moment.
        if (!(await this.boss.getQueue(name))) throw error;
      }
    }
    this.#known.add(name);
    this.#log.debug({ queue: name }, 'queue ready');
  }

  /** Enqueue jobs inside the caller's transaction; each pg-boss id is the job id. */
  async insert(name: string, jobIds: string[], trx: Transaction<Database>): Promise<void> {
    await this.boss.insert(
      name,
      jobIds.map((id) => ({ id, data: { jobId: id } satisfies JobPayload })),
      { db: bossDb(trx) },
    );
  }

  /** Remove a queued job from the queue (a running one is stopped by the daemon itself). */
  async cancel(name: string, jobId: string): Promise<void> {
    await this.boss.cancel(name, jobId).catch((e: unknown) => this.#log.warn({ err: e, jobId }, 'queue cancel failed'));
  }

  async stop(): Promise<void> {
    await this.boss.stop({ graceful: true, timeout: 10_000, close: true });
  }
}

/**
 * The queue a job goes to: `<kind>.<engine>`. Cartoon face swaps have queues
 * of their own, so that only daemons with a cartoonify engine and that swap
 * engine pull them.
 */
export function routeFor(kind: JobKind, engine: string): string {
  return `${kind}.${engine}`;
}
