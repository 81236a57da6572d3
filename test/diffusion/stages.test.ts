import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alignFace, estimateSimilarity, arcfaceTemplate } from '../../worker/face/align.ts';
import { binarizeMask, createUnetSample, latentMask, maskImage, resizeMask } from '../../worker/diffusion/inpaint.ts';
import { maskBounds, planCrop } from '../../worker/diffusion/crop.ts';
import { denoise } from '../../worker/diffusion/denoise.ts';
import { createSampler } from '../../worker/diffusion/schedulers.ts';
import { clipPixelValues, faceIdTokens, CLIP_MEAN, CLIP_STD } from '../../worker/diffusion/faceid.ts';
import { encodeForGuidance } from '../../worker/diffusion/text.ts';
import { loadClipTokenizer } from '../../worker/diffusion/tokenizer.ts';
import { decodeLatents, encodeLatents, toSignedPixels, VAE_SCALE } from '../../worker/diffusion/vae.ts';
import { DIFFUSION_FILES, TOKENIZER_DIR } from '../../worker/diffusion/models.ts';
import type { SchedulerName } from '../../lib/jobs/params.ts';
import type { RawImage } from '../../lib/images/raw.ts';
import { standinDir } from './helpers.ts';

let dir: string;
const sessions: Record<string, ort.InferenceSession> = {};
const load = async (role: keyof typeof DIFFUSION_FILES) =>
  (sessions[role] ??= await ort.InferenceSession.create(path.join(dir, DIFFUSION_FILES[role])));

beforeAll(async () => {
  dir = await standinDir();
});
afterAll(async () => {
  for (const s of Object.values(sessions)) await s.release();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('alignment for the CLIP branch (DESIGN 5.2 vector, size 224)', () => {
  it('matches the reference matrix', () => {
    const kps: [number, number][] = [[412.3, 301.7], [498.6, 296.2], [455.1, 350.4], [420.8, 398.9], [492.0, 394.5]];
    const m = estimateSimilarity(kps, arcfaceTemplate(224));
    const ref = [0.825115, -0.02065, -256.808865, 0.02065, 0.825115, -153.030548];
    m.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThan(1e-5));
    const crop = alignFace({ data: new Uint8Array(600 * 600 * 3).fill(200), width: 600, height: 600, channels: 3 }, kps, 224);
    expect([crop.image.width, crop.image.height]).toEqual([224, 224]);
  });
  it('CLIP pixel values: /255 then CLIP mean/std, planar', () => {
    const img: RawImage = { data: new Uint8Array(224 * 224 * 3), width: 224, height: 224, channels: 3 };
    img.data.set([255, 0, 51], 0);
    const px = clipPixelValues(img);
    expect(px[0]).toBeCloseTo((1 - CLIP_MEAN[0]) / CLIP_STD[0], 5);
    expect(px[224 * 224]).toBeCloseTo((0 - CLIP_MEAN[1]) / CLIP_STD[1], 5);
    expect(px[2 * 224 * 224]).toBeCloseTo((0.2 - CLIP_MEAN[2]) / CLIP_STD[2], 5);
  });
});

/** A painted test image: soft disc mask (a linear ramp from 255 at r ≤ 40 to 0 at r = 60) centred at (100, 90) on 200×184. */
function paintedMask(): { mask: Uint8Array; w: number; h: number } {
  const w = 200, h = 184;
  const mask = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const r = Math.hypot(x - 100, y - 90);
      mask[y * w + x] = Math.round(255 * Math.min(1, Math.max(0, (60 - r) / 20)));
    }
  }
  return { mask, w, h };
}

describe('mask at generation size (DESIGN 5.6)', () => {
  it('binarises at 0.5: 127 → 0, 128 → 1', () => {
    expect([...binarizeMask(new Uint8Array([0, 127, 128, 255]))]).toEqual([0, 0, 1, 1]);
  });
  it('painted mask: bounds, binarised radius 50, latent mask by nearest (pixel 8y, 8x)', async () => {
    const { mask, w, h } = paintedMask();
    expect(maskBounds(mask, w, h)).toEqual([41, 31, 160, 150]);
    expect(maskBounds(new Uint8Array(w * h), w, h)).toBeNull();
    const bin = binarizeMask(mask);
    // binarised disc: r ≤ 50 (value 127.5 at r = 50)
    expect(bin[90 * w + 100 + 49]).toBe(1);
    expect(bin[90 * w + 100 + 51]).toBe(0);
    const lm = latentMask(bin, w, h);
    expect(lm).toHaveLength(25 * 23);
    expect(lm.some((v) => v === 1) && lm.some((v) => v === 0)).toBe(true);
    for (let y = 0; y < 23; y++) for (let x = 0; x < 25; x++) expect(lm[y * 25 + x]).toBe(bin[y * 8 * w + x * 8]);
    // resized to a generation size, the mask stays a disc of the same relative size
    const gen = await resizeMask(mask, w, h, 400, 368);
    expect(gen).toHaveLength(400 * 368);
    const binGen = binarizeMask(gen);
    let area = 0;
    for (const v of binGen) area += v;
    expect(area / (Math.PI * 100 * 100)).toBeGreaterThan(0.97);
    expect(area / (Math.PI * 100 * 100)).toBeLessThan(1.03);
  });
  it('masked image = image·(mask < 0.5) in [−1, 1]', () => {
    const img: RawImage = { data: new Uint8Array([255, 0, 0, 0, 255, 0]), width: 2, height: 1, channels: 3 };
    const px = toSignedPixels(img);
    expect([...px]).toEqual([1, -1, -1, 1, -1, -1]);
    expect([...maskImage(px, new Uint8Array([1, 0]))]).toEqual([0, -1, 0, 1, 0, -1]);
  });
  it('9-channel UNet input: scaled latents [4], mask [1], masked-image latents [4], per batch entry', () => {
    const s = createUnetSample(2, new Float32Array([1]), new Float32Array([5, 6, 7, 8]));
    s.setLatents(new Float32Array([1, 2, 3, 4]), 0.5);
    expect([...s.data]).toEqual([0.5, 1, 1.5, 2, 1, 5, 6, 7, 8, 0.5, 1, 1.5, 2, 1, 5, 6, 7, 8]);
  });
});

describe('crop around the face', () => {
  it('keeps the face and mask inside a square near 1024² generation size', () => {
    const p = planCrop(2000, 1500, [900, 600, 1100, 850], [880, 560, 1130, 900]);
    expect(p.width).toBe(p.height);
    expect(p.x).toBeLessThanOrEqual(880 - 16);
    expect(p.x + p.width).toBeGreaterThanOrEqual(1130 + 16);
    expect(p.y + p.height).toBeGreaterThanOrEqual(900 + 16);
    expect([p.genWidth, p.genHeight]).toEqual([1024, 1024]);
  });
  it('clamps to the image and keeps the area for other aspect ratios', () => {
    const p = planCrop(400, 300, [100, 50, 300, 280], null);
    expect(p.x).toBeGreaterThanOrEqual(0);
    expect(p.y).toBe(0);
    expect(p.x + p.width).toBeLessThanOrEqual(400);
    expect(p.height).toBe(300);
    expect(p.genWidth % 64).toBe(0);
    expect(p.genHeight % 64).toBe(0);
    expect(p.genWidth).toBeGreaterThan(p.genHeight);
  });
});

describe('model stages on stand-in sessions (real onnxruntime)', () => {
  it('VAE: scaling 0.13025, encoder mean only, decode clamps to bytes', async () => {
    const enc = await load('vae_encoder');
    const dec = await load('vae_decoder');
    const img: RawImage = { data: new Uint8Array(16 * 16 * 3).fill(191), width: 16, height: 16, channels: 3 };
    const lat = await encodeLatents(enc, toSignedPixels(img), 1, 16, 16);
    expect(lat).toHaveLength(4 * 2 * 2);
    expect(lat[0]).toBeCloseTo((191 / 127.5 - 1) * VAE_SCALE, 5);
    const back = await decodeLatents(dec, lat, 2, 2);
    expect([back.width, back.height]).toEqual([16, 16]);
    expect(back.data[0]).toBe(191);
    const hot = await decodeLatents(dec, new Float32Array(16).fill(10), 2, 2);
    expect(hot.data[0]).toBe(255);
  });
  it('text: [uncond, cond]; an empty negative prompt is all zeros', async () => {
    const tokenizer = await loadClipTokenizer(path.join(dir, TOKENIZER_DIR));
    const enc = { tokenizer, encoderL: await load('text_encoder_l'), encoderG: await load('text_encoder_g') };
    const t = await encodeForGuidance(enc, 'a photo of a cat', '');
    expect(t.batch).toBe(2);
    expect(t.hidden).toHaveLength(2 * 77 * 2048);
    expect(t.hidden.subarray(0, 77 * 2048).every((v) => v === 0)).toBe(true);
    expect(t.pooled.subarray(0, 1280).every((v) => v === 0)).toBe(true);
    expect(t.hidden.subarray(77 * 2048).some((v) => v !== 0)).toBe(true);
    const t2 = await encodeForGuidance(enc, 'a photo of a cat', 'blurry');
    expect(t2.hidden.subarray(0, 77 * 2048).some((v) => v !== 0)).toBe(true);
    expect([...t2.hidden.subarray(77 * 2048)]).toEqual([...t.hidden.subarray(77 * 2048)]);
  });
  it('FaceID tokens: shortcut adds s_scale·resampler tokens; uncond uses a zero embedding', async () => {
    const models = { clipVision: await load('clip_vision'), projection: await load('faceid_projection') };
    const emb = new Float32Array(512).fill(1 / Math.sqrt(512));
    const face: RawImage = { data: new Uint8Array(224 * 224 * 3).fill(90), width: 224, height: 224, channels: 3 };
    const a = await faceIdTokens(models, emb, face, 0);
    const b = await faceIdTokens(models, emb, face, 1);
    const c = await faceIdTokens(models, emb, face, 2);
    expect(a).toHaveLength(2 * 4 * 2048);
    // the uncond id tokens of a zero embedding through the (bias-free) stand-in are 0
    expect(a.subarray(0, 8192).every((v) => v === 0)).toBe(true);
    for (const i of [8192, 9000, 16000]) expect(c[i]! - b[i]!).toBeCloseTo(b[i]! - a[i]!, 5);
    expect(b.subarray(8192).some((v, i) => v !== a[8192 + i])).toBe(true);
  });
});

/** The UNet loop over a single latent pixel (4 channels), guidance 4 as a batch of two, 30 steps. */
function oneLatentLoop(unet: Awaited<ReturnType<typeof load>>, sampler: ReturnType<typeof createSampler>, latents: Float32Array, ipScale: number) {
  return {
    unet,
    sampler,
    latents,
    mask: new Float32Array([1]),
    maskedLatents: new Float32Array(4),
    latentHeight: 1,
    latentWidth: 1,
    text: { hidden: new Float32Array(2 * 77 * 2048), pooled: new Float32Array(2 * 1280), batch: 2 },
    timeIds: [8, 8, 0, 0, 8, 8],
    ipTokens: new Float32Array(2 * 4 * 2048),
    ipScales: new Array(30).fill(ipScale),
    guidance: 4,
  };
}

describe('loop check through the stand-in UNet (ε̂ = 0.5·x_in + 0.1, guidance 4, batch of two)', () => {
  const ends: Record<string, number> = { euler: 2.047181, dpmpp_2m_karras: 2.226294, ddim: 2.079733 };
  for (const [name, end] of Object.entries(ends)) {
    it(`${name} ends at ${end}`, async () => {
      const unet = await load('unet');
      const sampler = createSampler(name as SchedulerName, { steps: 30 });
      const x = new Float32Array(4).fill(sampler.initNoiseSigma);
      const steps: string[] = [];
      await denoise({
        ...oneLatentLoop(unet, sampler, x, 0.85),
        onStep: (k, n) => steps.push(`${k + 1}/${n}`),
      });
      for (const v of x) expect(v).toBeCloseTo(end, 4);
      expect(steps).toHaveLength(30);
      expect(steps.at(-1)).toBe('30/30');
    });
  }
  it('stops between steps when the signal fires', async () => {
    const unet = await load('unet');
    const ac = new AbortController();
    let done = 0;
    const run = denoise({
      ...oneLatentLoop(unet, createSampler('euler', { steps: 30 }), new Float32Array(4).fill(1), 1),
      signal: ac.signal,
      onStep: (k) => {
        done = k + 1;
        if (k === 4) ac.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'canceled' });
    expect(done).toBe(5);
  });
});
