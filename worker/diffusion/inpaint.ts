/**
 * Inpainting inputs at generation size (DESIGN 5.6): the mask binarised at 0.5,
 * the masked image image·(mask < 0.5) in [−1, 1], the latent mask by nearest
 * neighbour at H/8×W/8, and the 9-channel UNet sample
 * concat(scaled latents [4], mask [1], masked-image latents [4]).
 */
import { resizeRaw } from '../face/image.ts';

/** 1 where the soft mask (0..255) is ≥ 0.5, else 0. */
export function binarizeMask(soft: Uint8Array): Uint8Array {
  const out = new Uint8Array(soft.length);
  for (let i = 0; i < soft.length; i++) out[i] = soft[i]! / 255 >= 0.5 ? 1 : 0;
  return out;
}

/** Planar [3,H,W] pixels in [−1,1] with the masked area set to 0 (in place on a copy). */
export function maskImage(pixels: Float32Array, bin: Uint8Array): Float32Array {
  const plane = bin.length;
  const out = new Float32Array(pixels);
  for (let i = 0; i < plane; i++) {
    if (bin[i] !== 0) {
      out[i] = 0;
      out[plane + i] = 0;
      out[2 * plane + i] = 0;
    }
  }
  return out;
}

/** Nearest-neighbour downscale of a binary mask by 8 (torch `interpolate(mode="nearest")`: source pixel 8·y, 8·x). */
export function latentMask(bin: Uint8Array, width: number, height: number): Float32Array {
  const w = Math.floor(width / 8);
  const h = Math.floor(height / 8);
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const sy = Math.floor((y * height) / h);
    for (let x = 0; x < w; x++) out[y * w + x] = bin[sy * width + Math.floor((x * width) / w)]!;
  }
  return out;
}

/**
 * A reusable [B,9,h,w] UNet sample buffer: the mask and masked-image latent
 * channels are written once; `setLatents` writes x·scale into channels 0-3 of
 * every batch entry before each step.
 */
export function createUnetSample(batch: number, mask: Float32Array, maskedLatents: Float32Array) {
  const lat = mask.length;
  if (maskedLatents.length !== 4 * lat) throw new Error(`masked latents have ${maskedLatents.length} values, expected ${4 * lat}`);
  const per = 9 * lat;
  const data = new Float32Array(batch * per);
  for (let b = 0; b < batch; b++) {
    data.set(mask, b * per + 4 * lat);
    data.set(maskedLatents, b * per + 5 * lat);
  }
  return {
    data,
    setLatents(x: Float32Array, scale: number): void {
      for (let b = 0; b < batch; b++) {
        const o = b * per;
        if (scale === 1) data.set(x, o);
        else for (let i = 0; i < 4 * lat; i++) data[o + i] = x[i]! * scale;
      }
    },
  };
}

/** Resize a one-channel soft mask (sharp may hand back 3 channels for 1-channel raw input; keep the first). */
export async function resizeMask(mask: Uint8Array, width: number, height: number, toWidth: number, toHeight: number): Promise<Uint8Array> {
  const out = await resizeRaw({ data: mask, width, height, channels: 1 }, toWidth, toHeight);
  if (out.channels === 1) return out.data;
  const n = toWidth * toHeight;
  const res = new Uint8Array(n);
  for (let i = 0; i < n; i++) res[i] = out.data[i * out.channels]!;
  return res;
}
