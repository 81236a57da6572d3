/**
 * Automatic diffusion prompts: asks an OpenAI-compatible vision model
 * (OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_VISION_MODEL) to describe the
 * identity face, and frames the description as a portrait prompt.
 *
 * Results are cached by the sha256 of the face image's bytes (bounded LRU;
 * concurrent asks for the same face share one request). Nothing here fails a
 * job: no key, an HTTP error, a timeout, a refusal or a malformed answer all
 * give the neutral FALLBACK_PROMPT with a logged warning. Fallbacks are not
 * cached, so the next job with the same face asks again.
 */
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import type { Logger } from 'pino';
import sharp from 'sharp';
import type { Config } from '../../lib/config.ts';
import type { InputImage } from '../../lib/images/raw.ts';
import {
  cleanDescription,
  DESCRIBE_FACE_INSTRUCTIONS,
  DESCRIBE_FACE_REQUEST,
  FALLBACK_PROMPT,
  promptFromDescription,
} from './face-description.ts';
import { LruCache } from './lru-cache.ts';

export { FALLBACK_PROMPT } from './face-description.ts';

export interface PromptWriterTuning {
  /** Per-request timeout of the vision call. */
  timeoutMs: number;
  /** Retries of the official client (connection errors, 408/409/429/5xx, timeouts). */
  maxRetries: number;
  /** Faces remembered. */
  cacheSize: number;
  /** The face image is scaled to fit this square before it is sent (the model sees 512 px at detail "low"). */
  maxImageSide: number;
  maxTokens: number;
}

export const DEFAULT_PROMPT_WRITER_TUNING: PromptWriterTuning = {
  timeoutMs: 20_000,
  maxRetries: 1,
  cacheSize: 256,
  maxImageSide: 512,
  maxTokens: 120,
};

export interface PromptResult {
  prompt: string;
  /** `vision`: just asked; `cache`: asked before for the same image bytes; `fallback`: the neutral prompt. */
  source: 'vision' | 'cache' | 'fallback';
  /** Why the fallback was used. */
  reason?: string;
}

export interface PromptWriter {
  /** A portrait prompt for this face; never throws. */
  promptFor(face: InputImage, signal?: AbortSignal): Promise<string>;
  /** The same, saying where the prompt came from (worth keeping on the job record). */
  describe(face: InputImage, signal?: AbortSignal): Promise<PromptResult>;
}

export interface PromptWriterDeps {
  config: Config;
  log: Logger;
  tuning?: Partial<PromptWriterTuning>;
}

async function imageForModel(face: InputImage, maxSide: number): Promise<string> {
  const jpeg = await sharp(face.bytes)
    .rotate()
    .resize({ width: maxSide, height: maxSide, fit: 'inside', withoutEnlargement: true })
    .flatten({ background: '#ffffff' })
    .jpeg({ quality: 85 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}

function describeFailure(error: unknown): string {
  if (error instanceof OpenAI.APIError && error.status !== undefined) {
    return `the vision model answered ${error.status}: ${error.message}`.slice(0, 300);
  }
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}

export function createPromptWriter(deps: PromptWriterDeps): PromptWriter {
  const { config } = deps;
  const log = deps.log.child({ component: 'prompt-writer' });
  const tuning: PromptWriterTuning = { ...DEFAULT_PROMPT_WRITER_TUNING, ...deps.tuning };
  const cache = new LruCache<string, string>(tuning.cacheSize);
  const inFlight = new Map<string, Promise<PromptResult>>();
  let warnedNoKey = false;

  const client = config.OPENAI_API_KEY
    ? new OpenAI({
        apiKey: config.OPENAI_API_KEY,
        baseURL: config.OPENAI_BASE_URL,
        timeout: tuning.timeoutMs,
        maxRetries: tuning.maxRetries,
        logLevel: 'off',
      })
    : undefined;

  const fallback = (reason: string, level: 'warn' | 'debug' = 'warn'): PromptResult => {
    log[level]({ reason }, 'Automatic prompt unavailable: using the neutral fallback prompt');
    return { prompt: FALLBACK_PROMPT, source: 'fallback', reason };
  };

  async function ask(face: InputImage, key: string): Promise<PromptResult> {
    if (!client) throw new Error('unreachable: no client');
    const started = Date.now();
    const completion: unknown = await client.chat.completions.create(
      {
        model: config.OPENAI_VISION_MODEL,
        max_tokens: tuning.maxTokens,
        temperature: 0.2,
        messages: [
          { role: 'system', content: DESCRIBE_FACE_INSTRUCTIONS },
          {
            role: 'user',
            content: [
              { type: 'text', text: DESCRIBE_FACE_REQUEST },
              { type: 'image_url', image_url: { url: await imageForModel(face, tuning.maxImageSide), detail: 'low' } },
            ],
          },
        ],
      },
    );
    const message = (completion as { choices?: Array<{ message?: { content?: unknown; refusal?: unknown } }> } | null)?.choices?.[0]
      ?.message;
    if (typeof message?.refusal === 'string' && message.refusal) {
      return fallback(`the model declined: ${message.refusal.slice(0, 120)}`);
    }
    if (typeof message?.content !== 'string') return fallback('malformed answer: no choices[0].message.content text');
    const cleaned = cleanDescription(message.content);
    if ('problem' in cleaned) return fallback(cleaned.problem);
    const prompt = promptFromDescription(cleaned.description);
    cache.set(key, prompt);
    log.info({ ms: Date.now() - started, model: config.OPENAI_VISION_MODEL }, 'Automatic prompt written');
    return { prompt, source: 'vision' };
  }

  async function describe(face: InputImage, signal?: AbortSignal): Promise<PromptResult> {
    if (!client) {
      const level = warnedNoKey ? 'debug' : 'warn';
      warnedNoKey = true;
      return fallback('OPENAI_API_KEY is not set', level);
    }
    const key = createHash('sha256').update(face.bytes).digest('hex');
    const cached = cache.get(key);
    if (cached !== undefined) return { prompt: cached, source: 'cache' };

    let pending = inFlight.get(key);
    if (!pending) {
      // Shared by concurrent asks, so it is not tied to one caller's signal; each caller stops waiting on its own.
      pending = ask(face, key).catch((error: unknown) => fallback(describeFailure(error)));
      inFlight.set(key, pending);
      void pending.finally(() => inFlight.delete(key));
    }
    if (!signal) return pending;
    if (signal.aborted) return fallback('the job was canceled', 'debug');
    return new Promise<PromptResult>((resolve) => {
      const onAbort = (): void => resolve(fallback('the job was canceled', 'debug'));
      signal.addEventListener('abort', onAbort, { once: true });
      void pending.then((result) => {
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      });
    });
  }

  return {
    describe,
    async promptFor(face, signal) {
      return (await describe(face, signal)).prompt;
    },
  };
}
