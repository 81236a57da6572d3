/**
 * SDXL VAE (DESIGN 5.6): images in [−1, 1] in, latents scaled by 0.13025 out;
 * decode x/0.13025 → decoder → clamp(x/2 + 0.5, 0, 1)·255. The encoder's
 * output is mean ‖ logvar; we take the mean (the distribution's mode), which
 * keeps results a function of the seed's noise alone.
 */
import * as ort from 'onnxruntime-node';
import type { RawImage } from '../../lib/images/raw.ts';
import { disposeAll, type OrtSession } from './session.ts';

export const VAE_SCALE = 0.13025;
export const LATENT_CHANNELS = 4;

/** Planar [3,H,W] float image in [−1, 1] from RGB bytes. */
export function toSignedPixels(image: RawImage): Float32Array {
  const { width: w, height: h, channels: ch, data } = image;
  const plane = w * h;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    const p = i * ch;
    out[i] = data[p]! / 127.5 - 1;
    out[plane + i] = data[ch === 1 ? p : p + 1]! / 127.5 - 1;
    out[2 * plane + i] = data[ch === 1 ? p : p + 2]! / 127.5 - 1;
  }
  return out;
}

/** Encode a batch of [B,3,H,W] images → scaled latents [B,4,H/8,W/8] (means). */
export async function encodeLatents(encoder: OrtSession, pixels: Float32Array, batch: number, height: number, width: number): Promise<Float32Array> {
  const out = await encoder.run({ sample: new ort.Tensor('float32', pixels, [batch, 3, height, width]) });
  const params = out['latent_parameters']!;
  const [, c, h, w] = params.dims as number[];
  if (c !== 2 * LATENT_CHANNELS || h !== height / 8 || w !== width / 8) {
    throw new Error(`VAE encoder returned [${params.dims.join(',')}], expected [${batch},8,${height / 8},${width / 8}]`);
  }
  const data = params.data as Float32Array;
  const lat = h * w;
  const res = new Float32Array(batch * LATENT_CHANNELS * lat);
  for (let b = 0; b < batch; b++) {
    const src = b * 2 * LATENT_CHANNELS * lat;
    const dst = b * LATENT_CHANNELS * lat;
    for (let i = 0; i < LATENT_CHANNELS * lat; i++) res[dst + i] = data[src + i]! * VAE_SCALE;
  }
  disposeAll(out);
  return res;
}

/** Decode scaled latents [1,4,h,w] → RGB image 8h×8w. */
export async function decodeLatents(decoder: OrtSession, latents: Float32Array, h: number, w: number): Promise<RawImage> {
  const scaled = new Float32Array(latents.length);
  for (let i = 0; i < latents.length; i++) scaled[i] = latents[i]! / VAE_SCALE;
  const out = await decoder.run({ latent_sample: new ort.Tensor('float32', scaled, [1, LATENT_CHANNELS, h, w]) });
  const t = out['sample']!;
  const [, c, H, W] = t.dims as number[];
  if (c !== 3 || H !== h * 8 || W !== w * 8) throw new Error(`VAE decoder returned [${t.dims.join(',')}], expected [1,3,${h * 8},${w * 8}]`);
  const data = t.data as Float32Array;
  const plane = H * W;
  const rgb = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let k = 0; k < 3; k++) {
      const v = data[k * plane + i]! / 2 + 0.5;
      rgb[i * 3 + k] = Math.round((v < 0 ? 0 : v > 1 ? 1 : v) * 255);
    }
  }
  disposeAll(out);
  return { data: rgb, width: W, height: H, channels: 3 };
}
