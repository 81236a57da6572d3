/**
 * Seeded Gaussian noise (DESIGN 5.6): our own generator, so the same seed
 * gives the same latents on every machine and platform, independent of
 * onnxruntime or the GPU. xoshiro128** seeded through splitmix32, normals by
 * the Box-Muller transform (both values of each pair used).
 */

export interface GaussianRng {
  /** Fill `out` with independent N(0, 1) samples; the stream continues across calls. */
  fill(out: Float32Array): Float32Array;
  /** One N(0, 1) sample. */
  next(): number;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** A uniform 32-bit generator (xoshiro128**). */
export function createUint32Rng(seed: number): () => number {
  const sm = splitmix32(seed);
  let a = sm();
  let b = sm();
  let c = sm();
  let d = sm();
  if ((a | b | c | d) === 0) a = 1;
  return () => {
    const r = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    return r;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export function createGaussianRng(seed: number): GaussianRng {
  const u32 = createUint32Rng(seed);
  // 53-bit uniform in (0, 1): never 0, so log() is finite.
  const uniform = () => ((u32() >>> 5) * 67108864 + (u32() >>> 6) + 0.5) / 9007199254740992;
  let spare: number | undefined;
  const next = () => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const th = 2 * Math.PI * uniform();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
  return {
    next,
    fill(out) {
      for (let i = 0; i < out.length; i++) out[i] = next();
      return out;
    },
  };
}

/** A fresh random seed (uint32) for jobs that do not give one. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}
