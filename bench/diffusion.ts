/**
 * Benchmark of the diffusion engine's own overhead: the engine on stand-in
 * models (tiny ONNX files with the real contracts, so model calls cost next to
 * nothing) at SDXL's native 1024² generation size, with the fixture photos.
 * Model time is measured apart (every session call is timed), so what is
 * printed as overhead is ours: crops, masks, tensor packing, the scheduler
 * and guidance arithmetic, resizes, paste-back.
 *
 * Run alone: npm exec -- node bench/diffusion.ts [steps]
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { loadConfig } from '../lib/config.ts';
import type { InputImage } from '../lib/images/raw.ts';
import { FaceSwapParamsSchema } from '../lib/jobs/params.ts';
import { createLogger } from '../lib/logger.ts';
import { writeStandinModels } from '../scripts/standin-models.ts';
import { createDiffusionEngine } from '../worker/engines/diffusion/index.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/fixtures');

/** The photo as a client would upload it: the base at 1024x1024 (face in frame), the source as is. */
async function photo(file: string, square: boolean): Promise<InputImage> {
  const input = sharp(path.join(FIXTURES, 'images', file));
  const bytes = await (square ? input.resize(1024, 1024, { fit: 'cover', position: 'north' }) : input).jpeg({ quality: 90 }).toBuffer();
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { bytes, format: 'jpeg', width: info.width, height: info.height, raw: { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: 3 } };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

export async function benchDiffusion(opts: { steps: number }): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-diffusion-'));
  try {
    await writeStandinModels(dir, { fixtures: FIXTURES });
    const log = createLogger('silent');
    const config = loadConfig({ MODELS_DIR: dir, ONNX_PROVIDER: 'cpu', LOG_LEVEL: 'silent' });
    const engine = await createDiffusionEngine({ config, log, resolution: 1024, warmup: true });
    if (!engine.status().ready) throw new Error(`diffusion engine not ready: ${engine.status().detail}`);
    const base = await photo('obama.jpg', true);
    const face = await photo('biden.jpg', false);
    const params = FaceSwapParamsSchema.parse({ engine: 'diffusion', steps: opts.steps, seed: 1, denoise_strength: 1 });
    const ctx = { signal: new AbortController().signal, progress: () => undefined, log };
    const rows: { total: number; model: number; overhead: number; perStep: number }[] = [];
    for (let i = 0; i < 4; i++) {
      engine.clock.reset();
      const out = await engine.run({ base, face }, params, ctx);
      const t = out.info!.timings_ms as { total: number; model: number; overhead: number; loop_overhead_per_step: number };
      if (i > 0) rows.push({ total: t.total, model: t.model, overhead: t.overhead, perStep: t.loop_overhead_per_step });
    }
    await engine.close?.();
    console.log(`\ndiffusion engine overhead (stand-in models, 1024x1024 base, generation 1024², ${opts.steps} steps, guidance batch of 2, ${os.availableParallelism()} cores), median of ${rows.length}:`);
    console.log(`  per image: total ${median(rows.map((r) => r.total)).toFixed(1)} ms, inside model calls ${median(rows.map((r) => r.model)).toFixed(1)} ms, engine overhead ${median(rows.map((r) => r.overhead)).toFixed(1)} ms`);
    console.log(`  per denoising step (outside the UNet call): ${median(rows.map((r) => r.perStep)).toFixed(3)} ms`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  await benchDiffusion({ steps: Number(process.argv[2] ?? 30) });
}
