/**
 * Paste-back (DESIGN 5.8): out = (orig * (255 - M) + gen * M + 127) div 255,
 * with M the soft mask (0..255) at the original resolution. Every pixel with
 * M = 0 is bit-identical to the base image.
 */
import type { RawImage } from '../../lib/images/raw.ts';

export function pasteBack(base: RawImage, generated: RawImage, mask: Uint8Array): RawImage {
  const { width, height, channels: ch } = base;
  if (generated.width !== width || generated.height !== height || generated.channels !== ch) {
    throw new Error(
      `pasteBack: generated image is ${generated.width}x${generated.height}x${generated.channels}, base is ${width}x${height}x${ch}`,
    );
  }
  if (mask.length !== width * height) throw new Error(`pasteBack: mask has ${mask.length} values, expected ${width * height}`);
  const out = new Uint8Array(base.data);
  const g = generated.data;
  for (let i = 0, p = 0; i < mask.length; i++, p += ch) {
    const m = mask[i]!;
    if (m === 0) continue;
    const im = 255 - m;
    for (let k = 0; k < ch; k++) out[p + k] = ((out[p + k]! * im + g[p + k]! * m + 127) / 255) | 0;
  }
  return { data: out, width, height, channels: ch };
}
