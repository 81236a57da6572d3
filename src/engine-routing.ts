/**
 * Which engine (and so which queue) a new job goes to, from what the live
 * daemons report in the `daemons` table (cached for a second or two).
 *
 * `engine: "auto"` picks the best engine some live daemon has ready
 * (diffusion, then landmark, then replicate). A named engine that no live
 * daemon offers is refused with 503 `engine_unavailable`. With no daemon
 * online at all, jobs are accepted and wait in the queue for one.
 */
import { sql } from 'kysely';
import type { Db } from '../lib/db/database.ts';
import type { DaemonRow } from '../lib/db/schema.ts';
import type { JobKind, SwapEngineName } from '../lib/jobs/params.ts';
import { routeFor } from '../lib/jobs/queue.ts';
import { ApiError } from './http/errors.ts';

const AUTO_ORDER = ['diffusion', 'landmark', 'replicate'] as const;
export const DAEMON_LIVE_SECONDS = 60;

export class EngineDirectory {
  readonly #db: Db;
  readonly #cacheMs: number;
  readonly #defaultSwapEngine: SwapEngineName;
  #cache: { at: number; rows: Promise<DaemonRow[]> } | undefined;

  constructor(db: Db, options: { cacheMs?: number; defaultSwapEngine?: SwapEngineName } = {}) {
    this.#db = db;
    this.#cacheMs = options.cacheMs ?? 2_000;
    this.#defaultSwapEngine = options.defaultSwapEngine ?? 'auto';
  }

  /** Daemons that heart-beat within the last minute and are not stopping. */
  liveDaemons(): Promise<DaemonRow[]> {
    const now = Date.now();
    if (!this.#cache || now - this.#cache.at > this.#cacheMs) {
      const rows = this.#db
        .selectFrom('daemons')
        .selectAll()
        .where('last_seen_at', '>', sql<Date>`now() - make_interval(secs => ${DAEMON_LIVE_SECONDS})`)
        .where('status', '=', 'running')
        .execute();
      this.#cache = { at: now, rows };
      rows.catch(() => (this.#cache = undefined));
    }
    return this.#cache.rows;
  }

  async route(kind: JobKind, requested: SwapEngineName | undefined): Promise<{ engine: string; queue: string }> {
    const daemons = await this.liveDaemons();
    const has = (task: string, name: string) =>
      daemons.some((d) => d.engines.some((e) => e.task === task && e.name === name && e.ready));
    const cartoonReady = daemons.some((d) => d.engines.some((e) => e.task === 'cartoonify' && e.ready));

    if (kind === 'cartoonify') {
      if (daemons.length > 0 && !has('cartoonify', 'replicate')) throw unavailable('cartoonify', 'replicate', daemons);
      return { engine: 'replicate', queue: routeFor('cartoonify', 'replicate') };
    }
    let engine: string = requested && requested !== 'auto' ? requested : this.#defaultSwapEngine;
    if (engine === 'auto') {
      engine = AUTO_ORDER.find((name) => has('face_swap', name) && (kind === 'face_swap' || cartoonReady)) ?? 'landmark';
    }
    if (daemons.length > 0) {
      const ok = daemons.some(
        (d) =>
          d.engines.some((e) => e.task === 'face_swap' && e.name === engine && e.ready) &&
          (kind === 'face_swap' || d.engines.some((e) => e.task === 'cartoonify' && e.ready)),
      );
      if (!ok) throw unavailable(kind === 'face_swap' ? 'face-swap' : 'face-swap + cartoonify', engine, daemons);
    }
    return { engine, queue: routeFor(kind, engine) };
  }
}

function unavailable(what: string, engine: string, daemons: DaemonRow[]): ApiError {
  const ready = [...new Set(daemons.flatMap((d) => d.engines.filter((e) => e.ready).map((e) => `${e.task}:${e.name}`)))];
  const notReady = daemons.flatMap((d) => d.engines.filter((e) => !e.ready && e.name === engine).map((e) => e.detail)).filter(Boolean);
  return new ApiError(
    503,
    'engine_unavailable',
    `No online daemon has the ${what} engine "${engine}" ready.` +
      (notReady.length > 0 ? ` Reason: ${notReady[0]}.` : '') +
      ` Ready: ${ready.length > 0 ? ready.join(', ') : 'none'}.`,
  );
}
