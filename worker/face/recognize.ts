/** ArcFace-style identity embedding (DESIGN 5.3): aligned 112x112 RGB, (x - 127.5) / 127.5, L2-normalised output. */
import * as ort from 'onnxruntime-node';
import type { RawImage } from '../../lib/images/raw.ts';
import { alignFace } from './align.ts';
import { resizeRaw, toChwTensor, toRgb } from './image.ts';
import type { Face, FaceRecognizer } from './types.ts';

export interface RecognizerOptions {
  /** Feed BGR instead of RGB (some third-party exports). Default false. */
  bgr?: boolean;
  mean?: number;
  std?: number;
}

export function l2normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.sqrt(s);
  const out = new Float32Array(v.length);
  if (n > 0) for (let i = 0; i < v.length; i++) out[i] = v[i]! / n;
  return out;
}

/** Cosine similarity of two embeddings (dot product when both are L2-normalised). */
export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb || 1);
}

export function createRecognizer(session: ort.InferenceSession, opts: RecognizerOptions = {}): FaceRecognizer {
  const inputName = session.inputNames[0]!;
  const outputName = session.outputNames[0]!;
  const meta = session.inputMetadata[0];
  const shape = meta && meta.isTensor ? meta.shape : [];
  const inputSize = typeof shape[3] === 'number' && shape[3] > 0 ? shape[3] : 112;
  return {
    inputSize,
    async embed(aligned: RawImage): Promise<Float32Array> {
      let img = toRgb(aligned);
      if (img.width !== inputSize || img.height !== inputSize) img = await resizeRaw(img, inputSize, inputSize);
      const data = toChwTensor(img, { mean: opts.mean ?? 127.5, std: opts.std ?? 127.5, bgr: opts.bgr ?? false });
      const input = new ort.Tensor('float32', data, [1, 3, inputSize, inputSize]);
      const out = await session.run({ [inputName]: input });
      const emb = l2normalize(out[outputName]!.data as Float32Array);
      for (const t of Object.values(out)) t.dispose?.();
      return emb;
    },
  };
}

/** Align a detected face to the recognizer's template and embed it. */
export async function embedFace(recognizer: FaceRecognizer, image: RawImage, face: Face): Promise<Float32Array> {
  return recognizer.embed(alignFace(toRgb(image), face.kps, recognizer.inputSize).image);
}
