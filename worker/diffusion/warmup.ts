/**
 * Warm-up at engine start: one pass through every model at the generation
 * shape, so that CUDA's kernel selection and memory arena growth happen
 * before the first job instead of inside it.
 */
import { CLIP_SIZE, faceIdTokens } from './faceid.ts';
import { denoise } from './denoise.ts';
import type { DiffusionModels } from './pipeline.ts';
import { createSampler } from './schedulers.ts';
import { encodeForGuidance } from './text.ts';
import { decodeLatents, encodeLatents } from './vae.ts';

export async function warmUp(models: DiffusionModels, resolution: number): Promise<void> {
  const size = Math.max(64, Math.round(resolution / 64) * 64);
  const lat = size / 8;
  const emb = new Float32Array(512).fill(1 / Math.sqrt(512));
  const face = { data: new Uint8Array(CLIP_SIZE * CLIP_SIZE * 3).fill(128), width: CLIP_SIZE, height: CLIP_SIZE, channels: 3 as const };
  const ipTokens = await faceIdTokens(models, emb, face, 1);
  const text = await encodeForGuidance(models, 'a photo of a person', 'blurry');
  const latents = await encodeLatents(models.vaeEncoder, new Float32Array(2 * 3 * size * size), 2, size, size);
  const x = latents.slice(0, 4 * lat * lat);
  await denoise({
    unet: models.unet,
    sampler: createSampler('euler', { steps: 1 }),
    latents: x,
    mask: new Float32Array(lat * lat),
    maskedLatents: latents.slice(0, 4 * lat * lat),
    latentHeight: lat,
    latentWidth: lat,
    text,
    timeIds: [size, size, 0, 0, size, size],
    ipTokens,
    ipScales: [1],
    guidance: 2,
  });
  await decodeLatents(models.vaeDecoder, x, lat, lat);
}
