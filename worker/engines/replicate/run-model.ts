/**
 * Runs one Replicate model on input images and brings the output image back:
 * the part the cartoonify and face-swap engines share.
 *
 * Flow: images go inline or through the Files API (input-file.ts); the
 * prediction is created with `Prefer: wait` (sync wait, a few seconds) and,
 * if still running, polled; the job's signal cancels it (POST .../cancel);
 * REPLICATE_TIMEOUT_S bounds the whole run (provider_timeout, and the
 * prediction is cancelled); 429/5xx are retried inside a budget
 * (retry-fetch.ts); the output is downloaded, checked and returned as bytes.
 *
 * Cancellation is prompt: the run rejects as soon as the signal fires. If the
 * create call is still waiting for Replicate's answer at that moment, the
 * prediction is cancelled in the background once its id arrives; `close()`
 * waits for such pending cancels.
 */
import Replicate, { parseProgressFromLogs } from 'replicate';
import type { Logger } from 'pino';
import type { Config } from '../../../lib/config.ts';
import { JobAbortedError, JobError } from '../../../lib/errors.ts';
import type { InputImage } from '../../../lib/images/raw.ts';
import type { EngineContext, EngineOutput } from '../../engine.ts';
import { toProviderError } from './errors.ts';
import { DEFAULT_DATA_URI_MAX_BYTES, toFileInput } from './input-file.ts';
import { DEFAULT_OUTPUT_MAX_BYTES, downloadOutput, inRequestedFormat, pickOutputUrl } from './output.ts';
import {
  isTerminal,
  parseModelRef,
  parsePrediction,
  predictionErrorText,
  type ModelRef,
  type Prediction,
} from './prediction.ts';
import { createRetryingFetch, DEFAULT_RETRY_POLICY, sleep, type RetryPolicy } from './retry-fetch.ts';

/** Knobs with sensible defaults; tests shrink them. */
export interface ReplicateTuning {
  /** Delay between status polls once the sync wait is over. */
  pollIntervalMs: number;
  /** Seconds of `Prefer: wait` on create (Replicate allows 1-60). Short, so that a cancel never waits long for the prediction id. */
  syncWaitS: number;
  retry: RetryPolicy;
  /** Images up to this size go inline as data: URIs, larger ones through the Files API. */
  dataUriMaxBytes: number;
  outputMaxBytes: number;
  /** Time allowed for a cancel (or a file delete) request after the job gave up on a prediction. */
  cleanupTimeoutMs: number;
  /** How long a resolved `owner/name` -> latest version stays cached. */
  versionCacheMs: number;
}

export const DEFAULT_TUNING: ReplicateTuning = {
  pollIntervalMs: 1_000,
  syncWaitS: 10,
  retry: DEFAULT_RETRY_POLICY,
  dataUriMaxBytes: DEFAULT_DATA_URI_MAX_BYTES,
  outputMaxBytes: DEFAULT_OUTPUT_MAX_BYTES,
  cleanupTimeoutMs: 10_000,
  versionCacheMs: 10 * 60_000,
};

export interface ReplicateRunnerDeps {
  config: Config;
  log: Logger;
  fetch?: typeof fetch;
  tuning?: Partial<ReplicateTuning>;
}

export interface ReplicateRunRequest {
  /** Model input field -> image. */
  images: Record<string, InputImage>;
  /** Fixed extra inputs (from REPLICATE_*_EXTRA_INPUT). */
  extraInput: Record<string, unknown>;
  /** The job's requested output format; the output is re-encoded only when it differs. */
  output?: { output_format?: 'png' | 'jpeg' | 'webp'; output_quality?: number };
}

export interface ReplicateRunner {
  readonly model: ModelRef;
  run(request: ReplicateRunRequest, ctx: EngineContext): Promise<EngineOutput>;
  /** Waits for background cancels and file deletes still in flight. */
  close(): Promise<void>;
}

/** The output options of validated job parameters (lib/jobs/params.ts OutputOptionsSchema), if present. */
export function requestedOutput(params: Record<string, unknown>): ReplicateRunRequest['output'] {
  const format = params.output_format;
  const quality = params.output_quality;
  return {
    ...(format === 'png' || format === 'jpeg' || format === 'webp' ? { output_format: format } : {}),
    ...(typeof quality === 'number' ? { output_quality: quality } : {}),
  };
}

type Target = { version: string } | { model: string };

const USER_AGENT = 'faceswap-job-api (replicate-javascript/1.4.0)';

export function createReplicateRunner(deps: ReplicateRunnerDeps, modelRef: string): ReplicateRunner {
  const { config } = deps;
  const tuning: ReplicateTuning = { ...DEFAULT_TUNING, ...deps.tuning };
  const baseFetch = deps.fetch ?? globalThis.fetch;
  const model = parseModelRef(modelRef);
  const timeoutMs = config.REPLICATE_TIMEOUT_S * 1000;
  const pending = new Set<Promise<unknown>>();
  let resolved: { target: Target; at: number } | undefined;

  const clientWith = (fetchImpl: typeof fetch): Replicate =>
    new Replicate({
      auth: config.REPLICATE_API_TOKEN,
      baseUrl: config.REPLICATE_BASE_URL,
      userAgent: USER_AGENT,
      fetch: fetchImpl,
      useFileOutput: false,
    });

  /** Client for cancels and deletes: a short retry budget of its own, untouched by the job's signal. */
  const cleanupClient = clientWith(
    createRetryingFetch({
      fetch: baseFetch,
      policy: { maxRetries: 2, baseDelayMs: 250, maxDelayMs: 1_000, budgetMs: 2_000 },
      log: deps.log,
      provider: 'Replicate',
    }),
  );

  const track = (work: Promise<unknown>): void => {
    const settled = work.catch(() => undefined).finally(() => pending.delete(settled));
    pending.add(settled);
  };

  const cancelPrediction = (id: string, log: Logger): void => {
    track(
      cleanupClient.predictions
        .cancel(id, { signal: AbortSignal.timeout(tuning.cleanupTimeoutMs) })
        .then(() => log.info({ prediction: id }, 'Replicate prediction canceled'))
        .catch((error: unknown) =>
          log.warn({ prediction: id, err: (error as Error).message }, 'Could not cancel the Replicate prediction'),
        ),
    );
  };

  const deleteFile = (id: string, log: Logger): void => {
    track(
      cleanupClient.files
        .delete(id, { signal: AbortSignal.timeout(tuning.cleanupTimeoutMs) })
        .catch((error: unknown) => log.warn({ file: id, err: (error as Error).message }, 'Could not delete an uploaded file on Replicate')),
    );
  };

  async function resolveTarget(client: Replicate, signal: AbortSignal): Promise<Target> {
    if (model.version) return { version: model.version };
    if (resolved && Date.now() - resolved.at < tuning.versionCacheMs) return resolved.target;
    // Community models run only by version: use the latest one. Official models may have none: run them by name.
    const info: unknown = await client.models.get(model.owner, model.name, { signal });
    const latest = (info as { latest_version?: { id?: unknown } | null } | null)?.latest_version?.id;
    const target: Target = typeof latest === 'string' && latest ? { version: latest } : { model: `${model.owner}/${model.name}` };
    resolved = { target, at: Date.now() };
    return target;
  }

  function reportProgress(ctx: EngineContext, prediction: Prediction): void {
    if (prediction.status === 'starting') {
      ctx.progress(0.1, 'replicate queued');
    } else if (prediction.status === 'processing') {
      const parsed = parseProgressFromLogs(prediction.logs ?? '');
      const fraction = parsed ? Math.min(1, Math.max(0, parsed.percentage)) : 0;
      ctx.progress(0.15 + 0.7 * fraction, parsed ? `replicate processing ${Math.round(fraction * 100)}%` : 'replicate processing');
    }
  }

  async function run(request: ReplicateRunRequest, ctx: EngineContext): Promise<EngineOutput> {
    if (!config.REPLICATE_API_TOKEN) {
      throw new JobError('engine_unavailable', 'REPLICATE_API_TOKEN is not set');
    }
    const started = Date.now();
    const deadline = started + timeoutMs;
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
    const abortError = (): JobError =>
      ctx.signal.aborted
        ? new JobAbortedError()
        : new JobError('provider_timeout', `Replicate did not finish within ${config.REPLICATE_TIMEOUT_S} s (REPLICATE_TIMEOUT_S)`, {
            retryable: true,
          });
    const retrying = createRetryingFetch({ fetch: baseFetch, policy: tuning.retry, signal, deadline, log: ctx.log, provider: 'Replicate' });
    const client = clientWith(retrying);
    const uploaded: string[] = [];
    let predictionId: string | undefined;
    let finished = false;
    let log = ctx.log;

    try {
      ctx.progress(0, 'replicate submit');
      const input: Record<string, unknown> = { ...request.extraInput };
      for (const [field, image] of Object.entries(request.images)) {
        const file = await toFileInput(client, image, { dataUriMaxBytes: tuning.dataUriMaxBytes, signal, role: field });
        if (file.fileId) uploaded.push(file.fileId);
        input[field] = file.value;
      }
      const target = await resolveTarget(client, signal);

      // The create call is not aborted by the job's signal: its answer carries the id we need to cancel.
      // It has a bound of its own (the sync wait plus slack); the job stops waiting for it at once.
      const remainingS = Math.max(1, Math.floor((deadline - Date.now()) / 1000));
      const syncWaitS = Math.max(1, Math.min(tuning.syncWaitS, 60, remainingS));
      const creating = client.predictions.create({
        ...target,
        input,
        wait: syncWaitS,
        signal: AbortSignal.timeout((syncWaitS + 30) * 1000),
      } as Parameters<Replicate['predictions']['create']>[0]);
      const created = await untilAborted(creating, signal, (late) =>
        track(
          late.then((value: unknown) => {
            const id = (value as { id?: unknown } | null)?.id;
            const status = (value as { status?: unknown } | null)?.status;
            if (typeof id === 'string' && status !== 'succeeded' && status !== 'failed' && status !== 'canceled') {
              cancelPrediction(id, ctx.log);
            }
          }),
        ),
      );
      let prediction = parsePrediction(created, 'the create call');
      predictionId = prediction.id;
      log = ctx.log.child({ prediction: prediction.id });
      log.info({ status: prediction.status, ...target }, 'Replicate prediction created');
      reportProgress(ctx, prediction);

      while (!isTerminal(prediction.status)) {
        await sleep(tuning.pollIntervalMs, signal);
        prediction = parsePrediction(await client.predictions.get(prediction.id, { signal }), 'a status poll');
        reportProgress(ctx, prediction);
      }
      finished = true;

      if (prediction.status === 'failed') {
        throw new JobError('provider_failed', `The Replicate prediction failed: ${predictionErrorText(prediction)}`);
      }
      if (prediction.status === 'canceled' || prediction.status === 'aborted') {
        throw new JobAbortedError(`The Replicate prediction was ${prediction.status} on Replicate's side`);
      }

      ctx.progress(0.9, 'replicate download');
      const url = pickOutputUrl(prediction.output);
      const image = await downloadOutput(url, {
        fetch: retrying,
        signal,
        maxBytes: tuning.outputMaxBytes,
        maxPixels: config.IMAGE_MAX_PIXELS,
      });
      const encoded = await inRequestedFormat(image, request.output);
      ctx.progress(1, 'replicate done');
      log.info({ ms: Date.now() - started, bytes: encoded.bytes.length }, 'Replicate prediction done');
      return {
        images: [{ kind: 'encoded', bytes: encoded.bytes, contentType: encoded.contentType }],
        info: {
          provider: 'replicate',
          model: modelRef,
          ...('version' in target ? { version: target.version } : {}),
          prediction_id: prediction.id,
          ...(typeof prediction.metrics?.predict_time === 'number' ? { predict_time_s: prediction.metrics.predict_time } : {}),
          output_width: image.width,
          output_height: image.height,
        },
      };
    } catch (error) {
      // Whatever ends the run early, a prediction still running is of no use to anyone: cancel it.
      if (predictionId && !finished) cancelPrediction(predictionId, log);
      if (signal.aborted) throw abortError();
      throw toProviderError(error);
    } finally {
      for (const id of uploaded) deleteFile(id, log);
    }
  }

  return {
    model,
    run,
    async close() {
      // A settling create can add a cancel: loop until nothing is left.
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}

/**
 * Waits for `work` unless `signal` fires first; then rejects with the
 * signal's reason and hands the abandoned work to `onAbandon`.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal, onAbandon: (work: Promise<T>) => void): Promise<T> {
  if (signal.aborted) {
    onAbandon(work);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      onAbandon(work);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
