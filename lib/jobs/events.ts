/**
 * Job change events from Postgres: one dedicated connection LISTENs on
 * `job_events` (NOTIFYed by the jobs table's trigger) and fans out to
 * in-process subscribers by job id.
 *
 * If the connection drops (Postgres restarted), it reconnects with backoff
 * and tells `onReconnect` listeners, who re-read what they wait for: a
 * notification sent while we were away is never waited for in vain.
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { JobStatus } from '../db/schema.ts';
import type { Logger } from '../logger.ts';

export interface JobEvent {
  id: string;
  status: JobStatus;
  progress: number;
  stage: string | null;
  attempt: number;
}

const CHANNEL = 'job_events';

export class JobEvents {
  readonly #url: string;
  readonly #log: Logger;
  readonly #emitter = new EventEmitter();
  #client: pg.Client | undefined;
  #closed = false;
  #connected = false;
  #retryTimer: NodeJS.Timeout | undefined;

  private constructor(url: string, log: Logger) {
    this.#url = url;
    this.#log = log;
    this.#emitter.setMaxListeners(0);
  }

  static async start(url: string, log: Logger): Promise<JobEvents> {
    const events = new JobEvents(url, log);
    await events.#connect();
    return events;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Calls `fn` for every event of job `id`; returns the unsubscribe function. */
  subscribe(id: string, fn: (event: JobEvent) => void): () => void {
    this.#emitter.on(id, fn);
    return () => this.#emitter.off(id, fn);
  }

  /** Calls `fn` for every event of every job. */
  subscribeAll(fn: (event: JobEvent) => void): () => void {
    this.#emitter.on('*', fn);
    return () => this.#emitter.off('*', fn);
  }

  /** Calls `fn` after each reconnect (events may have been missed). */
  onReconnect(fn: () => void): () => void {
    this.#emitter.on('reconnect', fn);
    return () => this.#emitter.off('reconnect', fn);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    await this.#client?.end().catch(() => {});
  }

  async #connect(attempt = 0): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url, application_name: 'faceswap-events', keepAlive: true });
    client.on('notification', (msg) => {
      if (msg.channel !== CHANNEL || !msg.payload) return;
      let event: JobEvent;
      try {
        event = JSON.parse(msg.payload) as JobEvent;
      } catch {
        return;
      }
      this.#emitter.emit(event.id, event);
      this.#emitter.emit('*', event);
    });
    client.on('error', (e) => this.#log.warn({ err: e }, 'job events connection error'));
    client.on('end', () => {
      if (this.#client !== client) return;
      this.#connected = false;
      if (!this.#closed) this.#scheduleReconnect(0);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => {});
      if (attempt === 0 && !this.#client) throw error;
      this.#scheduleReconnect(attempt + 1);
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    const reconnected = this.#client !== undefined;
    this.#client = client;
    this.#connected = true;
    if (reconnected) {
      this.#log.info('job events listener reconnected');
      this.#emitter.emit('reconnect');
    }
  }

  #scheduleReconnect(attempt: number): void {
    if (this.#closed || this.#retryTimer) return;
    const delay = Math.min(5_000, 100 * 2 ** attempt);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#connect(attempt);
    }, delay);
  }
}
