/** Shared bits of the Replicate engine tests: real images, a config pointed at the fake, an engine context. */
import path from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { loadConfig, type Config } from '../../lib/config.ts';
import type { InputImage } from '../../lib/images/raw.ts';
import type { EngineContext } from '../../worker/engine.ts';
import type { ReplicateTuning } from '../../worker/engines/replicate/run-model.ts';
import type { FakeReplicate } from '../support/fake-replicate.ts';

export const FIXTURES = path.resolve(import.meta.dirname, '../../../shared/fixtures/images');

export const silentLog = pino({ level: 'silent' });

/** A fixture photo as intake would hand it over: re-encoded, oriented, with RGB pixels. */
export async function inputImage(file: string, options: { width?: number; format?: 'png' | 'jpeg' } = {}): Promise<InputImage> {
  const format = options.format ?? 'png';
  let pipeline = sharp(path.join(FIXTURES, file)).rotate().removeAlpha();
  if (options.width) pipeline = pipeline.resize({ width: options.width });
  const bytes = format === 'png' ? await pipeline.png().toBuffer() : await pipeline.jpeg({ quality: 90 }).toBuffer();
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    bytes,
    format,
    width: info.width,
    height: info.height,
    raw: { data: new Uint8Array(data), width: info.width, height: info.height, channels: 3 },
  };
}

export function configFor(fake: FakeReplicate, env: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    REPLICATE_API_TOKEN: fake.token,
    REPLICATE_BASE_URL: fake.url,
    REPLICATE_TIMEOUT_S: '10',
    ...env,
  });
}

/** Small delays so that retry and polling tests take milliseconds, not seconds. */
export const FAST: Partial<ReplicateTuning> = {
  pollIntervalMs: 25,
  syncWaitS: 5,
  retry: { maxRetries: 3, baseDelayMs: 20, maxDelayMs: 80, budgetMs: 3_000 },
  cleanupTimeoutMs: 2_000,
};

export interface RecordingContext extends EngineContext {
  steps: Array<{ fraction: number; stage: string }>;
  controller: AbortController;
}

export function context(): RecordingContext {
  const controller = new AbortController();
  const steps: Array<{ fraction: number; stage: string }> = [];
  return {
    signal: controller.signal,
    controller,
    steps,
    progress: (fraction, stage) => steps.push({ fraction, stage }),
    log: silentLog,
  };
}

/** The rejection of `promise` (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; retryable?: boolean; retryAfter?: number; status?: number }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a rejection, got a result');
}
