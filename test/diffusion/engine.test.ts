/**
 * The diffusion engine end to end on a CPU with stand-in models (real
 * onnxruntime sessions, the real SCRFD detector from the fixtures, real
 * photos): progress, sizes, the untouched background, seeds, count, cancel,
 * and the not-ready reports for missing or wrong model files.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/logger.ts';
import type { InputImage, RawImage } from '../../lib/images/raw.ts';
import type { EngineContext } from '../../worker/engine.ts';
import { createDiffusionEngine, type DiffusionEngine } from '../../worker/engines/diffusion/index.ts';
import { DIFFUSION_FILES } from '../../worker/diffusion/models.ts';
import { createScrfdDetector } from '../../worker/face/scrfd.ts';
import { createBisenetParser } from '../../worker/face/parse.ts';
import { buildFaceMask } from '../../worker/face/mask.ts';
import { chooseFaces } from '../../worker/face/detect.ts';
import { vaeDecoderStandin } from '../../scripts/standin-models.ts';
import { SCHEDULERS } from '../../lib/jobs/params.ts';
import { loadPhoto, params, standinDir, testConfig } from './helpers.ts';

const log = createLogger('silent');
let dir: string;
let engine: DiffusionEngine;
let base: InputImage;
let face: InputImage;
let outsideMask: Uint8Array;

function ctx(over: Partial<EngineContext> & { stages?: string[]; fractions?: number[] } = {}): EngineContext {
  return {
    signal: over.signal ?? new AbortController().signal,
    progress: (f, s) => {
      over.stages?.push(s);
      over.fractions?.push(f);
      over.progress?.(f, s);
    },
    log,
  };
}

const raw = (out: Awaited<ReturnType<DiffusionEngine['run']>>, i = 0): RawImage => {
  const img = out.images[i]!;
  if (img.kind !== 'raw') throw new Error('expected a raw image');
  return img.image;
};

beforeAll(async () => {
  dir = await standinDir();
  engine = await createDiffusionEngine({ config: testConfig(dir), log, resolution: 256 });
  base = await loadPhoto('obama.jpg');
  face = await loadPhoto('biden.jpg');
  // The base face's soft mask, computed independently with the same real stages.
  const det = createScrfdDetector(await ort.InferenceSession.create(path.join(dir, DIFFUSION_FILES.detector)));
  const parser = createBisenetParser(await ort.InferenceSession.create(path.join(dir, DIFFUSION_FILES.parser)));
  const [f] = chooseFaces(await det.detect(base.raw));
  const parse = await parser.parse(base.raw, f!);
  const p = params();
  outsideMask = buildFaceMask(parse.labels, parse.width, parse.height, p).map((m) => (m === 0 ? 1 : 0));
});
afterAll(async () => {
  await engine?.close?.();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('diffusion engine with stand-in models', () => {
  it('is ready, named "diffusion" for face_swap', () => {
    expect(engine.status()).toMatchObject({ ready: true });
    expect(engine.name).toBe('diffusion');
    expect(engine.task).toBe('face_swap');
    expect(engine.device).toBe('cpu');
  });

  it('runs: progress through every step, base-sized result, background bit-identical, face region changed', async () => {
    const stages: string[] = [];
    const fractions: number[] = [];
    const out = await engine.run({ base, face }, params({ steps: 8, seed: 7, denoise_strength: 1 }), ctx({ stages, fractions }));
    const denoise = stages.filter((s) => s.startsWith('denoise'));
    expect(denoise).toEqual(Array.from({ length: 8 }, (_, i) => `denoise ${i + 1}/8`));
    expect(stages[0]).toBe('detect');
    expect(stages).toContain('vae_decode');
    for (let i = 1; i < fractions.length; i++) expect(fractions[i]!).toBeGreaterThanOrEqual(fractions[i - 1]!);
    expect(fractions.at(-1)).toBe(1);

    const img = raw(out);
    expect([img.width, img.height, img.channels]).toEqual([base.width, base.height, 3]);
    let outsideDiff = 0;
    let insideDiff = 0;
    for (let i = 0; i < outsideMask.length; i++) {
      const same = img.data[i * 3] === base.raw.data[i * 3] && img.data[i * 3 + 1] === base.raw.data[i * 3 + 1] && img.data[i * 3 + 2] === base.raw.data[i * 3 + 2];
      if (outsideMask[i]) outsideDiff += same ? 0 : 1;
      else insideDiff += same ? 0 : 1;
    }
    expect(outsideDiff).toBe(0);
    expect(insideDiff).toBeGreaterThan(10_000);
    expect(out.info).toMatchObject({ engine: 'diffusion', seed: 7, steps_executed: 8, faces_swapped: 1 });
  });

  it('the same seed gives the same bytes; another seed does not; count uses consecutive seeds', async () => {
    const p = params({ steps: 4, seed: 100, count: 2 });
    const a = await engine.run({ base, face }, p, ctx());
    const b = await engine.run({ base, face }, params({ steps: 4, seed: 101 }), ctx());
    const again = await engine.run({ base, face }, params({ steps: 4, seed: 100 }), ctx());
    expect(a.images).toHaveLength(2);
    expect(a.info?.seeds).toEqual([100, 101]);
    expect(Buffer.from(raw(again).data).equals(Buffer.from(raw(a, 0).data))).toBe(true);
    expect(Buffer.from(raw(b).data).equals(Buffer.from(raw(a, 1).data))).toBe(true);
    expect(Buffer.from(raw(a, 0).data).equals(Buffer.from(raw(a, 1).data))).toBe(false);
  });

  it('every scheduler runs with strength < 1, is recorded in info, and gives its own image', async () => {
    const outputs: { scheduler: string; bytes: Buffer }[] = [];
    for (const scheduler of SCHEDULERS) {
      const stages: string[] = [];
      const out = await engine.run({ base, face }, params({ steps: 5, seed: 1, scheduler, denoise_strength: 0.6 }), ctx({ stages }));
      // trunc(5·0.6) = 3 executed steps
      expect(stages.filter((s) => s.startsWith('denoise')).at(-1)).toBe('denoise 3/3');
      expect(raw(out).width).toBe(base.width);
      expect(out.info).toMatchObject({ scheduler, steps_executed: 3 });
      outputs.push({ scheduler, bytes: Buffer.from(raw(out).data) });
    }
    // Same seed, steps and strength: only the scheduler differs, so an ignored scheduler would make two equal.
    for (let i = 0; i < outputs.length; i++) {
      for (let j = i + 1; j < outputs.length; j++) {
        expect(outputs[i]!.bytes.equals(outputs[j]!.bytes), `${outputs[i]!.scheduler} vs ${outputs[j]!.scheduler}`).toBe(false);
      }
    }
  });

  it('cancel takes effect between two steps', async () => {
    const ac = new AbortController();
    const stages: string[] = [];
    const run = engine.run({ base, face }, params({ steps: 30, seed: 3 }), ctx({
      signal: ac.signal,
      stages,
      progress: (_f, s) => {
        if (s === 'denoise 5/25') ac.abort();
      },
    }));
    await expect(run).rejects.toMatchObject({ name: 'JobAbortedError', code: 'canceled' });
    expect(stages.filter((s) => s.startsWith('denoise')).at(-1)).toBe('denoise 5/25');
  });

  it('a photo without a face fails with no_face_in_base', async () => {
    const coffee = await loadPhoto('noface_coffee.png');
    await expect(engine.run({ base: coffee, face }, params({ steps: 2 }), ctx())).rejects.toMatchObject({ code: 'no_face_in_base' });
  });
});

describe('missing or wrong model files', () => {
  it('a missing file: not ready, naming the role and the file', async () => {
    const d2 = await standinDir();
    try {
      await fs.rm(path.join(d2, DIFFUSION_FILES.unet));
      const e = await createDiffusionEngine({ config: testConfig(d2), log });
      const st = e.status();
      expect(st.ready).toBe(false);
      expect(st.detail).toContain('unet');
      expect(st.detail).toContain(DIFFUSION_FILES.unet);
      await expect(e.run({ base, face }, params(), ctx())).rejects.toThrow(/not ready/);
    } finally {
      await fs.rm(d2, { recursive: true, force: true });
    }
  });
  it('a file with the wrong contract: not ready, naming the file and the mismatched input', async () => {
    const d2 = await standinDir();
    try {
      await fs.writeFile(path.join(d2, DIFFUSION_FILES.unet), vaeDecoderStandin());
      const e = await createDiffusionEngine({ config: testConfig(d2), log });
      const st = e.status();
      expect(st.ready).toBe(false);
      expect(st.detail).toContain(DIFFUSION_FILES.unet);
      expect(st.detail).toMatch(/input "sample" is missing|input "timestep" is missing/);
      expect(st.detail).toContain('ip_scale');
    } finally {
      await fs.rm(d2, { recursive: true, force: true });
    }
  });
});
