/**
 * The landmark swap's pixel work: Delaunay triangulation of the dense
 * landmarks, a piecewise-affine warp of the source face onto the target
 * landmarks, polygon masks, colour transfer and feathering. Everything works
 * inside a region of interest around the face, so cost follows face size.
 */
import Delaunator from 'delaunator';
import type { RawImage } from '../../../lib/images/raw.ts';
import { gaussianBlurMask, morphSquare } from '../../face/mask.ts';
import type { Point } from '../../face/types.ts';

export interface Roi {
  x0: number;
  y0: number;
  x1: number; // exclusive
  y1: number; // exclusive
}

/** Bounding box of points plus a margin, clamped to the image. */
export function roiOf(points: Point[], width: number, height: number, margin: number): Roi {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    if (x < x0) x0 = x;
    if (y < y0) y0 = y;
    if (x > x1) x1 = x;
    if (y > y1) y1 = y;
  }
  return {
    x0: Math.max(0, Math.floor(x0 - margin)),
    y0: Math.max(0, Math.floor(y0 - margin)),
    x1: Math.min(width, Math.ceil(x1 + margin) + 1),
    y1: Math.min(height, Math.ceil(y1 + margin) + 1),
  };
}

/** Delaunay triangles (index triples) of a point set. */
export function triangulate(points: Point[]): Uint32Array {
  const flat = new Float64Array(points.length * 2);
  points.forEach(([x, y], i) => {
    flat[2 * i] = x;
    flat[2 * i + 1] = y;
  });
  return new Delaunator(flat).triangles;
}

/**
 * Piecewise-affine warp: for every triangle of `dstPts`, pixels inside it are
 * sampled (bilinear) from the matching triangle of `srcPts` in `src`. Writes
 * RGB into `out` (the size of the destination image) and 255 into `cover`
 * where a pixel was written from inside the source image.
 */
export function warpTriangles(
  src: RawImage,
  srcPts: Point[],
  dstPts: Point[],
  triangles: Uint32Array,
  out: Uint8Array,
  cover: Uint8Array,
  width: number,
  height: number,
): void {
  const sw = src.width, sh = src.height, sc = src.channels, sd = src.data;
  const stride = sw * sc;
  for (let t = 0; t < triangles.length; t += 3) {
    const i0 = triangles[t]!, i1 = triangles[t + 1]!, i2 = triangles[t + 2]!;
    const [ax, ay] = dstPts[i0]!, [bx, by] = dstPts[i1]!, [cx, cy] = dstPts[i2]!;
    const det = (bx - ax) * (cy - ay) - (cx - ax) * (by - ay);
    if (Math.abs(det) < 1e-9) continue;
    // Affine dst -> src through barycentric coordinates: p = A + u (B - A) + v (C - A).
    const [sax, say] = srcPts[i0]!, [sbx, sby] = srcPts[i1]!, [scx, scy] = srcPts[i2]!;
    const minX = Math.max(0, Math.floor(Math.min(ax, bx, cx))), maxX = Math.min(width - 1, Math.ceil(Math.max(ax, bx, cx)));
    const minY = Math.max(0, Math.floor(Math.min(ay, by, cy))), maxY = Math.min(height - 1, Math.ceil(Math.max(ay, by, cy)));
    const inv = 1 / det;
    const eps = -1e-6;
    for (let y = minY; y <= maxY; y++) {
      for (let x = minX; x <= maxX; x++) {
        const px = x - ax, py = y - ay;
        const u = (px * (cy - ay) - (cx - ax) * py) * inv;
        const v = ((bx - ax) * py - px * (by - ay)) * inv;
        if (u < eps || v < eps || u + v > 1 - eps) continue;
        const sx = sax + u * (sbx - sax) + v * (scx - sax);
        const sy = say + u * (sby - say) + v * (scy - say);
        const x0 = Math.floor(sx), y0 = Math.floor(sy);
        if (x0 < 0 || y0 < 0 || x0 >= sw - 1 || y0 >= sh - 1) continue;
        const fx = sx - x0, fy = sy - y0;
        const w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy), w01 = (1 - fx) * fy, w11 = fx * fy;
        const p = y0 * stride + x0 * sc;
        const o = (y * width + x) * 3;
        out[o] = w00 * sd[p]! + w10 * sd[p + sc]! + w01 * sd[p + stride]! + w11 * sd[p + stride + sc]! + 0.5;
        out[o + 1] = w00 * sd[p + 1]! + w10 * sd[p + sc + 1]! + w01 * sd[p + stride + 1]! + w11 * sd[p + stride + sc + 1]! + 0.5;
        out[o + 2] = w00 * sd[p + 2]! + w10 * sd[p + sc + 2]! + w01 * sd[p + stride + 2]! + w11 * sd[p + stride + sc + 2]! + 0.5;
        cover[y * width + x] = 255;
      }
    }
  }
}

/** Fill a polygon (even-odd, pixel centres) into a 0/255 mask of the full image size, inside `roi`. */
export function fillPolygon(poly: Point[], mask: Uint8Array, width: number, roi: Roi): void {
  const n = poly.length;
  const xs: number[] = [];
  for (let y = roi.y0; y < roi.y1; y++) {
    const yc = y + 0.5;
    xs.length = 0;
    for (let i = 0, j = n - 1; i < n; j = i++) {
      const [xi, yi] = poly[i]!, [xj, yj] = poly[j]!;
      if (yi > yc !== yj > yc) xs.push(xi + ((yc - yi) * (xj - xi)) / (yj - yi));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const a = Math.max(roi.x0, Math.ceil(xs[k]! - 0.5)), b = Math.min(roi.x1 - 1, Math.floor(xs[k + 1]! - 0.5));
      if (b >= a) mask.fill(255, y * width + a, y * width + b + 1);
    }
  }
}

/**
 * Colour transfer (Reinhard, per RGB channel): shift and scale the warped
 * source inside `roi` so that its mean and standard deviation over `region`
 * match the base image's over the same pixels. Std ratios are clamped to
 * [0.5, 2] so a strongly lit source does not blow out.
 */
export function transferColour(warped: Uint8Array, base: RawImage, region: Uint8Array, width: number, roi: Roi): void {
  const bd = base.data, bc = base.channels;
  const sumS = [0, 0, 0], sqS = [0, 0, 0], sumB = [0, 0, 0], sqB = [0, 0, 0];
  let n = 0;
  for (let y = roi.y0; y < roi.y1; y++) {
    for (let x = roi.x0; x < roi.x1; x++) {
      const i = y * width + x;
      if (region[i] !== 255) continue;
      n++;
      for (let k = 0; k < 3; k++) {
        const s = warped[i * 3 + k]!, b = bd[i * bc + k]!;
        sumS[k]! += s;
        sqS[k]! += s * s;
        sumB[k]! += b;
        sqB[k]! += b * b;
      }
    }
  }
  if (n < 16) return;
  const lut: Uint8Array[] = [];
  for (let k = 0; k < 3; k++) {
    const ms = sumS[k]! / n, mb = sumB[k]! / n;
    const ss = Math.sqrt(Math.max(1e-6, sqS[k]! / n - ms * ms)), sb = Math.sqrt(Math.max(1e-6, sqB[k]! / n - mb * mb));
    const r = Math.min(2, Math.max(0.5, sb / ss));
    const l = new Uint8Array(256);
    for (let v = 0; v < 256; v++) l[v] = Math.min(255, Math.max(0, Math.round((v - ms) * r + mb)));
    lut.push(l);
  }
  const [l0, l1, l2] = lut as [Uint8Array, Uint8Array, Uint8Array];
  for (let y = roi.y0; y < roi.y1; y++) {
    for (let x = roi.x0; x < roi.x1; x++) {
      const o = (y * width + x) * 3;
      warped[o] = l0[warped[o]!]!;
      warped[o + 1] = l1[warped[o + 1]!]!;
      warped[o + 2] = l2[warped[o + 2]!]!;
    }
  }
}

/**
 * Feathered mask inside `roi`: erode the hard mask by `erode` pixels, blur with
 * sigma `sigma`, and keep it inside the hard mask (so the soft mask is 0
 * wherever the hard one is). Returns a full-size 0..255 mask.
 */
export function featherMask(hard: Uint8Array, width: number, height: number, roi: Roi, erode: number, sigma: number): Uint8Array {
  const w = roi.x1 - roi.x0, h = roi.y1 - roi.y0;
  let m: Uint8Array = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) m.set(hard.subarray((roi.y0 + y) * width + roi.x0, (roi.y0 + y) * width + roi.x0 + w), y * w);
  if (erode > 0) m = morphSquare(m, w, h, erode, false);
  m = gaussianBlurMask(m, w, h, sigma);
  const out = new Uint8Array(width * height);
  for (let y = 0; y < h; y++) {
    const row = (roi.y0 + y) * width + roi.x0;
    for (let x = 0; x < w; x++) out[row + x] = hard[row + x] === 255 ? m[y * w + x]! : 0;
  }
  void height;
  return out;
}
