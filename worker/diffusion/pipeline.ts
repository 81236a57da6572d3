/**
 * The diffusion face swap (issue 5, DESIGN 5): SDXL inpainting of the base
 * face, steered by the source identity through IP-Adapter FaceID Plus v2.
 *
 *   source: detect → align (112 for ArcFace, 224 for CLIP) → embed → CLIP
 *           features → FaceID projection (+ unconditional branch)
 *   prompt: two CLIP tokenizers and text encoders (negative first)
 *   base:   detect → parse → soft mask (mask options) → crop around the face
 *           at a size near 1024² → VAE-encode image and masked image
 *   loop:   UNet with guidance as a batch of two, IP scale per step (stop_at)
 *   out:    VAE-decode → resize to the crop → paste back through the soft mask
 *           (every pixel outside the mask is bit-identical to the base)
 *
 * `count` images use consecutive seeds; `swap_all` inpaints each chosen base
 * face in turn (left to right).
 */
import { JobError, throwIfAborted } from '../../lib/errors.ts';
import type { RawImage } from '../../lib/images/raw.ts';
import type { FaceSwapParams } from '../../lib/jobs/params.ts';
import { alignFace } from '../face/align.ts';
import { chooseFaces } from '../face/detect.ts';
import { cropRaw, resizeRaw, toRgb } from '../face/image.ts';
import { buildFaceMask } from '../face/mask.ts';
import { pasteBack } from '../face/paste.ts';
import { embedFace } from '../face/recognize.ts';
import type { Face, FaceDetector, FaceParser, FaceRecognizer } from '../face/types.ts';
import { planCrop, maskBounds, type CropPlan } from './crop.ts';
import { faceIdTokens, CLIP_SIZE } from './faceid.ts';
import { denoise } from './denoise.ts';
import { binarizeMask, latentMask, maskImage, resizeMask } from './inpaint.ts';
import { createGaussianRng, randomSeed } from './noise.ts';
import { createSampler, ipScaleSchedule } from './schedulers.ts';
import type { ModelClock, OrtSession } from './session.ts';
import { encodeForGuidance, type TextConditioning } from './text.ts';
import type { ClipTokenizer } from './tokenizer.ts';
import { decodeLatents, encodeLatents, toSignedPixels, LATENT_CHANNELS } from './vae.ts';

/** The prompt used when the caller gives none and no prompt writer is configured. */
export const DEFAULT_PROMPT = 'a photo of a person, natural skin texture, detailed face, soft natural light, high quality';

export interface DiffusionModels {
  detector: FaceDetector;
  recognizer: FaceRecognizer;
  parser: FaceParser;
  clipVision: OrtSession;
  projection: OrtSession;
  tokenizer: ClipTokenizer;
  encoderL: OrtSession;
  encoderG: OrtSession;
  vaeEncoder: OrtSession;
  vaeDecoder: OrtSession;
  unet: OrtSession;
}

export interface PipelineHooks {
  signal?: AbortSignal;
  progress?(fraction: number, stage: string): void;
  /** Resolves the text prompt (the caller decides between params.prompt, a prompt writer and the default). */
  prompt: string;
  /** Generation side (area ≈ resolution²). Default 1024. */
  resolution?: number;
  /** When given, model time is read from it to report the engine's own overhead. */
  clock?: ModelClock;
}

export type DiffusionParams = Pick<
  FaceSwapParams,
  | 'face_index' | 'source_face_index' | 'swap_all'
  | 'include_hair' | 'include_neck' | 'mask_expand' | 'mask_blur' | 'mask_padding'
  | 'steps' | 'guidance_scale' | 'denoise_strength' | 'face_strength' | 'stop_at' | 'shortcut_scale'
  | 'scheduler' | 'seed' | 'negative_prompt' | 'count'
>;

export interface PipelineResult {
  images: RawImage[];
  info: Record<string, unknown>;
}

/** Per base face: what does not change between the `count` images. */
interface PreparedFace {
  face: Face;
  /** Soft mask (0..255) at base resolution. */
  mask: Uint8Array;
  crop: CropPlan;
}

/** Per (working image, face): generation-size inputs of the UNet. */
interface PreparedCrop {
  latentMask: Float32Array;
  maskedLatents: Float32Array;
  /** Scaled latents of the unmasked crop (strength < 1 only). */
  imageLatents: Float32Array | null;
}

function assertSource(face: Face | undefined): Face {
  if (!face) throw new JobError('no_face_in_source', 'No face was found in the face (source) image');
  return face;
}

export async function swapFaceDiffusion(
  models: DiffusionModels,
  baseIn: RawImage,
  sourceIn: RawImage,
  params: DiffusionParams,
  hooks: PipelineHooks,
): Promise<PipelineResult> {
  const t0 = performance.now();
  const model0 = hooks.clock?.modelMs ?? 0;
  const progress = hooks.progress ?? (() => undefined);
  const signal = hooks.signal;
  const base = toRgb(baseIn);
  const source = toRgb(sourceIn);

  // 1. Faces.
  progress(0, 'detect');
  const baseFaces = await models.detector.detect(base);
  throwIfAborted(signal);
  if (baseFaces.length === 0) throw new JobError('no_face_in_base', 'No face was found in the base image');
  const sourceFaces = await models.detector.detect(source);
  throwIfAborted(signal);
  const srcFace = assertSource(chooseFaces(sourceFaces, { index: params.source_face_index, role: 'The face image' })[0]);
  const targets = chooseFaces(baseFaces, { index: params.face_index, all: params.swap_all, role: 'The base image' });

  // 2. Identity: ArcFace embedding (112 alignment) and FaceID tokens (224 alignment for CLIP).
  progress(0.02, 'identity');
  const embedding = await embedFace(models.recognizer, source, srcFace);
  const aligned224 = alignFace(source, srcFace.kps, CLIP_SIZE).image;
  const ipTokens = await faceIdTokens({ clipVision: models.clipVision, projection: models.projection }, embedding, aligned224, params.shortcut_scale);
  throwIfAborted(signal);

  // 3. Text.
  progress(0.04, 'prompt');
  const text: TextConditioning = await encodeForGuidance(
    { tokenizer: models.tokenizer, encoderL: models.encoderL, encoderG: models.encoderG },
    hooks.prompt,
    params.negative_prompt,
  );
  throwIfAborted(signal);

  // 4. Masks and crops of the base faces (parsed once on the original base).
  progress(0.06, 'mask');
  const prepared: PreparedFace[] = [];
  for (const face of targets) {
    const parse = await models.parser.parse(base, face);
    const mask = buildFaceMask(parse.labels, parse.width, parse.height, {
      include_hair: params.include_hair,
      include_neck: params.include_neck,
      mask_expand: params.mask_expand,
      mask_blur: params.mask_blur,
      mask_padding: params.mask_padding,
    });
    const crop = planCrop(base.width, base.height, face.box, maskBounds(mask, base.width, base.height), {
      resolution: hooks.resolution ?? 1024,
    });
    prepared.push({ face, mask, crop });
    throwIfAborted(signal);
  }

  const seed0 = params.seed ?? randomSeed();
  const count = params.count;
  const strength = params.denoise_strength;
  const images: RawImage[] = [];
  const seeds: number[] = [];
  const firstCropCache = new Map<number, PreparedCrop>();
  let stepsDone = 0;
  let executedPerFace = 0;
  const units = count * prepared.length;
  // Time inside the denoising loops, and inside UNet calls there: the per-step overhead is the difference.
  let loopMs = 0;
  let loopModelMs = 0;

  for (let i = 0; i < count; i++) {
    const seed = (seed0 + i) >>> 0;
    seeds.push(seed);
    const rng = createGaussianRng(seed);
    let working = base;
    for (let f = 0; f < prepared.length; f++) {
      const pf = prepared[f]!;
      const unit = i * prepared.length + f;
      const { crop } = pf;
      const gw = crop.genWidth;
      const gh = crop.genHeight;
      const lh = gh / 8;
      const lw = gw / 8;

      // Generation-size inputs: cached for the first face (its working image is always the base).
      let pc = f === 0 ? firstCropCache.get(f) : undefined;
      if (!pc) {
        progress(0.08 + (0.9 * unit) / units, 'vae_encode');
        pc = await prepareCrop(models, working, pf, strength);
        if (f === 0) firstCropCache.set(f, pc);
        throwIfAborted(signal);
      }

      const sampler = createSampler(params.scheduler, {
        steps: params.steps,
        strength,
        noise: (out) => void rng.fill(out),
      });
      executedPerFace = sampler.steps;
      const n = LATENT_CHANNELS * lh * lw;
      const noise = rng.fill(new Float32Array(n));
      const latents = new Float32Array(n);
      if (strength >= 1 || !pc.imageLatents) {
        for (let k = 0; k < n; k++) latents[k] = noise[k]! * sampler.initNoiseSigma;
      } else if (sampler.steps === 0) {
        latents.set(pc.imageLatents);
      } else {
        sampler.addNoise(pc.imageLatents, noise, latents);
      }
      const ipScales = ipScaleSchedule(sampler.steps, params.steps, params.face_strength, params.stop_at);

      const d0 = performance.now();
      const dm0 = hooks.clock?.modelMs ?? 0;
      await denoise({
        unet: models.unet,
        sampler,
        latents,
        mask: pc.latentMask,
        maskedLatents: pc.maskedLatents,
        latentHeight: lh,
        latentWidth: lw,
        text,
        timeIds: [gh, gw, 0, 0, gh, gw],
        ipTokens,
        ipScales,
        guidance: params.guidance_scale,
        signal,
        onStep: (k, total) => {
          stepsDone++;
          progress(0.08 + (0.9 * (unit + (k + 1) / (total + 1))) / units, `denoise ${k + 1}/${total}`);
        },
      });
      loopMs += performance.now() - d0;
      loopModelMs += (hooks.clock?.modelMs ?? 0) - dm0;
      throwIfAborted(signal);

      progress(0.08 + (0.9 * (unit + 1 - 0.5 / (sampler.steps + 1))) / units, 'vae_decode');
      const decoded = await decodeLatents(models.vaeDecoder, latents, lh, lw);
      const resized = await resizeRaw(decoded, crop.width, crop.height);
      const full = new Uint8Array(working.data);
      for (let y = 0; y < crop.height; y++) {
        const src = y * crop.width * 3;
        full.set(resized.data.subarray(src, src + crop.width * 3), ((crop.y + y) * working.width + crop.x) * 3);
      }
      working = pasteBack(working, { data: full, width: working.width, height: working.height, channels: 3 }, pf.mask);
      throwIfAborted(signal);
    }
    images.push(working);
  }
  progress(1, 'done');

  const totalMs = performance.now() - t0;
  const modelMs = hooks.clock ? hooks.clock.modelMs - model0 : undefined;
  return {
    images,
    info: {
      seed: seed0,
      seeds,
      prompt: hooks.prompt,
      scheduler: params.scheduler,
      steps_requested: params.steps,
      steps_executed: executedPerFace,
      faces_in_base: baseFaces.length,
      faces_swapped: prepared.length,
      crops: prepared.map((p) => p.crop),
      timings_ms: {
        total: round(totalMs),
        ...(modelMs !== undefined
          ? {
              model: round(modelMs),
              overhead: round(totalMs - modelMs),
              loop_overhead_per_step: stepsDone > 0 ? round((loopMs - loopModelMs) / stepsDone, 3) : 0,
            }
          : {}),
      },
    },
  };
}

function round(v: number, digits = 1): number {
  const k = 10 ** digits;
  return Math.round(v * k) / k;
}

/** Crop, resize to generation size, binarise the mask, VAE-encode masked image (and image when strength < 1). */
async function prepareCrop(models: DiffusionModels, working: RawImage, pf: PreparedFace, strength: number): Promise<PreparedCrop> {
  const { crop } = pf;
  const gw = crop.genWidth;
  const gh = crop.genHeight;
  const img = await resizeRaw(cropRaw(working, crop.x, crop.y, crop.width, crop.height), gw, gh);
  const softCrop = cropRaw({ data: pf.mask, width: working.width, height: working.height, channels: 1 }, crop.x, crop.y, crop.width, crop.height);
  const bin = binarizeMask(await resizeMask(softCrop.data, softCrop.width, softCrop.height, gw, gh));
  const pixels = toSignedPixels(img);
  const masked = maskImage(pixels, bin);

  const withImage = strength < 1;
  const batchPixels = new Float32Array((withImage ? 2 : 1) * pixels.length);
  batchPixels.set(masked, 0);
  if (withImage) batchPixels.set(pixels, pixels.length);
  const lat = await encodeLatents(models.vaeEncoder, batchPixels, withImage ? 2 : 1, gh, gw);
  const per = LATENT_CHANNELS * (gh / 8) * (gw / 8);
  return {
    latentMask: latentMask(bin, gw, gh),
    maskedLatents: lat.slice(0, per),
    imageLatents: withImage ? lat.slice(per, 2 * per) : null,
  };
}
