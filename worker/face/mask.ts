/**
 * Soft face masks (DESIGN 5.4): class selection from parsing labels, then, in
 * the research pipeline's order, fill holes, dilate by
 * round(min(W, H) * 0.02 * mask_expand) 3x3 steps, Gaussian blur with radius
 * (sigma) mask_blur, then padding p (grayscale dilation if p > 0, erosion if
 * p < 0, elliptical kernel of size 2|p| + 1). Work happens inside the
 * bounding box of the selected classes plus the margin the operations can
 * reach, so cost follows the face size, not the image size.
 */
import type { FaceMaskOptions } from './types.ts';

/** BiSeNet / CelebAMask-HQ class ids (DESIGN 5.4). */
export const FACE_CLASSES = {
  background: 0, skin: 1, leftBrow: 2, rightBrow: 3, leftEye: 4, rightEye: 5, glasses: 6, leftEar: 7, rightEar: 8,
  earring: 9, nose: 10, mouth: 11, upperLip: 12, lowerLip: 13, neck: 14, necklace: 15, cloth: 16, hair: 17, hat: 18,
} as const;

/** The research pipeline's face classes: skin, brows, eyes, ears, nose, mouth, lips. */
export const FACE_MASK_CLASSES = [1, 2, 3, 4, 5, 7, 8, 10, 11, 12, 13] as const;

export const DEFAULT_MASK_OPTIONS: FaceMaskOptions = {
  include_hair: true,
  include_neck: false,
  mask_expand: 0.3,
  mask_blur: 15,
  mask_padding: 10,
};

/** Class ids that make up the mask for the given options. */
export function maskClasses(opts: Pick<FaceMaskOptions, 'include_hair' | 'include_neck'>): number[] {
  const c: number[] = [...FACE_MASK_CLASSES];
  if (opts.include_hair) c.push(17);
  if (opts.include_neck) c.push(14);
  return c;
}

/** Set every 0-region that does not touch the border to 1 (4-connected flood fill from the border). */
export function fillHoles(bin: Uint8Array, w: number, h: number): void {
  const seen = new Uint8Array(w * h);
  const stack = new Int32Array(w * h);
  let top = 0;
  const push = (i: number) => {
    if (bin[i] === 0 && seen[i] === 0) {
      seen[i] = 1;
      stack[top++] = i;
    }
  };
  for (let x = 0; x < w; x++) {
    push(x);
    push((h - 1) * w + x);
  }
  for (let y = 0; y < h; y++) {
    push(y * w);
    push(y * w + w - 1);
  }
  while (top > 0) {
    const i = stack[--top]!;
    const x = i % w;
    if (x > 0) push(i - 1);
    if (x < w - 1) push(i + 1);
    if (i >= w) push(i - w);
    if (i < w * (h - 1)) push(i + w);
  }
  for (let i = 0; i < bin.length; i++) if (bin[i] === 0 && seen[i] === 0) bin[i] = 1;
}

/** Scratch rows for slide1d, grown on demand and reused (a mask is hundreds of rows; allocating per row dominated). */
let scratch = { padded: new Uint8Array(0), g: new Uint8Array(0), h: new Uint8Array(0) };

/** Sliding max (or min) over a window of half-width r along rows, O(n) per row (van Herk / Gil-Werman). */
function slide1d(src: Uint8Array, dst: Uint8Array, n: number, off: number, step: number, r: number, max: boolean): void {
  if (r <= 0) {
    for (let i = 0; i < n; i++) dst[off + i * step] = src[off + i * step]!;
    return;
  }
  const k = 2 * r + 1;
  const len = n + 2 * r;
  if (scratch.padded.length < len) scratch = { padded: new Uint8Array(len), g: new Uint8Array(len), h: new Uint8Array(len) };
  const { padded, g, h } = scratch;
  // The row with r pad values on each side (0 for max, 255 for min: they never win).
  const pad = max ? 0 : 255;
  padded.fill(pad, 0, r);
  padded.fill(pad, n + r, len);
  for (let i = 0, j = off; i < n; i++, j += step) padded[r + i] = src[j]!;
  if (max) {
    for (let j = 0; j < len; j++) {
      const v = padded[j]!;
      g[j] = j % k === 0 ? v : g[j - 1]! > v ? g[j - 1]! : v;
    }
    for (let j = len - 1; j >= 0; j--) {
      const v = padded[j]!;
      h[j] = j === len - 1 || (j + 1) % k === 0 ? v : h[j + 1]! > v ? h[j + 1]! : v;
    }
    for (let i = 0, j = off; i < n; i++, j += step) {
      const a = h[i]!, b = g[i + 2 * r]!;
      dst[j] = a > b ? a : b;
    }
  } else {
    for (let j = 0; j < len; j++) {
      const v = padded[j]!;
      g[j] = j % k === 0 ? v : g[j - 1]! < v ? g[j - 1]! : v;
    }
    for (let j = len - 1; j >= 0; j--) {
      const v = padded[j]!;
      h[j] = j === len - 1 || (j + 1) % k === 0 ? v : h[j + 1]! < v ? h[j + 1]! : v;
    }
    for (let i = 0, j = off; i < n; i++, j += step) {
      const a = h[i]!, b = g[i + 2 * r]!;
      dst[j] = a < b ? a : b;
    }
  }
}

/** Grayscale dilation (max) or erosion (min) with a square kernel of half-width r. */
export function morphSquare(img: Uint8Array, w: number, h: number, r: number, max: boolean): Uint8Array {
  const tmp = new Uint8Array(w * h);
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) slide1d(img, tmp, w, y * w, 1, r, max);
  for (let x = 0; x < w; x++) slide1d(tmp, out, h, x, w, r, max);
  return out;
}

/** Grayscale dilation (max) or erosion (min) with an elliptical (disk) kernel of size 2r + 1. */
export function morphDisk(img: Uint8Array, w: number, h: number, r: number, max: boolean): Uint8Array {
  if (r <= 0) return new Uint8Array(img);
  // Row-wise sliding extrema for each half-width the disk needs, then combine over rows.
  const widths = new Map<number, Uint8Array>();
  const halfWidth: number[] = [];
  for (let dy = -r; dy <= r; dy++) {
    const hw = Math.floor(Math.sqrt(r * r - dy * dy) + 1e-9);
    halfWidth.push(hw);
    if (!widths.has(hw)) {
      const t = new Uint8Array(w * h);
      for (let y = 0; y < h; y++) slide1d(img, t, w, y * w, 1, hw, max);
      widths.set(hw, t);
    }
  }
  const out = new Uint8Array(w * h).fill(max ? 0 : 255);
  for (let dy = -r; dy <= r; dy++) {
    const t = widths.get(halfWidth[dy + r]!)!;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      const o = y * w;
      if (sy < 0 || sy >= h) {
        if (!max) out.fill(0, o, o + w); // erosion: outside counts as 0
        continue;
      }
      const s = sy * w;
      if (max) for (let x = 0; x < w; x++) { const v = t[s + x]!; if (v > out[o + x]!) out[o + x] = v; }
      else for (let x = 0; x < w; x++) { const v = t[s + x]!; if (v < out[o + x]!) out[o + x] = v; }
    }
  }
  return out;
}

/** Box sizes of three box blurs that approximate a Gaussian of this sigma (as PIL's GaussianBlur does). */
function boxesForGauss(sigma: number): number[] {
  const n = 3;
  const wIdeal = Math.sqrt((12 * sigma * sigma) / n + 1);
  let wl = Math.floor(wIdeal);
  if (wl % 2 === 0) wl--;
  const wu = wl + 2;
  const m = Math.round((12 * sigma * sigma - n * wl * wl - 4 * n * wl - 3 * n) / (-4 * wl - 4));
  return Array.from({ length: n }, (_, i) => (i < m ? wl : wu));
}

function boxBlur1d(src: Float32Array, dst: Float32Array, n: number, off: number, step: number, r: number): void {
  // Zero outside the buffer (the mask is 0 there).
  const inv = 1 / (2 * r + 1);
  let acc = 0;
  for (let j = 0; j <= Math.min(r, n - 1); j++) acc += src[off + j * step]!;
  for (let i = 0; i < n; i++) {
    dst[off + i * step] = acc * inv;
    const add = i + r + 1, sub = i - r;
    if (add < n) acc += src[off + add * step]!;
    if (sub >= 0) acc -= src[off + sub * step]!;
  }
}

/** Gaussian blur (three box passes) of a 0..255 mask; sigma <= 0 returns a copy. */
export function gaussianBlurMask(img: Uint8Array, w: number, h: number, sigma: number): Uint8Array {
  if (!(sigma > 0)) return new Uint8Array(img);
  let a = Float32Array.from(img);
  let b = new Float32Array(w * h);
  for (const size of boxesForGauss(sigma)) {
    const r = (size - 1) >> 1;
    for (let y = 0; y < h; y++) boxBlur1d(a, b, w, y * w, 1, r);
    for (let x = 0; x < w; x++) boxBlur1d(b, a, h, x, w, r);
  }
  const out = new Uint8Array(w * h);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(255, Math.round(a[i]!));
  void b;
  return out;
}

/** Reach of the post-processing beyond the selected pixels, in pixels. */
function margin(w: number, h: number, o: FaceMaskOptions): number {
  const steps = Math.round(Math.min(w, h) * 0.02 * o.mask_expand);
  return steps + Math.ceil(3 * Math.max(0, o.mask_blur)) + Math.max(0, o.mask_padding) + 2;
}

/** Soft mask (0..255 per pixel, full resolution) from parsing labels, DESIGN 5.4 order. */
export function buildFaceMask(labels: Uint8Array, width: number, height: number, opts: Partial<FaceMaskOptions> = {}): Uint8Array {
  const o: FaceMaskOptions = { ...DEFAULT_MASK_OPTIONS, ...opts };
  if (labels.length !== width * height) throw new Error(`buildFaceMask: ${labels.length} labels for ${width}x${height}`);
  const take = new Uint8Array(256);
  for (const c of maskClasses(o)) take[c] = 1;
  // Bounding box of the selected classes.
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (take[labels[row + x]!]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  const out = new Uint8Array(width * height);
  if (x1 < 0) return out;
  const mg = margin(width, height, o);
  const rx0 = Math.max(0, x0 - mg), ry0 = Math.max(0, y0 - mg);
  const rx1 = Math.min(width - 1, x1 + mg), ry1 = Math.min(height - 1, y1 + mg);
  const w = rx1 - rx0 + 1, h = ry1 - ry0 + 1;
  let m: Uint8Array = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) if (take[labels[(ry0 + y) * width + rx0 + x]!]) m[y * w + x] = 1;
  }
  // Holes: only regions enclosed inside the ROI; regions touching the ROI border touch the image border or the margin.
  fillHoles(m, w, h);
  for (let i = 0; i < m.length; i++) m[i] = m[i] ? 255 : 0;
  const steps = Math.round(Math.min(width, height) * 0.02 * o.mask_expand);
  if (steps > 0) m = morphSquare(m, w, h, steps, true);
  m = gaussianBlurMask(m, w, h, o.mask_blur);
  if (o.mask_padding !== 0) m = morphDisk(m, w, h, Math.abs(o.mask_padding), o.mask_padding > 0);
  for (let y = 0; y < h; y++) out.set(m.subarray(y * w, y * w + w), (ry0 + y) * width + rx0);
  return out;
}
