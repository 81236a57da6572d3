/**
 * Job endpoints: the original service's three creating endpoints, status,
 * cancel, and a server-sent-events stream of a job's progress.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { JobRow } from '../../lib/db/schema.ts';
import { JobError } from '../../lib/errors.ts';
import type { ImageRef, JobKind, SwapEngineName } from '../../lib/jobs/params.ts';
import { isTerminal, waitForJob } from '../../lib/jobs/wait.ts';
import { extensionFor } from '../../lib/storage/index.ts';
import type { ApiDeps } from '../deps.ts';
import { parseBody } from '../http/body.ts';
import { ApiError, errorBody, statusForCode } from '../http/errors.ts';
import { parsePrefer } from '../http/prefer.ts';
import { formatSeconds, presentJob } from '../../lib/jobs/present.ts';
import { parseJobRequest, type InputSource } from '../requests.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const QUEUED_MESSAGES: Record<JobKind, string> = {
  face_swap: 'Face swap job queued',
  cartoonify: 'Cartoonify job queued',
  face_swap_cartoon: 'Cartoon face swap job queued',
};

export function jobRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  const { config, store, events } = deps;
  let queueDepth = { at: 0, value: Promise.resolve(0) };

  /** Queued jobs, re-counted at most once a second. */
  const currentDepth = (): Promise<number> => {
    if (Date.now() - queueDepth.at > 1_000) {
      queueDepth = { at: Date.now(), value: store.queuedCount() };
      queueDepth.value.catch(() => (queueDepth.at = 0));
    }
    return queueDepth.value;
  };

  async function storeUploads(jobId: string, inputs: Record<string, InputSource>): Promise<{ refs: Record<string, ImageRef>; keys: string[] }> {
    const refs: Record<string, ImageRef> = {};
    const keys: string[] = [];
    try {
      for (const [role, source] of Object.entries(inputs)) {
        if ('url' in source) {
          refs[role] = { url: source.url };
          continue;
        }
        let image;
        try {
          image = await deps.decodeUpload(source.file);
        } catch (error) {
          if (error instanceof JobError) throw new ApiError(statusForCode(error.code), error.code, `${role}_image: ${error.message}`);
          throw error;
        }
        const key = `inputs/${jobId}/${randomUUID().replaceAll('-', '')}.${extensionFor(`image/${image.format}`)}`;
        await deps.storage.put(key, image.bytes, `image/${image.format}`);
        keys.push(key);
        refs[role] = { upload: key };
      }
    } catch (error) {
      await deps.storage.delete(keys).catch(() => {});
      throw error;
    }
    return { refs, keys };
  }

  function requestHash(kind: JobKind, inputs: Record<string, InputSource>, params: Record<string, unknown>): string {
    const described = Object.fromEntries(
      Object.entries(inputs).map(([role, s]) => [role, 'url' in s ? { url: s.url } : { sha256: createHash('sha256').update(s.file).digest('hex') }]),
    );
    return createHash('sha256').update(JSON.stringify({ kind, described, params })).digest('hex');
  }

  function respondWithJob(c: Context, row: JobRow, startedAt: number, replayed: boolean) {
    c.header('Location', `/job/${row.id}`);
    if (replayed) c.header('Idempotent-Replayed', 'true');
    if (row.status === 'completed') {
      const urls = row.result_urls ?? [];
      return c.json({
        success: true,
        job_id: row.id,
        result_url: urls[0] ?? null,
        ...(urls.length > 1 ? { result_urls: urls } : {}),
        processing_time: replayed ? presentJob(row).processing_time : formatSeconds(Date.now() - startedAt),
      });
    }
    if (row.status === 'failed') {
      const code = row.error_code ?? 'internal_error';
      return c.json(errorBody(code, row.error_message ?? 'The job failed', { job_id: row.id }), statusForCode(code));
    }
    if (row.status === 'canceled') return c.json(errorBody('canceled', 'The job was canceled', { job_id: row.id }), 409);
    const { job_id, status, ...rest } = presentJob(row);
    return c.json({ success: true, job_id, message: QUEUED_MESSAGES[row.kind], status, ...rest, status_url: `/job/${row.id}` }, 202);
  }

  /** Create a job; `blocking` endpoints wait for it by default, others only when `Prefer: wait=N` asks. */
  async function createJob(c: Context, kind: JobKind, blocking: boolean) {
    const startedAt = Date.now();
    const prefer = parsePrefer(c.req.header('prefer'), config.SYNC_TIMEOUT_S);
    const idempotencyKey = c.req.header('idempotency-key');
    if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > 255)) {
      throw new ApiError(400, 'invalid_request', 'Idempotency-Key: must be 1 to 255 characters');
    }
    const body = await parseBody(c, { json: config.BODY_LIMIT_BYTES, multipart: 3 * config.FETCH_MAX_BYTES + config.BODY_LIMIT_BYTES });
    const request = parseJobRequest(kind, body, deps);
    if ((await currentDepth()) >= config.MAX_QUEUE_DEPTH) {
      throw new ApiError(429, 'queue_full', `The queue is full (${config.MAX_QUEUE_DEPTH} jobs waiting); retry later`, {
        headers: { 'Retry-After': '30' },
      });
    }
    const route = await deps.directory.route(kind, request.params.engine as SwapEngineName | undefined);
    const jobId = randomUUID();
    const { refs, keys } = await storeUploads(jobId, request.inputs);
    const hash = requestHash(kind, request.inputs, { ...request.params, webhook: request.webhook ?? null });
    const result = await store
      .create({
        id: jobId,
        kind,
        engine: route.engine,
        queue: route.queue,
        owner: 'anonymous',
        input: refs,
        params: request.params,
        ...(request.webhook ? { webhook: request.webhook } : {}),
        ...(idempotencyKey ? { idempotencyKey, requestHash: hash } : {}),
      })
      .catch(async (error: unknown) => {
        await deps.storage.delete(keys).catch(() => {});
        throw error;
      });
    if (result.outcome !== 'created') await deps.storage.delete(keys).catch(() => {});
    if (result.outcome === 'key_conflict') {
      throw new ApiError(422, 'idempotency_key_mismatch', 'This Idempotency-Key was already used with a different request', {
        extra: { job_id: result.job.id },
      });
    }
    const waitS = blocking ? (prefer.respondAsync ? 0 : (prefer.wait ?? config.SYNC_TIMEOUT_S)) : (prefer.wait ?? 0);
    if (prefer.wait !== undefined || prefer.respondAsync) c.header('Preference-Applied', waitS > 0 ? `wait=${waitS}` : 'respond-async');
    let row = result.job;
    if (waitS > 0 && !isTerminal(row)) {
      row = (await waitForJob(store, events, row.id, waitS * 1000, { signal: c.req.raw.signal })) ?? row;
    }
    return respondWithJob(c, row, startedAt, result.outcome === 'replayed');
  }

  app.post('/face-swap', (c) => createJob(c, 'face_swap', false));
  app.post('/face-swap-with-cartoon', (c) => createJob(c, 'face_swap_cartoon', true));
  app.post('/cartoonify-only', (c) => createJob(c, 'cartoonify', true));

  /** Loads a job by the id in the URL: 400 for a malformed id, 404 for an unknown one. */
  async function findJob<T>(id: string, load: (id: string) => Promise<T | undefined>): Promise<T> {
    if (!UUID.test(id)) throw new ApiError(400, 'invalid_job_id', `"${id.slice(0, 64)}" is not a job id (a UUID)`);
    const row = await load(id);
    if (!row) throw new ApiError(404, 'not_found', `No job with id ${id}`);
    return row;
  }

  app.get('/job/:id', async (c) => c.json(presentJob(await findJob(c.req.param('id'), (id) => store.getStatus(id)))));

  app.post('/job/:id/cancel', async (c) => {
    const row = await findJob(c.req.param('id'), (id) => store.get(id));
    const result = await store.cancel(row.id);
    if (!result) throw new ApiError(404, 'not_found', `No job with id ${row.id}`);
    if (result.canceled) await deps.webhooks?.notify(result.job, 'completed');
    if (!result.canceled) {
      throw new ApiError(409, 'job_finished', `The job already ended with status ${result.job.status}`, { extra: { job: presentJob(result.job) } });
    }
    return c.json({ success: true, ...presentJob(result.job) });
  });

  app.get('/job/:id/events', async (c) => {
    const first = await findJob(c.req.param('id'), (id) => store.get(id));
    return streamSSE(c, async (stream) => {
      let eventId = 0;
      const send = (row: JobRow) =>
        stream.writeSSE({ event: isTerminal(row) ? 'done' : 'progress', id: String(++eventId), data: JSON.stringify(presentJob(row)) });
      await send(first);
      if (isTerminal(first)) return;
      let lastProgress = -1;
      let lastStage: string | null = null;
      const final = await waitForJob(store, events, first.id, 3_600_000, {
        signal: c.req.raw.signal,
        until: (row) => {
          if (isTerminal(row)) return true;
          if (row.progress !== lastProgress || row.stage !== lastStage) {
            lastProgress = row.progress;
            lastStage = row.stage;
            void send(row);
          }
          return false;
        },
        fallbackMs: 5_000,
      });
      if (final && isTerminal(final)) await send(final);
    });
  });

  return app;
}
