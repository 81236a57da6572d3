/**
 * IP-Adapter FaceID Plus v2 conditioning (DESIGN 5.5): CLIP ViT-H penultimate
 * features of the 224 aligned face, the projection of the identity embedding
 * refined by the resampler over those features, with the v2 shortcut
 * tokens = id_tokens + s_scale·resampler_tokens. The unconditional branch is
 * the projection of a zero embedding and of the CLIP features of an all-zero
 * normalised image; both branches run as one batch of two (uncond first).
 */
import * as ort from 'onnxruntime-node';
import type { RawImage } from '../../lib/images/raw.ts';
import { disposeAll, type OrtSession } from './session.ts';

export const CLIP_SIZE = 224;
export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];
export const ID_DIM = 512;
export const IP_TOKENS = 4;
export const IP_WIDTH = 2048;

/** CLIP pixel values of an aligned 224×224 RGB face: /255, then CLIP mean/std, planar. */
export function clipPixelValues(aligned: RawImage): Float32Array {
  if (aligned.width !== CLIP_SIZE || aligned.height !== CLIP_SIZE) {
    throw new Error(`clipPixelValues: expected a ${CLIP_SIZE}x${CLIP_SIZE} crop, got ${aligned.width}x${aligned.height}`);
  }
  const plane = CLIP_SIZE * CLIP_SIZE;
  const out = new Float32Array(3 * plane);
  const ch = aligned.channels;
  const src = aligned.data;
  for (let c = 0; c < 3; c++) {
    const m = CLIP_MEAN[c]!;
    const s = CLIP_STD[c]!;
    const sc = ch === 1 ? 0 : c;
    for (let i = 0; i < plane; i++) out[c * plane + i] = (src[i * ch + sc]! / 255 - m) / s;
  }
  return out;
}

export interface FaceIdModels {
  clipVision: OrtSession;
  projection: OrtSession;
}

/**
 * IP tokens [2,4,2048] (uncond first) for an identity embedding (512-d,
 * L2-normalised) and the aligned 224 face.
 */
export async function faceIdTokens(
  models: FaceIdModels,
  idEmbedding: Float32Array,
  aligned224: RawImage,
  shortcutScale: number,
): Promise<Float32Array> {
  if (idEmbedding.length !== ID_DIM) throw new Error(`faceIdTokens: embedding has ${idEmbedding.length} values, expected ${ID_DIM}`);
  const plane = 3 * CLIP_SIZE * CLIP_SIZE;
  const pixels = new Float32Array(2 * plane); // [zeros, face]
  pixels.set(clipPixelValues(aligned224), plane);
  const clipOut = await models.clipVision.run({
    pixel_values: new ort.Tensor('float32', pixels, [2, 3, CLIP_SIZE, CLIP_SIZE]),
  });
  const clipName = models.clipVision.outputNames[0]!;
  const clip = clipOut[clipName]!;
  const ids = new Float32Array(2 * ID_DIM);
  ids.set(idEmbedding, ID_DIM);
  const proj = await models.projection.run({
    id_embeds: new ort.Tensor('float32', ids, [2, ID_DIM]),
    clip_embeds: new ort.Tensor('float32', clip.data as Float32Array, clip.dims as number[]),
  });
  const idTokens = proj['id_tokens']!.data as Float32Array;
  const resampler = proj['resampler_tokens']!.data as Float32Array;
  const out = new Float32Array(2 * IP_TOKENS * IP_WIDTH);
  for (let i = 0; i < out.length; i++) out[i] = idTokens[i]! + shortcutScale * resampler[i]!;
  disposeAll(clipOut);
  disposeAll(proj);
  return out;
}
