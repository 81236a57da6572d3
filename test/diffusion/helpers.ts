/** Shared helpers of the diffusion tests: fixture photos as InputImages, a stand-in models directory, a config. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { loadConfig, type Config } from '../../lib/config.ts';
import type { InputImage } from '../../lib/images/raw.ts';
import { FaceSwapParamsSchema, type FaceSwapParams } from '../../lib/jobs/params.ts';
import { writeStandinModels } from '../../scripts/standin-models.ts';

export const FIXTURES = path.resolve('..', 'shared', 'fixtures');

export async function loadPhoto(name: string): Promise<InputImage> {
  const bytes = await fs.readFile(path.join(FIXTURES, 'images', name));
  const { data, info } = await sharp(bytes).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    bytes,
    format: name.endsWith('.png') ? 'png' : 'jpeg',
    width: info.width,
    height: info.height,
    raw: { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: 3 },
  };
}

/** A fresh temporary directory with every stand-in model; remove with `fs.rm`. */
export async function standinDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'diffusion-models-'));
  await writeStandinModels(dir, { fixtures: FIXTURES });
  return dir;
}

export function testConfig(modelsDir: string): Config {
  return loadConfig({ MODELS_DIR: modelsDir, ONNX_PROVIDER: 'cpu', ONNX_THREADS: '1', LOG_LEVEL: 'silent' });
}

export function params(over: Partial<FaceSwapParams> = {}): FaceSwapParams {
  return FaceSwapParamsSchema.parse({ engine: 'diffusion', ...over });
}
