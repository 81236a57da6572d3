/**
 * Webhooks through the queue: each event is a pg-boss job on the `webhooks`
 * queue, delivered by whichever process runs a delivery worker, retried with
 * backoff on failure. The final `completed` event (sent for completed,
 * failed and canceled jobs) is also queued again by maintenance when it was
 * never queued (a crash between the job's end and the enqueue) or its retries
 * ran out an hour ago without a delivery, for a day; so it arrives at least
 * once, and receivers dedupe on `webhook-id`.
 *
 * Body: `{"type": "job.<event>", "timestamp", "data": <the GET /job JSON>}`.
 */
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { JobRow, WebhookEvent } from '../db/schema.ts';
import type { JobQueue } from '../jobs/queue.ts';
import { presentJob } from '../jobs/present.ts';
import type { Logger } from '../logger.ts';
import { postWebhook, type WebhookTargetPolicy } from './send.ts';
import { webhookHeaders } from './sign.ts';

export const WEBHOOK_QUEUE = 'webhooks';

interface Delivery {
  jobId: string;
  event: WebhookEvent;
  /** Distinguishes progress events; stable across retries of one delivery. */
  seq: number;
}

export class WebhookDispatcher {
  readonly #db: Db;
  readonly #queue: JobQueue;
  readonly #secret: string;
  readonly #policy: WebhookTargetPolicy;
  readonly #log: Logger;
  #ready: Promise<void> | undefined;

  constructor(deps: { db: Db; queue: JobQueue; secret: string; policy: WebhookTargetPolicy; log: Logger }) {
    this.#db = deps.db;
    this.#queue = deps.queue;
    this.#secret = deps.secret;
    this.#policy = deps.policy;
    this.#log = deps.log;
  }

  #ensureQueue(): Promise<void> {
    this.#ready ??= this.#queue.boss
      .createQueue(WEBHOOK_QUEUE, { retryLimit: 10, retryDelay: 5, retryBackoff: true, retryDelayMax: 600, expireInSeconds: 60, notify: true })
      .catch(async (error: unknown) => {
        if (!(await this.#queue.boss.getQueue(WEBHOOK_QUEUE))) throw error;
      });
    return this.#ready;
  }

  /** Queue an event for a job if its webhook asked for it. Never throws: webhooks must not fail jobs. */
  async notify(row: Pick<JobRow, 'id' | 'webhook'>, event: WebhookEvent): Promise<void> {
    if (!row.webhook || !row.webhook.events.includes(event)) return;
    try {
      await this.#ensureQueue();
      const seq = event === 'progress' ? Date.now() : 0;
      await this.#queue.boss.send(
        WEBHOOK_QUEUE,
        { jobId: row.id, event, seq } satisfies Delivery,
        // Progress at most once a second per job (pg-boss throttles by singletonKey within singletonSeconds).
        event === 'progress' ? { singletonKey: `${row.id}:progress`, singletonSeconds: 1 } : {},
      );
      if (event === 'completed') {
        await this.#db.updateTable('jobs').set({ webhook_queued_at: sql<Date>`now()` }).where('id', '=', row.id).execute();
      }
    } catch (error) {
      this.#log.warn({ err: error, jobId: row.id, event }, 'could not queue webhook');
    }
  }

  /** Deliver queued webhooks from this process. */
  async startWorker(): Promise<void> {
    await this.#ensureQueue();
    await this.#queue.boss.work<Delivery>(WEBHOOK_QUEUE, { localConcurrency: 4, batchSize: 1, pollingIntervalSeconds: 2, notifyPollingIntervalSeconds: 2 }, async ([job]) => {
      if (job) await this.#deliver(job.data, job.retryCount);
    });
  }

  async #deliver(delivery: Delivery, retryCount: number): Promise<void> {
    const row = await this.#db.selectFrom('jobs').selectAll().where('id', '=', delivery.jobId).executeTakeFirst();
    if (!row?.webhook) return;
    const body = JSON.stringify({ type: `job.${delivery.event}`, timestamp: new Date().toISOString(), data: presentJob(row) });
    const id = `${row.id}.${delivery.event}${delivery.seq ? `.${delivery.seq}` : ''}`;
    try {
      await postWebhook(row.webhook.url, webhookHeaders(this.#secret, id, body), body, this.#policy);
    } catch (error) {
      this.#log.warn({ jobId: row.id, event: delivery.event, attempt: retryCount + 1, err: error }, 'webhook delivery failed; will retry');
      throw error;
    }
    if (delivery.event === 'completed') {
      await this.#db.updateTable('jobs').set({ webhook_sent_at: sql<Date>`now()` }).where('id', '=', row.id).execute();
    }
    this.#log.debug({ jobId: row.id, event: delivery.event }, 'webhook delivered');
  }

  /**
   * Maintenance: queue again the final webhook of jobs that finished in the
   * last day and asked for it, when it was never queued, or was queued more
   * than an hour ago (longer than its retries take) and never delivered.
   */
  async sweep(): Promise<number> {
    const rows = await this.#db
      .selectFrom('jobs')
      .select(['id', 'webhook'])
      .where('webhook', 'is not', null)
      .where(sql<boolean>`webhook->'events' ? 'completed'`)
      .where('webhook_sent_at', 'is', null)
      .where('finished_at', '<', sql<Date>`now() - interval '2 minutes'`)
      .where('finished_at', '>', sql<Date>`now() - interval '1 day'`)
      .where((eb) => eb.or([eb('webhook_queued_at', 'is', null), eb('webhook_queued_at', '<', sql<Date>`now() - interval '1 hour'`)]))
      .orderBy('finished_at')
      .limit(500)
      .execute();
    for (const row of rows) await this.notify(row, 'completed');
    return rows.length;
  }
}
