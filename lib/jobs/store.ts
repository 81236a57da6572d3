/**
 * The job record: every read and state change of the `jobs` table.
 *
 * State changes made by the daemon are conditional on the job still being
 * `processing` for the daemon's attempt, so a job that was canceled, or
 * retried elsewhere after a lost lease, can never be completed twice.
 */
import { randomUUID } from 'node:crypto';
import { sql, type UpdateObject } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Database, JobRow, WebhookSettings } from '../db/schema.ts';
import type { ImageRef, JobKind } from './params.ts';
import type pg from 'pg';
import { STATUS_COLUMNS, type JobStatusRow } from './present.ts';
import type { JobQueue } from './queue.ts';

export interface NewJob {
  kind: JobKind;
  engine: string;
  queue: string;
  owner: string;
  input: Record<string, ImageRef>;
  params: Record<string, unknown>;
  webhook?: WebhookSettings;
  idempotencyKey?: string;
  requestHash?: string;
  /** Pre-chosen id (uploads are stored under it before the row exists). */
  id?: string;
}

export type CreateResult =
  | { outcome: 'created'; job: JobRow }
  | { outcome: 'replayed'; job: JobRow }
  | { outcome: 'key_conflict'; job: JobRow };

interface PendingCreate {
  job: NewJob & { id: string };
  resolve(result: CreateResult): void;
  reject(error: unknown): void;
}

const MAX_BATCH = 100;
/** Transactions writing new jobs at once; more requests wait and join the next batch. */
const MAX_CONCURRENT_FLUSHES = 2;

const GET_STATUS_SQL = `SELECT ${STATUS_COLUMNS.join(', ')} FROM jobs WHERE id = $1`;

export class JobStore {
  readonly db: Db;
  readonly #queue: JobQueue;
  readonly #pool: pg.Pool;

  constructor(db: Db, pool: pg.Pool, queue: JobQueue) {
    this.db = db;
    this.#pool = pool;
    this.#queue = queue;
  }

  /**
   * Insert the row and its queue entry in one transaction. With an
   * idempotency key, a second request with the same key returns the first
   * job (same body) or reports a conflict (different body).
   *
   * Requests that arrive while a transaction is committing are grouped into
   * the next one (one multi-row insert, one queue insert per route, one
   * commit): under load this amortises the commit's WAL flush and the
   * NOTIFY lock over many jobs; alone, a request is written at once.
   */
  create(job: NewJob): Promise<CreateResult> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ job: { ...job, id: job.id ?? randomUUID() }, resolve, reject });
      this.#pump();
    });
  }

  readonly #pending: PendingCreate[] = [];
  #flushing = 0;

  #pump(): void {
    while (this.#pending.length > 0 && this.#flushing < MAX_CONCURRENT_FLUSHES) {
      const batch = this.#pending.splice(0, MAX_BATCH);
      this.#flushing += 1;
      void this.#flush(batch).finally(() => {
        this.#flushing -= 1;
        this.#pump();
      });
    }
  }

  async #flush(batch: PendingCreate[]): Promise<void> {
    try {
      const results = await this.#insertBatch(batch.map((b) => b.job));
      batch.forEach((b, i) => b.resolve(results[i]!));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // One bad row must not fail its neighbours: retry each on its own, one at a time (a database
      // that is down must not get a hundred transactions at once).
      for (const b of batch) {
        await this.#insertBatch([b.job]).then((r) => b.resolve(r[0]!), (e: unknown) => b.reject(e));
      }
    }
  }

  async #insertBatch(jobs: Array<NewJob & { id: string }>): Promise<CreateResult[]> {
    for (const queue of new Set(jobs.map((j) => j.queue))) await this.#queue.ensure(queue);
    return this.db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto('jobs')
        .values(
          jobs.map((job) => ({
            id: job.id,
            kind: job.kind,
            engine: job.engine,
            queue: job.queue,
            owner: job.owner,
            input: JSON.stringify(job.input),
            params: JSON.stringify(job.params),
            webhook: job.webhook ? JSON.stringify(job.webhook) : null,
            idempotency_key: job.idempotencyKey ?? null,
            request_hash: job.requestHash ?? null,
          })),
        )
        .onConflict((oc) => oc.columns(['owner', 'idempotency_key']).where('idempotency_key', 'is not', null).doNothing())
        .returningAll()
        .execute();
      const byId = new Map(inserted.map((row) => [row.id, row]));
      const byQueue = new Map<string, string[]>();
      for (const row of inserted) byQueue.set(row.queue, [...(byQueue.get(row.queue) ?? []), row.id]);
      for (const [queue, ids] of byQueue) await this.#queue.insert(queue, ids, trx);

      const results: CreateResult[] = [];
      for (const job of jobs) {
        const row = byId.get(job.id);
        if (row) {
          results.push({ outcome: 'created', job: row });
          continue;
        }
        // The idempotency key was taken (by an earlier request, or by another in this batch).
        const existing = await trx
          .selectFrom('jobs')
          .selectAll()
          .where('owner', '=', job.owner)
          .where('idempotency_key', '=', job.idempotencyKey!)
          .executeTakeFirstOrThrow();
        results.push({ outcome: existing.request_hash === job.requestHash ? 'replayed' : 'key_conflict', job: existing });
      }
      return results;
    });
  }

  get(id: string): Promise<JobRow | undefined> {
    return this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * What `GET /job/{id}` shows, and nothing else: the hottest read of the API, so it skips the JSON
   * columns it does not need and runs as a prepared statement (parsed and planned once per connection).
   */
  async getStatus(id: string): Promise<JobStatusRow | undefined> {
    const result = await this.#pool.query<JobStatusRow>({ name: 'job_status', text: GET_STATUS_SQL, values: [id] });
    return result.rows[0];
  }

  /** Queued jobs, for back-pressure and /health. */
  async queuedCount(): Promise<number> {
    const row = await this.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'queued')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** A daemon takes the job for `attempt`; undefined if it was canceled or already finished. */
  startAttempt(id: string, attempt: number, daemonId: string): Promise<JobRow | undefined> {
    return this.db
      .updateTable('jobs')
      .set({
        status: 'processing',
        attempt,
        daemon_id: daemonId,
        progress: 0,
        stage: 'starting',
        started_at: sql<Date>`coalesce(started_at, now())`,
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', id)
      .where('status', 'in', ['queued', 'processing'])
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * The one rule every write of a running job goes through: it applies only
   * while the job is still `processing` for this attempt. A canceled job, or
   * one whose lease expired and was retried as a later attempt, is left alone.
   */
  #updateOwned(id: string, attempt: number, set: UpdateObject<Database, 'jobs'>) {
    return this.db
      .updateTable('jobs')
      .set({ ...set, updated_at: sql<Date>`now()` })
      .where('id', '=', id)
      .where('status', '=', 'processing')
      .where('attempt', '=', attempt);
  }

  /** Returns false when the job is no longer ours to work on (canceled, or retried elsewhere). */
  async progress(id: string, attempt: number, progress: number, stage: string): Promise<boolean> {
    const result = await this.#updateOwned(id, attempt, { progress: Math.min(1, Math.max(0, progress)), stage }).executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  complete(id: string, attempt: number, result: { urls: string[]; keys: string[]; info?: Record<string, unknown> }): Promise<JobRow | undefined> {
    return this.#updateOwned(id, attempt, {
      status: 'completed',
      progress: 1,
      stage: 'done',
      result_urls: JSON.stringify(result.urls),
      result_keys: JSON.stringify(result.keys),
      info: result.info ? JSON.stringify(result.info) : null,
      error_code: null,
      error_message: null,
      finished_at: sql<Date>`now()`,
    })
      .returningAll()
      .executeTakeFirst();
  }

  fail(id: string, attempt: number, error: { code: string; message: string }): Promise<JobRow | undefined> {
    return this.#updateOwned(id, attempt, {
      status: 'failed',
      error_code: error.code,
      error_message: error.message.slice(0, 2000),
      finished_at: sql<Date>`now()`,
    })
      .returningAll()
      .executeTakeFirst();
  }

  /** A transient failure: back to `queued` (pg-boss retries it after its backoff), keeping the last error. */
  async requeue(id: string, attempt: number, error: { code: string; message: string }): Promise<boolean> {
    const result = await this.#updateOwned(id, attempt, {
      status: 'queued',
      stage: `retrying after ${error.code}`,
      error_code: error.code,
      error_message: error.message.slice(0, 2000),
    }).executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /**
   * Cancel a queued or running job (the row turns `canceled` at once; the
   * queue entry is removed, and a running daemon is told through NOTIFY).
   * Returns the row after the call, and whether this call canceled it.
   */
  async cancel(id: string, owner?: string): Promise<{ job: JobRow; canceled: boolean } | undefined> {
    let query = this.db
      .updateTable('jobs')
      .set({
        status: 'canceled',
        stage: 'canceled',
        finished_at: sql<Date>`now()`,
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', id)
      .where('status', 'in', ['queued', 'processing']);
    if (owner) query = query.where('owner', '=', owner);
    const row = await query.returningAll().executeTakeFirst();
    if (row) {
      await this.#queue.cancel(row.queue, row.id);
      return { job: row, canceled: true };
    }
    const current = await this.get(id);
    if (!current || (owner && current.owner !== owner)) return undefined;
    return { job: current, canceled: false };
  }

  /** Finished jobs older than the retention period, with what they stored. */
  async expired(olderThanDays: number, limit = 500): Promise<JobRow[]> {
    return this.db
      .selectFrom('jobs')
      .selectAll()
      .where('finished_at', '<', sql<Date>`now() - make_interval(days => ${olderThanDays})`)
      .orderBy('finished_at')
      .limit(limit)
      .execute();
  }

  async deleteJobs(ids: string[]): Promise<void> {
    if (ids.length > 0) await this.db.deleteFrom('jobs').where('id', 'in', ids).execute();
  }
}
