/**
 * Waiting for a job to reach a state, driven by NOTIFY. A slow re-read
 * (every `fallbackMs`) covers the case of a listener that is down.
 */
import { TERMINAL_STATUSES, type JobRow } from '../db/schema.ts';
import type { JobEvents } from './events.ts';
import type { JobStore } from './store.ts';

export interface WaitOptions {
  /** Default: the job is completed, failed or canceled. */
  until?: (row: JobRow) => boolean;
  signal?: AbortSignal;
  fallbackMs?: number;
}

export const isTerminal = (row: Pick<JobRow, 'status'>): boolean => TERMINAL_STATUSES.includes(row.status);

/** Resolves with the row once `until` holds, or with the latest row when `timeoutMs` runs out (undefined if gone). */
export function waitForJob(
  store: JobStore,
  events: JobEvents,
  id: string,
  timeoutMs: number,
  options: WaitOptions = {},
): Promise<JobRow | undefined> {
  const until = options.until ?? isTerminal;
  return new Promise((resolve) => {
    let settled = false;
    let last: JobRow | undefined;
    const cleanups: Array<() => void> = [];
    const finish = (row: JobRow | undefined) => {
      if (settled) return;
      settled = true;
      for (const c of cleanups) c();
      resolve(row);
    };
    const check = async () => {
      if (settled) return;
      let row: JobRow | undefined;
      try {
        row = await store.get(id);
      } catch {
        return; // database unavailable: the next event, reconnect or fallback tick tries again
      }
      if (settled) return;
      last = row;
      if (!row || until(row)) finish(row);
    };
    if (options.signal?.aborted) {
      resolve(undefined);
      return;
    }
    cleanups.push(events.subscribe(id, (event) => {
      if (TERMINAL_STATUSES.includes(event.status) || options.until) void check();
    }));
    cleanups.push(events.onReconnect(() => void check()));
    const timer = setTimeout(async () => {
      await check();
      finish(last);
    }, timeoutMs);
    const fallback = setInterval(() => void check(), options.fallbackMs ?? 10_000);
    cleanups.push(() => clearTimeout(timer), () => clearInterval(fallback));
    if (options.signal) {
      const onAbort = () => finish(last);
      options.signal.addEventListener('abort', onAbort, { once: true });
      cleanups.push(() => options.signal!.removeEventListener('abort', onAbort));
    }
    void check();
  });
}
