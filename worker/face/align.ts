/**
 * ArcFace 5-point alignment (DESIGN 5.2): the template, the closed-form
 * least-squares similarity transform (Umeyama without reflection), and a
 * bilinear affine warp with border 0.
 */
import type { RawImage } from '../../lib/images/raw.ts';
import type { Affine, Point } from './types.ts';

const TEMPLATE_112: readonly Point[] = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

/** The ArcFace 5-point template for a square crop of `size` pixels (size divisible by 112 or by 128). */
export function arcfaceTemplate(size: number): Point[] {
  if (size % 112 === 0) {
    const r = size / 112;
    return TEMPLATE_112.map(([x, y]) => [x * r, y * r]);
  }
  if (size % 128 === 0) {
    const r = size / 128;
    return TEMPLATE_112.map(([x, y]) => [x * r + 8 * r, y * r]);
  }
  throw new Error(`arcfaceTemplate: size ${size} is divisible by neither 112 nor 128`);
}

/**
 * Least-squares similarity transform (rotation, uniform scale, translation)
 * mapping `src` onto `dst`. Closed form with complex numbers:
 * a + ib = sum(conj(zs) * zd) / sum(|zs|^2) over the demeaned points.
 */
export function estimateSimilarity(src: Point[], dst: Point[]): Affine {
  const n = src.length;
  if (n < 2 || dst.length !== n) throw new Error(`estimateSimilarity: need >= 2 matching points, got ${n} and ${dst.length}`);
  let msx = 0, msy = 0, mdx = 0, mdy = 0;
  for (let i = 0; i < n; i++) {
    msx += src[i]![0]; msy += src[i]![1];
    mdx += dst[i]![0]; mdy += dst[i]![1];
  }
  msx /= n; msy /= n; mdx /= n; mdy /= n;
  let re = 0, im = 0, norm = 0;
  for (let i = 0; i < n; i++) {
    const sx = src[i]![0] - msx, sy = src[i]![1] - msy;
    const dx = dst[i]![0] - mdx, dy = dst[i]![1] - mdy;
    // conj(s) * d = (sx - i sy)(dx + i dy)
    re += sx * dx + sy * dy;
    im += sx * dy - sy * dx;
    norm += sx * sx + sy * sy;
  }
  if (norm === 0) throw new Error('estimateSimilarity: source points are all identical');
  const a = re / norm, b = im / norm;
  const tx = mdx - (a * msx - b * msy);
  const ty = mdy - (b * msx + a * msy);
  return [a, -b, tx, b, a, ty];
}

/** Inverse of an affine map. */
export function invertAffine(m: Affine): Affine {
  const [a, b, tx, c, d, ty] = m;
  const det = a * d - b * c;
  if (det === 0 || !Number.isFinite(det)) throw new Error('invertAffine: matrix is singular');
  const ia = d / det, ib = -b / det, ic = -c / det, id = a / det;
  return [ia, ib, -(ia * tx + ib * ty), ic, id, -(ic * tx + id * ty)];
}

/** Apply an affine map to a point. */
export function applyAffine(m: Affine, p: Point): Point {
  return [m[0] * p[0] + m[1] * p[1] + m[2], m[3] * p[0] + m[4] * p[1] + m[5]];
}

/** Compose: first `first`, then `second` (second ∘ first). */
export function composeAffine(second: Affine, first: Affine): Affine {
  const [a1, b1, t1, c1, d1, u1] = first;
  const [a2, b2, t2, c2, d2, u2] = second;
  return [
    a2 * a1 + b2 * c1, a2 * b1 + b2 * d1, a2 * t1 + b2 * u1 + t2,
    c2 * a1 + d2 * c1, c2 * b1 + d2 * d1, c2 * t1 + d2 * u1 + u2,
  ];
}

/**
 * Warp `image` by `m` (which maps source pixel coordinates to output pixel
 * coordinates, as cv2.warpAffine does) into a `width` x `height` image.
 * Bilinear sampling; samples outside the source read 0 (border constant 0).
 */
export function warpAffine(image: RawImage, m: Affine, width: number, height: number): RawImage {
  const { data: src, width: sw, height: sh, channels: ch } = image;
  const out = new Uint8Array(width * height * ch);
  const [ia, ib, itx, ic, id, ity] = invertAffine(m);
  const stride = sw * ch;
  for (let y = 0; y < height; y++) {
    // Source coordinates of (0, y), then step by (ia, ic) per output column.
    let sx = ib * y + itx;
    let sy = id * y + ity;
    let o = y * width * ch;
    for (let x = 0; x < width; x++, sx += ia, sy += ic, o += ch) {
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      if (x0 < -1 || y0 < -1 || x0 >= sw || y0 >= sh) continue;
      const fx = sx - x0, fy = sy - y0;
      const w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy), w01 = (1 - fx) * fy, w11 = fx * fy;
      const in0 = y0 >= 0, in1 = y0 + 1 < sh, inL = x0 >= 0, inR = x0 + 1 < sw;
      const p00 = y0 * stride + x0 * ch;
      for (let k = 0; k < ch; k++) {
        let v = 0;
        if (in0 && inL) v += w00 * src[p00 + k]!;
        if (in0 && inR) v += w10 * src[p00 + ch + k]!;
        if (in1 && inL) v += w01 * src[p00 + stride + k]!;
        if (in1 && inR) v += w11 * src[p00 + stride + ch + k]!;
        out[o + k] = v + 0.5; // Uint8Array truncates; values are within [0, 255]
      }
    }
  }
  return { data: out, width, height, channels: ch };
}

/** Align a face to the ArcFace template at `size` x `size`; `matrix` maps image coordinates to crop coordinates. */
export function alignFace(image: RawImage, kps: Point[], size: number): { image: RawImage; matrix: Affine } {
  const matrix = estimateSimilarity(kps, arcfaceTemplate(size));
  return { image: warpAffine(image, matrix, size, size), matrix };
}
