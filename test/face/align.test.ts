import { describe, expect, it } from 'vitest';
import { alignFace, applyAffine, arcfaceTemplate, estimateSimilarity, invertAffine, warpAffine } from '../../worker/face/align.ts';
import type { Affine, Point } from '../../worker/face/types.ts';

const KPS: Point[] = [[412.3, 301.7], [498.6, 296.2], [455.1, 350.4], [420.8, 398.9], [492.0, 394.5]];

/** The DESIGN values are printed to 6 decimals (and were computed in float32), so compare within 1e-5. */
function expectAffine(actual: Affine, expected: number[], tolerance = 1e-5): void {
  expect(actual).toHaveLength(6);
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(tolerance));
}

describe('ArcFace alignment (DESIGN 5.2)', () => {
  it('reproduces the test vector for size 112', () => {
    expectAffine(estimateSimilarity(KPS, arcfaceTemplate(112)), [0.412558, -0.010325, -128.404432, 0.010325, 0.412558, -76.515274]);
  });

  it('reproduces the test vector for size 224', () => {
    expectAffine(estimateSimilarity(KPS, arcfaceTemplate(224)), [0.825115, -0.02065, -256.808865, 0.02065, 0.825115, -153.030548]);
  });

  it('scales the template for sizes divisible by 128 with the x offset', () => {
    const t = arcfaceTemplate(128);
    expect(t[0]![0]).toBeCloseTo(38.2946 + 8, 6);
    expect(t[0]![1]).toBeCloseTo(51.6963, 6);
    expect(arcfaceTemplate(256)[4]![0]).toBeCloseTo((70.7299 + 8) * 2, 6);
    expect(() => arcfaceTemplate(100)).toThrow(/100/);
  });

  it('recovers an exact similarity and never reflects', () => {
    const angle = 0.3, s = 1.7;
    const truth: Affine = [s * Math.cos(angle), -s * Math.sin(angle), 12, s * Math.sin(angle), s * Math.cos(angle), -5];
    const dst = KPS.map((p) => applyAffine(truth, p));
    expectAffine(estimateSimilarity(KPS, dst), truth, 1e-9);
    // Mirrored destination: the best similarity still has a positive determinant.
    const mirrored = KPS.map(([x, y]) => [-x, y] as Point);
    const m = estimateSimilarity(KPS, mirrored);
    expect(m[0] * m[4] - m[1] * m[3]).toBeGreaterThanOrEqual(0);
  });

  it('inverts affine maps', () => {
    const m: Affine = [0.9, -0.2, 14, 0.25, 1.1, -3];
    const p: Point = [17.5, -4.25];
    const q = applyAffine(invertAffine(m), applyAffine(m, p));
    expect(q[0]).toBeCloseTo(p[0], 10);
    expect(q[1]).toBeCloseTo(p[1], 10);
  });

  it('warps bilinearly with border 0', () => {
    // 2x2 gray image; shift by half a pixel to the right.
    const img = { data: new Uint8Array([0, 100, 200, 40]), width: 2, height: 2, channels: 1 as const };
    const out = warpAffine(img, [1, 0, 0.5, 0, 1, 0], 3, 2);
    // out(x) samples src(x - 0.5): x=0 -> between border(0) and 0 -> 0; x=1 -> (0+100)/2; x=2 -> (100 + 0 border)/2
    expect(Array.from(out.data)).toEqual([0, 50, 50, 100, 120, 20]);
    // Identity warp reproduces the image exactly, and pixels mapped from outside are 0.
    expect(Array.from(warpAffine(img, [1, 0, 0, 0, 1, 0], 2, 2).data)).toEqual([0, 100, 200, 40]);
    expect(Array.from(warpAffine(img, [1, 0, 10, 0, 1, 10], 2, 2).data)).toEqual([0, 0, 0, 0]);
  });

  it('aligns keypoints onto the template', () => {
    const img = { data: new Uint8Array(600 * 500 * 3).fill(255), width: 600, height: 500, channels: 3 as const };
    const { image, matrix } = alignFace(img, KPS, 112);
    expect(image.width).toBe(112);
    expect(image.channels).toBe(3);
    const mapped = applyAffine(matrix, KPS[2]!);
    expect(mapped[0]).toBeCloseTo(56.0, 0);
    expect(image.data[(56 * 112 + 56) * 3]).toBe(255);
  });
});
