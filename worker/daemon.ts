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
import type { Job } from 'pg-boss';
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

  /** Queues this daemon pulls from: one per ready engine. */
  get routes(): string[] {
    return [
      ...[...this.#engineSet.swap.keys()].map((n) => routeFor('face_swap', n)),
      ...[...this.#engineSet.cartoonify.keys()].map((n) => routeFor('cartoonify', n)),
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
      const id = await queue.boss.work<JobPayload>(
        name,
        {
          localConcurrency: this.#deps.concurrency ?? 1,
          batchSize: 1,
          pollingIntervalSeconds: 2,
          notifyPollingIntervalSeconds: 10,
        },
        async ([job]) => {
          if (job) await this.#handle(job);
        },
      );
      this.#workIds.push({ queue: name, id });
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

  async #handle(job: Job<JobPayload>): Promise<void> {
    const { store } = this.#deps;
    const jobId = job.data.jobId;
    const attempt = job.retryCount + 1;
    const row = await store.startAttempt(jobId, attempt, this.id);
    if (!row) {
      this.#log.info({ jobId }, 'job no longer runnable (canceled or finished); skipping');
      return;
    }
    const abort = new AbortController();
    const onBossAbort = () => abort.abort(new JobError('lease_lost', 'the queue took the job back', { retryable: true }));
    job.signal.addEventListener('abort', onBossAbort, { once: true });
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    this.#running.set(jobId, { jobId, attempt, abort, done });
    const log = this.#log.child({ jobId, attempt, kind: row.kind, engine: row.engine });
    log.info('job started');
    if (attempt === 1) await this.#deps.webhooks?.notify(row, 'start');
    try {
      await this.#execute(row, attempt, abort, log);
    } finally {
      job.signal.removeEventListener('abort', onBossAbort);
      this.#running.delete(jobId);
      resolveDone();
    }
  }

  async #execute(row: JobRow, attempt: number, abort: AbortController, log: Logger): Promise<void> {
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
        urls.push(await storage.put(key, encoded.bytes, encoded.contentType));
        storedKeys.push(key);
      }
      await progress.stop();
      const completed = await store.complete(row.id, attempt, {
        urls,
        keys: storedKeys,
        info: { ...output.info, run_ms: Date.now() - started },
      });
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
      if (retryable && attempt < this.#deps.queue.settings.maxAttempts) {
        log.warn({ err: reason }, 'transient failure; the queue will retry');
        await store.requeue(row.id, attempt, body);
        throw reason; // pg-boss schedules the retry with backoff
      }
      log.warn({ code: body.code, message: body.message }, 'job failed');
      const failed = await store.fail(row.id, attempt, body);
      if (failed) await this.#deps.webhooks?.notify(failed, 'completed');
    }
  }
}

/** A daemon over the shared core (database, queue, events, storage), fetching inputs with the configured intake policy. */
export function createDaemon(
  core: Core,
  config: Config,
  options: { engines: Engine[]; log: Logger; version: string; heartbeatMs?: number },
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
  });
}
