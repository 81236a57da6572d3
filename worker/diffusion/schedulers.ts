/**
 * Diffusion schedulers for SDXL (DESIGN 5.7): the noise schedule, the
 * timestep/sigma tables of each sampler, the strength -> start-step rule, and
 * the per-step update. Everything here is plain arithmetic on Float32Arrays
 * (computed in float64), so it is tested against the diffusers reference
 * numbers without any model.
 *
 * SDXL configuration: scaled_linear betas from 0.00085 to 0.012, 1000
 * training steps, epsilon prediction, steps_offset 1, "leading" spacing.
 */
import type { SchedulerName } from '../../lib/jobs/params.ts';

export const TRAIN_STEPS = 1000;
const BETA_START = 0.00085;
const BETA_END = 0.012;
const STEPS_OFFSET = 1;
const KARRAS_RHO = 7;

let cachedAlphas: Float64Array | undefined;

/** ᾱ_t for t = 0..999: cumprod(1 - β) with β = linspace(√0.00085, √0.012, 1000)². */
export function alphasCumprod(): Float64Array {
  if (cachedAlphas) return cachedAlphas;
  const a = new Float64Array(TRAIN_STEPS);
  const s0 = Math.sqrt(BETA_START);
  const s1 = Math.sqrt(BETA_END);
  let prod = 1;
  for (let i = 0; i < TRAIN_STEPS; i++) {
    const s = s0 + ((s1 - s0) * i) / (TRAIN_STEPS - 1);
    prod *= 1 - s * s;
    a[i] = prod;
  }
  cachedAlphas = a;
  return a;
}

/** σ(t) = √((1 − ᾱ_t)/ᾱ_t) for every training timestep. */
export function trainingSigmas(): Float64Array {
  const a = alphasCumprod();
  return a.map((v) => Math.sqrt((1 - v) / v));
}

/** σ at a (possibly fractional) timestep by linear interpolation (numpy interp). */
export function sigmaAt(t: number, sigmas = trainingSigmas()): number {
  if (t <= 0) return sigmas[0]!;
  if (t >= sigmas.length - 1) return sigmas[sigmas.length - 1]!;
  const lo = Math.floor(t);
  const w = t - lo;
  return sigmas[lo]! * (1 - w) + sigmas[lo + 1]! * w;
}

/** Fractional timestep of a σ (diffusers `_sigma_to_t`: interpolation in log σ). */
export function sigmaToT(sigma: number, sigmas = trainingSigmas()): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const n = sigmas.length;
  // low = last index whose log σ ≤ log sigma (clipped to n − 2).
  let low = 0;
  for (let i = 0; i < n; i++) if (logSigma - Math.log(sigmas[i]!) >= 0) low = i;
  low = Math.min(low, n - 2);
  const lo = Math.log(sigmas[low]!);
  const hi = Math.log(sigmas[low + 1]!);
  const w = Math.min(1, Math.max(0, (lo - logSigma) / (lo - hi)));
  return (1 - w) * low + w * (low + 1);
}

/** Karras et al. σ ramp between σ_max and σ_min with ρ = 7. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const minInv = sigmaMin ** (1 / KARRAS_RHO);
  const maxInv = sigmaMax ** (1 / KARRAS_RHO);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const ramp = n === 1 ? 0 : i / (n - 1);
    out.push((maxInv + ramp * (minInv - maxInv)) ** KARRAS_RHO);
  }
  return out;
}

export type Spacing = 'leading' | 'trailing';

/** Integer timesteps of a schedule, high to low (diffusers Euler/DDIM conventions). */
export function spacedTimesteps(n: number, spacing: Spacing): number[] {
  const out: number[] = [];
  if (spacing === 'leading') {
    const ratio = Math.floor(TRAIN_STEPS / n);
    for (let i = 0; i < n; i++) out.push((n - 1 - i) * ratio + STEPS_OFFSET);
  } else {
    const ratio = TRAIN_STEPS / n;
    // np.arange(1000, 0, -ratio).round() - 1
    for (let i = 0; i < n; i++) out.push(roundHalfEven(TRAIN_STEPS - i * ratio) - 1);
  }
  return out;
}

/** numpy rounds half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A full schedule of one sampler for N steps: timesteps[N], sigmas[N+1] (last 0), init σ. */
export interface Schedule {
  timesteps: number[];
  sigmas: number[];
  initNoiseSigma: number;
}

/** Euler-family schedule (Euler, Euler ancestral), optionally with Karras σ. */
export function eulerSchedule(n: number, opts: { spacing?: Spacing; karras?: boolean } = {}): Schedule {
  const spacing = opts.spacing ?? 'leading';
  const all = trainingSigmas();
  let timesteps = spacedTimesteps(n, spacing);
  let sigmas = timesteps.map((t) => sigmaAt(t, all));
  if (opts.karras) {
    sigmas = karrasSigmas(sigmas[sigmas.length - 1]!, sigmas[0]!, n);
    timesteps = sigmas.map((s) => sigmaToT(s, all));
  }
  const max = Math.max(...sigmas);
  return {
    timesteps,
    sigmas: [...sigmas, 0],
    initNoiseSigma: spacing === 'leading' ? Math.sqrt(max * max + 1) : max,
  };
}

/**
 * DPM-Solver++ schedule (diffusers DPMSolverMultistepScheduler with the SDXL
 * config). Karras: σ from the whole training range, timesteps rounded from σ.
 * Without Karras: diffusers' leading spacing for this scheduler, step ratio
 * 1000 div (N + 1).
 */
export function dpmSchedule(n: number, opts: { karras?: boolean } = {}): Schedule {
  const all = trainingSigmas();
  let timesteps: number[];
  let sigmas: number[];
  if (opts.karras) {
    sigmas = karrasSigmas(all[0]!, all[all.length - 1]!, n);
    timesteps = sigmas.map((s) => roundHalfEven(sigmaToT(s, all)));
  } else {
    const ratio = Math.floor((TRAIN_STEPS - 1 + 1) / (n + 1));
    timesteps = [];
    for (let i = n; i >= 1; i--) timesteps.push(i * ratio + STEPS_OFFSET);
    sigmas = timesteps.map((t) => sigmaAt(t, all));
  }
  return { timesteps, sigmas: [...sigmas, 0], initNoiseSigma: 1 };
}

/** DDIM schedule: leading timesteps; `sigmas` are the matching σ(t) for reference (DDIM steps in ᾱ). */
export function ddimSchedule(n: number): Schedule {
  const all = trainingSigmas();
  const timesteps = spacedTimesteps(n, 'leading');
  return { timesteps, sigmas: [...timesteps.map((t) => all[t]!), 0], initNoiseSigma: 1 };
}

/** The schedule behind each public scheduler name. */
export function scheduleFor(name: SchedulerName, n: number): Schedule {
  switch (name) {
    case 'euler':
    case 'euler_a':
      return eulerSchedule(n);
    case 'dpmpp_2m':
      return dpmSchedule(n);
    case 'dpmpp_2m_karras':
      return dpmSchedule(n, { karras: true });
    case 'ddim':
      return ddimSchedule(n);
  }
}

/** Strength (denoise) → start step: init = trunc(N·strength), t_start = N − init (diffusers get_timesteps). */
export function startStep(n: number, strength: number): number {
  const init = Math.min(Math.trunc(n * strength), n);
  return Math.max(n - init, 0);
}

/**
 * IP-Adapter scale at each executed step under `stop_at` (DESIGN 5.5, the
 * research semantics): executed step k (0-based, after the strength cut) is
 * active iff k = 0 or (k − 1)/N_requested ≤ stopAt; inactive steps use 0.
 */
export function ipScaleSchedule(executed: number, requested: number, scale: number, stopAt: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < executed; k++) out.push(k === 0 || (k - 1) / requested <= stopAt ? scale : 0);
  return out;
}

/** Gaussian noise source for ancestral steps (the seeded generator of noise.ts). */
export type NoiseFn = (out: Float32Array) => void;

/**
 * One run of a sampler over the executed steps. `x` is the latent (updated in
 * place by `step`); the model sees `x · inputScale(k)` at `timestep(k)`.
 */
export interface Sampler {
  readonly name: SchedulerName;
  /** Number of steps this run executes (N − t_start). */
  readonly steps: number;
  /** Steps the caller asked for (N). */
  readonly requested: number;
  readonly startIndex: number;
  readonly initNoiseSigma: number;
  timestep(k: number): number;
  inputScale(k: number): number;
  /** Start latent for strength < 1: x0 noised to the first executed timestep (written into `out`). */
  addNoise(x0: Float32Array, noise: Float32Array, out: Float32Array): void;
  /** x ← next latent given the guided ε̂ at executed step k. */
  step(k: number, x: Float32Array, eps: Float32Array): void;
}

export interface SamplerOptions {
  steps: number;
  strength?: number;
  /** Needed by euler_a (fresh noise every step). */
  noise?: NoiseFn;
}

export function createSampler(name: SchedulerName, opts: SamplerOptions): Sampler {
  const n = opts.steps;
  const sched = scheduleFor(name, n);
  const start = startStep(n, opts.strength ?? 1);
  const steps = n - start;
  const alphas = alphasCumprod();
  const base = {
    name,
    steps,
    requested: n,
    startIndex: start,
    initNoiseSigma: sched.initNoiseSigma,
    timestep: (k: number) => sched.timesteps[start + k]!,
  };

  if (name === 'euler' || name === 'euler_a') {
    const noise = opts.noise;
    if (name === 'euler_a' && !noise) throw new Error('euler_a needs a noise source');
    let buf: Float32Array | undefined;
    return {
      ...base,
      inputScale: (k) => 1 / Math.sqrt(sched.sigmas[start + k]! ** 2 + 1),
      addNoise(x0, nz, out) {
        const s = sched.sigmas[start]!;
        for (let i = 0; i < out.length; i++) out[i] = x0[i]! + nz[i]! * s;
      },
      step(k, x, eps) {
        const s = sched.sigmas[start + k]!;
        const sNext = sched.sigmas[start + k + 1]!;
        if (name === 'euler') {
          const dt = sNext - s;
          for (let i = 0; i < x.length; i++) x[i] = x[i]! + eps[i]! * dt;
          return;
        }
        const up = Math.sqrt((sNext * sNext * (s * s - sNext * sNext)) / (s * s));
        const down = Math.sqrt(sNext * sNext - up * up);
        const dt = down - s;
        if (!buf || buf.length !== x.length) buf = new Float32Array(x.length);
        noise!(buf);
        for (let i = 0; i < x.length; i++) x[i] = x[i]! + eps[i]! * dt + buf[i]! * up;
      },
    };
  }

  if (name === 'ddim') {
    const ratio = Math.floor(TRAIN_STEPS / n);
    return {
      ...base,
      inputScale: () => 1,
      addNoise(x0, nz, out) {
        const a = alphas[sched.timesteps[start]!]!;
        const sa = Math.sqrt(a);
        const sb = Math.sqrt(1 - a);
        for (let i = 0; i < out.length; i++) out[i] = sa * x0[i]! + sb * nz[i]!;
      },
      step(k, x, eps) {
        const t = sched.timesteps[start + k]!;
        const prev = t - ratio;
        const a = alphas[t]!;
        const ap = prev >= 0 ? alphas[prev]! : alphas[0]!;
        const sa = Math.sqrt(a);
        const sb = Math.sqrt(1 - a);
        const spa = Math.sqrt(ap);
        const spb = Math.sqrt(1 - ap);
        for (let i = 0; i < x.length; i++) {
          const e = eps[i]!;
          const x0 = (x[i]! - sb * e) / sa;
          x[i] = spa * x0 + spb * e;
        }
      },
    };
  }

  // DPM-Solver++ 2M (midpoint), first order at the first and last executed steps.
  const alphaOf = (sigma: number) => 1 / Math.sqrt(sigma * sigma + 1);
  const lambdaOf = (sigma: number) => {
    const a = alphaOf(sigma);
    return Math.log(a) - Math.log(sigma * a);
  };
  let prevX0: Float32Array | undefined;
  let curX0: Float32Array | undefined;
  return {
    ...base,
    inputScale: () => 1,
    addNoise(x0, nz, out) {
      const s = sched.sigmas[start]!;
      const a = alphaOf(s);
      for (let i = 0; i < out.length; i++) out[i] = a * x0[i]! + s * a * nz[i]!;
    },
    step(k, x, eps) {
      const i0 = start + k;
      const sig = sched.sigmas[i0]!;
      const sigNext = sched.sigmas[i0 + 1]!;
      const aS = alphaOf(sig);
      const sS = sig * aS;
      const aT = alphaOf(sigNext);
      const sT = sigNext * aT;
      if (!curX0 || curX0.length !== x.length) {
        curX0 = new Float32Array(x.length);
        prevX0 = new Float32Array(x.length);
      }
      // Rotate: the previous step's x0 becomes prevX0.
      const tmp = prevX0!;
      prevX0 = curX0;
      curX0 = tmp;
      for (let i = 0; i < x.length; i++) curX0[i] = (x[i]! - sS * eps[i]!) / aS;
      const lamS = lambdaOf(sig);
      const lamT = lambdaOf(sigNext);
      const h = lamT - lamS;
      const em1 = Math.exp(-h) - 1;
      const ratio = sT / sS;
      const last = k === steps - 1;
      if (k === 0 || last) {
        for (let i = 0; i < x.length; i++) x[i] = ratio * x[i]! - aT * em1 * curX0[i]!;
        return;
      }
      const lamPrev = lambdaOf(sched.sigmas[i0 - 1]!);
      const r = (lamS - lamPrev) / h;
      for (let i = 0; i < x.length; i++) {
        const d0 = curX0[i]!;
        const d1 = (d0 - prevX0![i]!) / r;
        x[i] = ratio * x[i]! - aT * em1 * d0 - 0.5 * aT * em1 * d1;
      }
    },
  };
}
