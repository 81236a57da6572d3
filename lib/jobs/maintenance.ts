/**
 * Periodic housekeeping, safe to run in every API process at once:
 * - reconcile: a job whose queue entry ended without the daemon settling the
 *   row (every attempt's daemon died, so pg-boss gave up) is failed with
 *   `worker_lost` instead of staying `processing` forever;
 * - retention: jobs finished more than JOB_RETENTION_DAYS ago are deleted,
 *   with their uploaded inputs and their results;
 * - webhooks: final webhooks whose delivery was never recorded are queued again.
 */
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { Storage } from '../storage/index.ts';
import type { WebhookDispatcher } from '../webhooks/dispatcher.ts';
import type { JobStore } from './store.ts';

export interface MaintenanceDeps {
  db: Db;
  store: JobStore;
  storage: Storage;
  log: Logger;
  retentionDays: number;
  webhooks?: WebhookDispatcher | undefined;
}

/** Fails rows whose pg-boss job is failed, cancelled or gone while the row still says queued/processing. */
export async function reconcileLostJobs(db: Db): Promise<number> {
  const result = await sql<{ id: string }>`
    UPDATE jobs j SET
      status = 'failed',
      error_code = 'worker_lost',
      error_message = 'The daemon running this job stopped responding and its retries are used up',
      finished_at = now(),
      updated_at = now()
    WHERE j.status IN ('queued', 'processing')
      AND j.updated_at < now() - interval '1 minute'
      AND NOT EXISTS (
        SELECT 1 FROM pgboss.job b
        WHERE b.name = j.queue AND b.id = j.id AND b.state IN ('created', 'retry', 'active')
      )
    RETURNING j.id`.execute(db);
  return result.rows.length;
}

export async function deleteExpiredJobs(deps: MaintenanceDeps): Promise<number> {
  const expired = await deps.store.expired(deps.retentionDays);
  const deleted: string[] = [];
  for (const job of expired) {
    const keys = [
      ...(job.result_keys ?? []),
      ...Object.values(job.input).flatMap((ref) => ('upload' in ref ? [ref.upload] : [])),
    ];
    try {
      await deps.storage.delete(keys);
      deleted.push(job.id);
    } catch (error) {
      // Keep the row (and so the keys) for the next run; one failure must not stall the others.
      deps.log.warn({ err: error, jobId: job.id }, 'could not delete the files of an expired job');
    }
  }
  await deps.store.deleteJobs(deleted);
  return deleted.length;
}

export function startMaintenance(deps: MaintenanceDeps, intervalMs = 5 * 60_000): () => void {
  const run = async () => {
    try {
      const lost = await reconcileLostJobs(deps.db);
      const deleted = await deleteExpiredJobs(deps);
      const webhooks = (await deps.webhooks?.sweep()) ?? 0;
      if (lost > 0 || deleted > 0 || webhooks > 0) deps.log.info({ lost, deleted, webhooks_requeued: webhooks }, 'maintenance');
    } catch (error) {
      deps.log.warn({ err: error }, 'maintenance failed');
    }
  };
  const timer = setInterval(() => void run(), intervalMs);
  timer.unref();
  const first = setTimeout(() => void run(), 10_000);
  first.unref();
  return () => {
    clearInterval(timer);
    clearTimeout(first);
  };
}
