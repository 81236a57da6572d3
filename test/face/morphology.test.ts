/** The fast sliding-window morphology against a brute-force reference, on random grey images. */
import { expect, test } from 'vitest';
import { morphDisk, morphSquare } from '../../worker/face/mask.ts';

function reference(img: Uint8Array, w: number, h: number, r: number, max: boolean, disk: boolean): Uint8Array {
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = max ? 0 : 255;
      for (let dy = -r; dy <= r; dy++) {
        const hw = disk ? Math.floor(Math.sqrt(r * r - dy * dy) + 1e-9) : r;
        for (let dx = -hw; dx <= hw; dx++) {
          const sx = x + dx, sy = y + dy;
          // Outside the image: never wins a dilation; counts as 0 for an erosion by a disk, as 255 along rows.
          let s: number;
          if (sy < 0 || sy >= h) s = max ? 0 : disk ? 0 : 255;
          else if (sx < 0 || sx >= w) s = max ? 0 : 255;
          else s = img[sy * w + sx]!;
          v = max ? Math.max(v, s) : Math.min(v, s);
        }
      }
      out[y * w + x] = v;
    }
  }
  return out;
}

test.each([
  [1, true],
  [3, true],
  [3, false],
  [7, true],
  [7, false],
])('square and disk morphology, r=%i, max=%s, match brute force', (r, max) => {
  let seed = 12345 + r;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256);
  const w = 37, h = 23;
  const img = Uint8Array.from({ length: w * h }, rand);
  expect(Array.from(morphDisk(img, w, h, r, max))).toEqual(Array.from(reference(img, w, h, r, max, true)));
  if (max) expect(Array.from(morphSquare(img, w, h, r, max))).toEqual(Array.from(reference(img, w, h, r, max, false)));
});
