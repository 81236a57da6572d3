/**
 * The UNet loop (DESIGN 5.6-5.7): classifier-free guidance as one batch of two
 * [uncond, cond], the IP-Adapter scale per step (face_strength, 0 after
 * stop_at), the abort signal checked before every step, and a progress call
 * after each. Buffers and the constant feeds are built once per image; only the
 * latent channels, the timestep and the IP scale change between steps.
 */
import * as ort from 'onnxruntime-node';
import { throwIfAborted } from '../../lib/errors.ts';
import { applyGuidance, usesGuidance } from './guidance.ts';
import { createUnetSample } from './inpaint.ts';
import type { Sampler } from './schedulers.ts';
import { disposeAll, type OrtSession } from './session.ts';
import { TEXT_WIDTH, WIDTH_G, type TextConditioning } from './text.ts';
import { IP_TOKENS, IP_WIDTH } from './faceid.ts';

export interface DenoiseInputs {
  unet: OrtSession;
  sampler: Sampler;
  /** Start latents [1,4,h,w]; updated in place, holds the result at the end. */
  latents: Float32Array;
  /** Latent mask [h·w] (0/1). */
  mask: Float32Array;
  /** Masked-image latents [4,h,w] (scaled). */
  maskedLatents: Float32Array;
  latentHeight: number;
  latentWidth: number;
  /** Text conditioning with batch 2, [uncond, cond]. */
  text: TextConditioning;
  /** [orig_h, orig_w, crop_top, crop_left, target_h, target_w]. */
  timeIds: number[];
  /** IP tokens [2,4,2048], uncond first. */
  ipTokens: Float32Array;
  /** IP scale of each executed step (ipScaleSchedule). */
  ipScales: number[];
  guidance: number;
  signal?: AbortSignal;
  /** Called after step k (0-based) of `total`. */
  onStep?(k: number, total: number): void;
}

/** The cond row of a [2, ...] buffer (a copy) for a batch of one, or the whole buffer for a batch of two. */
function pick(data: Float32Array, per: number, batch: number): Float32Array {
  return batch === 2 ? data : data.slice(per, 2 * per);
}

export async function denoise(inp: DenoiseInputs): Promise<Float32Array> {
  const { sampler, latents: x } = inp;
  const batch = usesGuidance(inp.guidance) ? 2 : 1;
  const h = inp.latentHeight;
  const w = inp.latentWidth;
  const n = 4 * h * w;
  if (x.length !== n) throw new Error(`denoise: latents have ${x.length} values, expected ${n}`);
  if (inp.text.batch !== 2) throw new Error('denoise: text conditioning must be [uncond, cond]');
  if (inp.ipScales.length < sampler.steps) throw new Error('denoise: one IP scale per step is needed');

  const sample = createUnetSample(batch, inp.mask, inp.maskedLatents);
  const tokens = 77 * TEXT_WIDTH;
  const timeIds = new Float32Array(batch * 6);
  for (let b = 0; b < batch; b++) timeIds.set(inp.timeIds, b * 6);
  const fixed = {
    encoder_hidden_states: new ort.Tensor('float32', pick(inp.text.hidden, tokens, batch), [batch, 77, TEXT_WIDTH]),
    text_embeds: new ort.Tensor('float32', pick(inp.text.pooled, WIDTH_G, batch), [batch, WIDTH_G]),
    time_ids: new ort.Tensor('float32', timeIds, [batch, 6]),
    ip_tokens: new ort.Tensor('float32', pick(inp.ipTokens, IP_TOKENS * IP_WIDTH, batch), [batch, IP_TOKENS, IP_WIDTH]),
  };
  const sampleTensor = new ort.Tensor('float32', sample.data, [batch, 9, h, w]);
  const timestep = new Float32Array(1);
  const ipScale = new Float32Array(1);
  const timestepTensor = new ort.Tensor('float32', timestep, [1]);
  const ipScaleTensor = new ort.Tensor('float32', ipScale, [1]);
  const eps = new Float32Array(n);

  for (let k = 0; k < sampler.steps; k++) {
    throwIfAborted(inp.signal);
    sample.setLatents(x, sampler.inputScale(k));
    timestep[0] = sampler.timestep(k);
    ipScale[0] = inp.ipScales[k]!;
    const out = await inp.unet.run({ ...fixed, sample: sampleTensor, timestep: timestepTensor, ip_scale: ipScaleTensor });
    const pred = out['out_sample']!.data as Float32Array;
    applyGuidance(pred, n, inp.guidance, eps);
    disposeAll(out);
    sampler.step(k, x, eps);
    inp.onStep?.(k, sampler.steps);
  }
  return x;
}
