/** Small image helpers for the face stages: resizing (sharp), channel fixes, tensor packing. */
import sharp from 'sharp';
import type { RawImage } from '../../lib/images/raw.ts';

/** RGB view of an image: drops alpha, expands gray. Returns the input when already RGB. */
export function toRgb(image: RawImage): RawImage {
  if (image.channels === 3) return image;
  const n = image.width * image.height;
  const out = new Uint8Array(n * 3);
  const src = image.data;
  const ch = image.channels;
  for (let i = 0; i < n; i++) {
    if (ch === 1) {
      out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = src[i]!;
    } else {
      out[i * 3] = src[i * ch]!;
      out[i * 3 + 1] = src[i * ch + 1]!;
      out[i * 3 + 2] = src[i * ch + 2]!;
    }
  }
  return { data: out, width: image.width, height: image.height, channels: 3 };
}

/** Resize with sharp (linear kernel when enlarging, area-averaging when shrinking). */
export async function resizeRaw(image: RawImage, width: number, height: number): Promise<RawImage> {
  if (image.width === width && image.height === height) return image;
  const buf = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  const shrinking = width < image.width && height < image.height;
  const { data, info } = await sharp(buf, { raw: { width: image.width, height: image.height, channels: image.channels } })
    .resize(width, height, { fit: 'fill', kernel: shrinking ? 'mitchell' : 'linear', fastShrinkOnLoad: false })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: info.channels as 1 | 3 | 4 };
}

/**
 * Pack an RGB image into a planar float32 [1,3,H,W] tensor: (value - mean) / std per channel,
 * optionally in BGR order. A target width/height larger than the image pads with `pad` (before normalising).
 */
export function toChwTensor(
  image: RawImage,
  opts: { mean: number | [number, number, number]; std: number | [number, number, number]; bgr?: boolean; width?: number; height?: number; pad?: number },
): Float32Array {
  const W = opts.width ?? image.width, H = opts.height ?? image.height;
  const mean = typeof opts.mean === 'number' ? [opts.mean, opts.mean, opts.mean] : opts.mean;
  const std = typeof opts.std === 'number' ? [opts.std, opts.std, opts.std] : opts.std;
  const out = new Float32Array(3 * H * W);
  const plane = H * W;
  const ch = image.channels;
  const src = image.data;
  for (let c = 0; c < 3; c++) {
    const srcC = opts.bgr ? 2 - c : c;
    const m = mean[c]!, s = 1 / std[c]!;
    const padV = ((opts.pad ?? 0) - m) * s;
    const base = c * plane;
    for (let y = 0; y < H; y++) {
      const row = base + y * W;
      if (y >= image.height) {
        out.fill(padV, row, row + W);
        continue;
      }
      let p = y * image.width * ch + (ch === 1 ? 0 : srcC);
      const w = Math.min(W, image.width);
      for (let x = 0; x < w; x++, p += ch) out[row + x] = (src[p]! - m) * s;
      if (w < W) out.fill(padV, row + w, row + W);
    }
  }
  return out;
}

/** Crop a rectangle (clamped to the image). */
export function cropRaw(image: RawImage, x: number, y: number, w: number, h: number): RawImage {
  const x0 = Math.max(0, Math.floor(x)), y0 = Math.max(0, Math.floor(y));
  const x1 = Math.min(image.width, Math.floor(x + w)), y1 = Math.min(image.height, Math.floor(y + h));
  const cw = Math.max(0, x1 - x0), chh = Math.max(0, y1 - y0);
  const c = image.channels;
  const out = new Uint8Array(cw * chh * c);
  for (let r = 0; r < chh; r++) {
    const s = ((y0 + r) * image.width + x0) * c;
    out.set(image.data.subarray(s, s + cw * c), r * cw * c);
  }
  return { data: out, width: cw, height: chh, channels: c };
}
