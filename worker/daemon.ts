/**
 * The daemon: registers itself, pulls jobs for the routes its ready engines
 * serve, runs them, stores the results and settles the job record.
 *
 * Failure rules (DESIGN 2):
 * - permanent errors (JobError with retryable false) fail the job at once;
 * - transient ones put the row back to `queued` and let pg-boss retry with
 *   backoff, up to JOB_MAX_ATTEMPTS;
 * - a daemon that dies stops heart-beating; pg-boss hands the job to another
 *   daemon as attempt n+1, and every write of attempt n is refused from then on;
 * - cancel: the row turns `canceled`, the NOTIFY reaches us, the engine's
 *   abort signal fires.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import { sql } from 'kysely';
import type { JobWithMetadata } from 'pg-boss';
import type { Config } from '../lib/config.ts';
import type { Db } from '../lib/db/database.ts';
import type { EngineReport, JobRow } from '../lib/db/schema.ts';
import { isJobError, JobError, toErrorBody } from '../lib/errors.ts';
import type { InputImage } from '../lib/images/raw.ts';
import { createImageLoader } from '../lib/intake/index.ts';
import type { JobEvents } from '../lib/jobs/events.ts';
import { OutputOptionsSchema } from '../lib/jobs/params.ts';
import { routeFor, type JobPayload, type JobQueue } from '../lib/jobs/queue.ts';
import type { JobStore } from '../lib/jobs/store.ts';
import type { Logger } from '../lib/logger.ts';
import type { Core } from '../lib/runtime.ts';
import { extensionFor, type Storage } from '../lib/storage/index.ts';
import type { WebhookDispatcher } from '../lib/webhooks/dispatcher.ts';
import type { Engine } from './engine.ts';
import { createInputResolver, type InputResolver } from './inputs.ts';
import { encodeOutput } from './output.ts';
import { ThrottledProgress } from './progress.ts';
import { runJob, type EngineSet } from './run-job.ts';

export interface DaemonDeps {
  db: Db;
  store: JobStore;
  queue: JobQueue;
  events: JobEvents;
  storage: Storage;
  webhooks?: WebhookDispatcher | undefined;
  engines: Engine[];
  resolveInput: InputResolver;
  decode(bytes: Buffer): Promise<InputImage>;
  log: Logger;
  version: string;
  concurrency?: number;
  heartbeatMs?: number;
  /** How long SIGTERM waits for running jobs before handing them back. */
  drainTimeoutMs?: number;
  /**
   * Polls of the queue besides NOTIFY (which wakes the daemon for new jobs at once): they pick up retries
   * whose backoff has passed, and cover a lost notification.
   */
  pollingIntervalSeconds?: number;
  notifyPollingIntervalSeconds?: number;
}


interface Running {
  jobId: string;
  attempt: number;
  abort: AbortController;
  done: Promise<void>;
}

export class Daemon {
  readonly id = `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly #deps: DaemonDeps;
  readonly #log: Logger;
  readonly #running = new Map<string, Running>();
  readonly #engineSet: EngineSet;
  #heartbeat: NodeJS.Timeout | undefined;
  #workIds: Array<{ queue: string; id: string }> = [];
  #stopping = false;
  #unsubscribe: (() => void) | undefined;

  constructor(deps: DaemonDeps) {
    this.#deps = deps;
    this.#log = deps.log.child({ daemon: this.id });
    const ready = deps.engines.filter((e) => e.status().ready);
    this.#engineSet = {
      swap: new Map(ready.filter((e) => e.task === 'face_swap').map((e) => [e.name, e])),
      cartoonify: new Map(ready.filter((e) => e.task === 'cartoonify').map((e) => [e.name, e])),
    };
  }

  /** Queues this daemon pulls from: one per ready engine, and cartoon swaps only with a cartoonify engine ready. */
  get routes(): string[] {
    const swap = [...this.#engineSet.swap.keys()];
    const cartoon = [...this.#engineSet.cartoonify.keys()];
    return [
      ...swap.map((n) => routeFor('face_swap', n)),
      ...cartoon.map((n) => routeFor('cartoonify', n)),
      ...(cartoon.length > 0 ? swap.map((n) => routeFor('face_swap_cartoon', n)) : []),
    ];
  }

  get device(): string {
    const devices = new Set(this.#deps.engines.map((e) => e.device).filter((d) => d !== 'remote'));
    return devices.has('cuda') ? 'cuda' : 'cpu';
  }

  engineReports(): EngineReport[] {
    return this.#deps.engines.map((e) => {
      const status = e.status();
      return { name: e.name, task: e.task, device: e.device, ready: status.ready, ...(status.detail ? { detail: status.detail } : {}) };
    });
  }

  async start(): Promise<void> {
    const { db, queue, events } = this.#deps;
    await db
      .insertInto('daemons')
      .values({
        id: this.id,
        host: os.hostname(),
        pid: process.pid,
        version: this.#deps.version,
        device: this.device,
        engines: JSON.stringify(this.engineReports()),
      })
      .execute();
    this.#heartbeat = setInterval(() => void this.#beat(), this.#deps.heartbeatMs ?? 10_000);
    this.#unsubscribe = events.subscribeAll((event) => {
      if (event.status !== 'canceled') return;
      const running = this.#running.get(event.id);
      if (running) {
        this.#log.info({ jobId: event.id }, 'job canceled while running: aborting');
        running.abort.abort(new JobError('canceled', 'The job was canceled'));
      }
    });
    for (const name of this.routes) {
      await queue.ensure(name);
      // One pg-boss worker per slot, so that each can be woken after its job: pg-boss otherwise
      // waits its poll interval before fetching again, and a backlog would drain one job per interval.
      for (let slot = 0; slot < (this.#deps.concurrency ?? 1); slot++) {
        const worker: { id?: string } = {};
        worker.id = await queue.boss.work(
          name,
          {
            localConcurrency: 1,
            batchSize: 1,
            includeMetadata: true,
            pollingIntervalSeconds: this.#deps.pollingIntervalSeconds ?? 2,
            notifyPollingIntervalSeconds: this.#deps.notifyPollingIntervalSeconds ?? 2,
          },
          async ([job]: JobWithMetadata<JobPayload>[]) => {
            if (!job) return;
            try {
              await this.#handle(job);
            } finally {
              if (worker.id && !this.#stopping) queue.boss.notifyWorker(worker.id);
            }
          },
        );
        this.#workIds.push({ queue: name, id: worker.id });
      }
    }
    this.#log.info({ routes: this.routes, engines: this.engineReports() }, 'daemon started');
  }

  /**
   * Graceful stop (SIGTERM): take no new jobs, let running ones finish for
   * up to `drainTimeoutMs`, then abort and hand back what is left.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    await this.#deps.db.updateTable('daemons').set({ status: 'stopping' }).where('id', '=', this.id).execute().catch(() => {});
    await Promise.all(this.#workIds.map((w) => this.#deps.queue.boss.offWork(w.queue, { id: w.id, wait: false }).catch(() => {})));
    const drained = Promise.all([...this.#running.values()].map((r) => r.done));
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), this.#deps.drainTimeoutMs ?? 30_000).unref());
    if ((await Promise.race([drained, timeout])) === 'timeout') {
      for (const r of this.#running.values()) r.abort.abort(new JobError('daemon_shutdown', 'the daemon is shutting down', { retryable: true }));
      await drained;
    }
    clearInterval(this.#heartbeat);
    this.#unsubscribe?.();
    await this.#deps.db.updateTable('daemons').set({ status: 'stopped', current_job: null }).where('id', '=', this.id).execute().catch(() => {});
    this.#log.info('daemon stopped');
  }

  async #beat(): Promise<void> {
    const current = [...this.#running.keys()][0] ?? null;
    await this.#deps.db
      .updateTable('daemons')
      .set({ last_seen_at: sql<Date>`now()`, current_job: current, engines: JSON.stringify(this.engineReports()) })
      .where('id', '=', this.id)
      .execute()
      .catch((e: unknown) => this.#log.warn({ err: e }, 'daemon heartbeat failed'));
  }

  async #handle(job: JobWithMetadata<JobPayload>): Promise<void> {
    const { store } = this.#deps;
    const jobId = job.data.jobId;
    const attempt = job.retryCount + 1;
    // The queue's own retry limit decides, not this process's settings (a queue keeps the limit it was created with).
    const attemptsLeft = job.retryCount < job.retryLimit;
    const row = await store.startAttempt(jobId, attempt, this.id);
    if (!row) {
      this.#log.info({ jobId }, 'job no longer runnable (canceled or finished); skipping');
      return;
    }
    const abort = new AbortController();
    // pg-boss aborts a job whose lease (heartbeat) or JOB_TIMEOUT_S ran out; it runs again as the next attempt.
    const onBossAbort = () => abort.abort(new JobError('lease_lost', 'the queue took the job back (its lease or JOB_TIMEOUT_S ran out)', { retryable: true }));
    job.signal.addEventListener('abort', onBossAbort, { once: true });
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const running: Running = { jobId, attempt, abort, done };
    this.#running.set(jobId, running);
    const log = this.#log.child({ jobId, attempt, kind: row.kind, engine: row.engine });
    log.info('job started');
    if (attempt === 1) await this.#deps.webhooks?.notify(row, 'start');
    try {
      await this.#execute(row, attempt, attemptsLeft, abort, log);
    } finally {
      job.signal.removeEventListener('abort', onBossAbort);
      // A later attempt of the same job may be running here by now (WORKER_CONCURRENCY > 1): leave its entry alone.
      if (this.#running.get(jobId) === running) this.#running.delete(jobId);
      resolveDone();
    }
  }

  async #execute(row: JobRow, attempt: number, attemptsLeft: boolean, abort: AbortController, log: Logger): Promise<void> {
    const { store, storage } = this.#deps;
    const started = Date.now();
    const progress = new ThrottledProgress({
      write: async (p, stage) => {
        const ours = await store.progress(row.id, attempt, p, stage);
        if (ours) await this.#deps.webhooks?.notify(row, 'progress');
        return ours;
      },
      onLost: () => abort.abort(new JobError('canceled', 'The job is no longer ours (canceled or retried elsewhere)')),
    });
    const storedKeys: string[] = [];
    try {
      const output = await runJob(
        row,
        { engines: this.#engineSet, resolveInput: this.#deps.resolveInput, decode: this.#deps.decode },
        { signal: abort.signal, progress: (f, stage) => progress.report(f, stage), log },
      );
      if (output.images.length === 0) throw new JobError('engine_no_output', 'the engine returned no image');
      const outputOptions = OutputOptionsSchema.parse(row.params);
      const urls: string[] = [];
      for (const image of output.images) {
        const encoded = await encodeOutput(image, outputOptions);
        const key = `results/${row.id}/${randomUUID().replaceAll('-', '')}.${extensionFor(encoded.contentType)}`;
        storedKeys.push(key);
        urls.push(
          await storage.put(key, encoded.bytes, encoded.contentType).catch((e: unknown) => {
            throw new JobError('storage_unavailable', `storing the result failed: ${(e as Error).message}`, { retryable: true, cause: e });
          }),
        );
      }
      await progress.stop();
      const result = { urls, keys: storedKeys, info: { ...output.info, run_ms: Date.now() - started } };
      let completed: JobRow | undefined;
      try {
        completed = await store.complete(row.id, attempt, result);
      } catch (error) {
        // The commit may have happened with only the reply lost: look before discarding the stored results.
        completed = await this.#completedWith(row.id, attempt, storedKeys);
        if (!completed) throw error;
      }
      if (!completed) {
        log.info('job was canceled or taken over before it completed; discarding its result');
        await storage.delete(storedKeys).catch(() => {});
        return;
      }
      log.info({ ms: Date.now() - started }, 'job completed');
      await this.#deps.webhooks?.notify(completed, 'completed');
    } catch (error) {
      await progress.stop();
      await storage.delete(storedKeys).catch(() => {});
      const reason = abort.signal.aborted ? abort.signal.reason : error;
      const body = toErrorBody(reason);
      if (body.code === 'canceled') {
        log.info('job canceled');
        return;
      }
      const retryable = isJobError(reason) && reason.retryable;
      if (retryable && attemptsLeft) {
        log.warn({ err: reason }, 'transient failure; the queue will retry');
        await store.requeue(row.id, attempt, body);
        throw reason; // pg-boss schedules the retry with backoff
      }
      log.warn({ code: body.code, message: body.message }, 'job failed');
      const failed = await store.fail(row.id, attempt, body);
      if (failed) await this.#deps.webhooks?.notify(failed, 'completed');
    }
  }

  /** The row, if it is completed by this attempt with these results (retrying the read while the database comes back). */
  async #completedWith(id: string, attempt: number, keys: string[]): Promise<JobRow | undefined> {
    for (let i = 0; i < 5; i++) {
      try {
        const row = await this.#deps.store.get(id);
        const same = row?.status === 'completed' && row.attempt === attempt && JSON.stringify(row.result_keys) === JSON.stringify(keys);
        return same ? row : undefined;
      } catch {
        await new Promise((r) => setTimeout(r, 1_000 * (i + 1)));
      }
    }
    return undefined;
  }
}

/** A daemon over the shared core (database, queue, events, storage), fetching inputs with the configured intake policy. */
export function createDaemon(
  core: Core,
  config: Config,
  options: { engines: Engine[]; log: Logger; version: string } & Pick<DaemonDeps, 'heartbeatMs' | 'pollingIntervalSeconds' | 'notifyPollingIntervalSeconds'>,
): Daemon {
  const loader = createImageLoader(config);
  return new Daemon({
    db: core.database.db,
    store: core.store,
    queue: core.queue,
    events: core.events,
    storage: core.storage,
    webhooks: core.webhooks,
    engines: options.engines,
    resolveInput: createInputResolver(loader, core.storage),
    decode: (bytes) => loader.decode(bytes),
    log: options.log,
    version: options.version,
    concurrency: config.WORKER_CONCURRENCY,
    ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
    ...(options.pollingIntervalSeconds ? { pollingIntervalSeconds: options.pollingIntervalSeconds } : {}),
    ...(options.notifyPollingIntervalSeconds ? { notifyPollingIntervalSeconds: options.notifyPollingIntervalSeconds } : {}),
  });
}
