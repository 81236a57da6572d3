/** `GET /health` (readiness: database, queue, daemons and their engines) and `GET /` (API information). */
import { sql } from 'kysely';
import { Hono } from 'hono';
import type { ApiDeps } from '../deps.ts';
import { DAEMON_LIVE_SECONDS } from '../engine-routing.ts';

export function healthRoutes(deps: ApiDeps): Hono {
  const app = new Hono();

  app.get('/health', async (c) => {
    const started = performance.now();
    try {
      await sql`select 1`.execute(deps.db);
    } catch (error) {
      deps.log.warn({ err: error }, 'health: database unreachable');
      return c.json(
        { status: 'down', version: deps.version, database: { ok: false, error: 'unreachable' }, events_listener: deps.events.connected },
        503,
      );
    }
    const databaseMs = performance.now() - started;
    const [depth, daemons] = await Promise.all([deps.store.queuedCount(), deps.directory.liveDaemons()]);
    const engines: Record<string, { ready: boolean; daemons: number; detail?: string }> = {};
    for (const daemon of daemons) {
      for (const e of daemon.engines) {
        const key = `${e.task}:${e.name}`;
        const entry = (engines[key] ??= { ready: false, daemons: 0 });
        if (e.ready) {
          entry.ready = true;
          entry.daemons += 1;
          delete entry.detail;
        } else if (!entry.ready && e.detail) {
          entry.detail = e.detail;
        }
      }
    }
    return c.json({
      status: daemons.length > 0 ? 'ok' : 'degraded',
      version: deps.version,
      database: { ok: true, latency_ms: Number(databaseMs.toFixed(2)) },
      events_listener: deps.events.connected,
      queue: { depth },
      daemons: daemons.map((d) => ({
        id: d.id,
        host: d.host,
        device: d.device,
        version: d.version,
        engines: d.engines,
        current_job: d.current_job,
        started_at: d.started_at,
        last_seen_at: d.last_seen_at,
      })),
      daemons_window_s: DAEMON_LIVE_SECONDS,
      engines,
    });
  });

  app.get('/', (c) =>
    c.json({
      name: 'faceswap-job-api',
      version: deps.version,
      description: 'Face swap and cartoonify image jobs: POST a job, poll it or block for the result.',
      endpoints: {
        'POST /face-swap': 'Swap the face of face_image_url into base_image_url (asynchronous; Prefer: wait=N to block)',
        'POST /face-swap-with-cartoon': 'Cartoonify face_image_url, then swap it into base_image_url (blocking)',
        'POST /cartoonify-only': 'Turn image_url into a cartoon (blocking)',
        'GET /job/{job_id}': 'Job status and result',
        'GET /job/{job_id}/events': 'Server-sent events of a job\'s progress',
        'POST /job/{job_id}/cancel': 'Cancel a queued or running job',
        'GET /health': 'Readiness: database, queue depth, daemons and engines',
      },
      headers: {
        Prefer: 'wait=N (block up to N seconds) or respond-async',
        'Idempotency-Key': 'same key and body return the same job',
      },
    }),
  );
  return app;
}
