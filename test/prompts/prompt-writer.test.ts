/**
 * The automatic prompt writer through the official `openai` client against
 * the local fake OpenAI server: a described face, the cache, and every way
 * the vision model can fail ending in the neutral fallback, never a throw.
 */
import { pino } from 'pino';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.ts';
import type { InputImage } from '../../lib/images/raw.ts';
import { cleanDescription, promptFromDescription } from '../../worker/prompts/face-description.ts';
import { createPromptWriter, FALLBACK_PROMPT, type PromptWriterTuning } from '../../worker/prompts/prompt-writer.ts';
import { FAKE_DESCRIPTION, startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { inputImage } from '../replicate/helpers.ts';

let fake: FakeOpenAI;
let obama: InputImage;
let biden: InputImage;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  obama = await inputImage('obama.jpg', { format: 'jpeg' });
  biden = await inputImage('biden.jpg', { width: 300, format: 'jpeg' });
});
afterEach(() => fake.reset());
afterAll(async () => {
  await fake.close();
});

function capturingLog() {
  const lines: Array<{ level: number; msg: string; reason?: string }> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines, warnings: () => lines.filter((l) => l.level === 40) };
}

function writer(env: Record<string, string | undefined> = {}, tuning: Partial<PromptWriterTuning> = { maxRetries: 0 }) {
  const capture = capturingLog();
  const config = loadConfig({
    OPENAI_API_KEY: fake.apiKey,
    OPENAI_BASE_URL: fake.url,
    OPENAI_VISION_MODEL: 'fake-vision-1',
    ...env,
  });
  return { ...capture, writer: createPromptWriter({ config, log: capture.log, tuning }) };
}

const DESCRIBED = promptFromDescription(FAKE_DESCRIPTION);

describe('a described face', () => {
  it('asks the vision model with a small JPEG of the face and frames its answer as a portrait prompt', async () => {
    const { writer: w } = writer();
    const result = await w.describe(obama);
    expect(result).toEqual({ prompt: DESCRIBED, source: 'vision' });
    expect(result.prompt).toBe(`portrait photo of ${FAKE_DESCRIPTION}, detailed face, natural skin texture, soft lighting, sharp focus`);

    expect(fake.calls()).toBe(1);
    const body = fake.requests[0]!;
    expect(body.model).toBe('fake-vision-1');
    const [system, user] = body.messages!;
    expect(system!.role).toBe('system');
    expect(String(system!.content)).toMatch(/apparent age/);
    expect(String(system!.content)).toMatch(/Never name or identify/);
    const parts = user!.content as Array<{ type: string; image_url?: { url: string; detail: string } }>;
    const image = parts.find((p) => p.type === 'image_url')!.image_url!;
    expect(image.detail).toBe('low');
    const sent = Buffer.from(image.url.replace(/^data:image\/jpeg;base64,/, ''), 'base64');
    const meta = await sharp(sent).metadata();
    expect(meta.format).toBe('jpeg');
    expect(Math.max(meta.width!, meta.height!)).toBe(512); // obama.jpg is larger: scaled to fit 512
  });

  it('cleans up chatty answers', () => {
    expect(cleanDescription('"A portrait photo of a young woman, red curly hair."\n\nHope this helps!')).toEqual({
      description: 'a young woman, red curly hair',
    });
    expect(cleanDescription('Description: an older man,  grey beard ;')).toEqual({ description: 'an older man, grey beard' });
    const long = cleanDescription(Array.from({ length: 60 }, (_, i) => `detail number ${i}`).join(', '));
    expect('description' in long && long.description.length).toBeLessThanOrEqual(280);
    expect('description' in long && long.description.endsWith(',')).toBe(false);
    expect(cleanDescription("I'm sorry, but I can't help with identifying people.")).toHaveProperty('problem');
    expect(cleanDescription('   \n ')).toHaveProperty('problem');
  });
});

describe('the cache', () => {
  it('asks once per distinct image, by content: a new object with the same bytes is a hit', async () => {
    const { writer: w } = writer();
    expect(await w.promptFor(obama)).toBe(DESCRIBED);
    const sameBytes: InputImage = { ...obama, bytes: Buffer.from(obama.bytes) };
    expect(await w.describe(sameBytes)).toEqual({ prompt: DESCRIBED, source: 'cache' });
    expect(fake.calls()).toBe(1);
    fake.scenario.reply = 'an older man, white hair, smiling';
    expect(await w.promptFor(biden)).toBe(promptFromDescription('an older man, white hair, smiling'));
    expect(fake.calls()).toBe(2);
  });

  it('concurrent asks for the same face share one request', async () => {
    fake.scenario.delayMs = 150;
    const { writer: w } = writer();
    const results = await Promise.all([w.promptFor(obama), w.promptFor(obama), w.promptFor(obama)]);
    expect(results).toEqual([DESCRIBED, DESCRIBED, DESCRIBED]);
    expect(fake.calls()).toBe(1);
  });

  it('is bounded: the least recently used face is forgotten', async () => {
    const { writer: w } = writer({}, { maxRetries: 0, cacheSize: 1 });
    await w.promptFor(obama);
    await w.promptFor(biden);
    await w.promptFor(obama);
    expect(fake.calls()).toBe(3);
  });
});

describe('failures fall back to the neutral prompt, with a warning', () => {
  it('without an API key, asks nothing and warns once', async () => {
    const { writer: w, warnings } = writer({ OPENAI_API_KEY: undefined });
    expect(await w.describe(obama)).toEqual({ prompt: FALLBACK_PROMPT, source: 'fallback', reason: 'OPENAI_API_KEY is not set' });
    expect(await w.promptFor(biden)).toBe(FALLBACK_PROMPT);
    expect(fake.calls()).toBe(0);
    expect(warnings()).toHaveLength(1);
  });

  it('a 500 gives the fallback and is not cached: the next job asks again', async () => {
    fake.scenario.inject = [{ status: 500 }];
    const { writer: w, warnings } = writer();
    const failed = await w.describe(obama);
    expect(failed.source).toBe('fallback');
    expect(failed.prompt).toBe(FALLBACK_PROMPT);
    expect(failed.reason).toContain('500');
    expect(warnings()).toHaveLength(1);
    expect(await w.describe(obama)).toEqual({ prompt: DESCRIBED, source: 'vision' });
    expect(fake.calls()).toBe(2);
  });

  it('the client retries a single 500 when retries are allowed', async () => {
    fake.scenario.inject = [{ status: 500 }];
    const { writer: w } = writer({}, { maxRetries: 1 });
    expect(await w.describe(obama)).toEqual({ prompt: DESCRIBED, source: 'vision' });
    expect(fake.calls()).toBe(2);
  });

  it('a wrong key (401) gives the fallback', async () => {
    const { writer: w, warnings } = writer({ OPENAI_API_KEY: 'sk-wrong' });
    expect(await w.promptFor(obama)).toBe(FALLBACK_PROMPT);
    expect(warnings()[0]!.reason).toContain('401');
  });

  it.each([
    ['a body that is not JSON', { status: 200, body: '<html>proxy error</html>', headers: { 'content-type': 'text/html' } }],
    ['JSON without choices', { status: 200, body: '{"id":"x","object":"chat.completion","choices":[]}' }],
    ['a null content', { status: 200, body: '{"choices":[{"index":0,"message":{"role":"assistant","content":null}}]}' }],
    ['an empty content', { status: 200, body: '{"choices":[{"index":0,"message":{"role":"assistant","content":"  "}}]}' }],
  ])('a malformed answer (%s) gives the fallback', async (_label, injection) => {
    fake.scenario.inject = [injection];
    const { writer: w, warnings } = writer();
    const result = await w.describe(obama);
    expect(result.source).toBe('fallback');
    expect(result.prompt).toBe(FALLBACK_PROMPT);
    expect(warnings()).toHaveLength(1);
  });

  it('a refusal gives the fallback', async () => {
    fake.scenario.refusal = 'I cannot help with that.';
    const { writer: w } = writer();
    const result = await w.describe(obama);
    expect(result.source).toBe('fallback');
    expect(result.reason).toContain('declined');
  });

  it('a refusal written as content gives the fallback', async () => {
    fake.scenario.reply = "I'm sorry, I can't describe people in images.";
    const { writer: w } = writer();
    expect((await w.describe(obama)).source).toBe('fallback');
  });

  it('a vision model slower than the timeout gives the fallback', async () => {
    fake.scenario.delayMs = 2_000;
    const { writer: w, warnings } = writer({}, { maxRetries: 0, timeoutMs: 200 });
    const started = Date.now();
    const result = await w.describe(obama);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(result.source).toBe('fallback');
    expect(warnings()[0]!.reason).toMatch(/time/i);
  });

  it('an aborted job stops waiting at once', async () => {
    fake.scenario.delayMs = 2_000;
    const { writer: w } = writer();
    const controller = new AbortController();
    const pending = w.describe(obama, controller.signal);
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    const result = await pending;
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(result).toMatchObject({ prompt: FALLBACK_PROMPT, source: 'fallback' });
  });
});
