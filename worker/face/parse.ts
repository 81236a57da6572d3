/**
 * Face parsing (DESIGN 5.4). A square crop around the detected face (with
 * margin) is warped to 512x512, parsed, and the labels are mapped back to full
 * image resolution with nearest neighbour; pixels outside the crop are 0
 * (background). BiSeNet gives the 19 CelebAMask-HQ classes; the PAN
 * skin/clothes/hair segmenter stands in where BiSeNet is absent, mapped onto
 * the same classes (skin -> 1, clothes -> 16, hair -> 17).
 */
import * as ort from 'onnxruntime-node';
import type { RawImage } from '../../lib/images/raw.ts';
import { invertAffine, warpAffine } from './align.ts';
import { toChwTensor, toRgb } from './image.ts';
import type { Affine, Face, FaceParse, FaceParser } from './types.ts';

export const PARSE_SIZE = 512;
const IMAGENET_MEAN: [number, number, number] = [0.485 * 255, 0.456 * 255, 0.406 * 255];
const IMAGENET_STD: [number, number, number] = [0.229 * 255, 0.224 * 255, 0.225 * 255];

export interface ParserOptions {
  /** Crop side relative to the larger side of the face box. Default 2 (hair and neck fit). */
  cropScale?: number;
}

/** Image -> 512 crop matrix: a square of side cropScale * max(box w, h) centred on the box. */
export function parseCropMatrix(face: Face, cropScale: number): Affine {
  const [x1, y1, x2, y2] = face.box;
  const side = Math.max(x2 - x1, y2 - y1) * cropScale;
  const k = PARSE_SIZE / side;
  const cx = (x1 + x2) / 2, cy = (y1 + y2) / 2;
  return [k, 0, PARSE_SIZE / 2 - k * cx, 0, k, PARSE_SIZE / 2 - k * cy];
}

/** Map 512x512 crop labels back to the image with nearest neighbour. */
export function labelsToImage(crop: Uint8Array, m: Affine, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const inv = invertAffine(m);
  // Image pixel (x, y) -> crop (k x + tx, k y + ty); only the crop's footprint needs visiting.
  const [ix0, , itx, , , ity] = inv;
  const x0 = Math.max(0, Math.floor(itx)), y0 = Math.max(0, Math.floor(ity));
  const x1 = Math.min(width, Math.ceil(ix0 * PARSE_SIZE + itx)), y1 = Math.min(height, Math.ceil(ix0 * PARSE_SIZE + ity));
  const [a, , tx, , d, ty] = m;
  for (let y = y0; y < y1; y++) {
    const cy = Math.floor(d * (y + 0.5) + ty);
    if (cy < 0 || cy >= PARSE_SIZE) continue;
    for (let x = x0; x < x1; x++) {
      const cx = Math.floor(a * (x + 0.5) + tx);
      if (cx < 0 || cx >= PARSE_SIZE) continue;
      out[y * width + x] = crop[cy * PARSE_SIZE + cx]!;
    }
  }
  return out;
}

function createCropParser(
  session: ort.InferenceSession,
  opts: ParserOptions,
  decode: (out: Float32Array, dims: readonly number[]) => Uint8Array,
): FaceParser {
  const inputName = session.inputNames[0]!;
  const outputName = session.outputNames[0]!;
  const cropScale = opts.cropScale ?? 2;
  return {
    async parse(image: RawImage, face: Face): Promise<FaceParse> {
      const rgb = toRgb(image);
      const m = parseCropMatrix(face, cropScale);
      const crop = warpAffine(rgb, m, PARSE_SIZE, PARSE_SIZE);
      const data = toChwTensor(crop, { mean: IMAGENET_MEAN, std: IMAGENET_STD });
      const input = new ort.Tensor('float32', data, [1, 3, PARSE_SIZE, PARSE_SIZE]);
      const out = await session.run({ [inputName]: input });
      const t = out[outputName]!;
      const labels = decode(t.data as Float32Array, t.dims);
      for (const x of Object.values(out)) x.dispose?.();
      return { labels: labelsToImage(labels, m, rgb.width, rgb.height), width: rgb.width, height: rgb.height };
    },
  };
}

/** BiSeNet: argmax over 19 class logits. */
export function createBisenetParser(session: ort.InferenceSession, opts: ParserOptions = {}): FaceParser {
  return createCropParser(session, opts, (out, dims) => {
    const classes = dims[1] ?? 19;
    const n = PARSE_SIZE * PARSE_SIZE;
    const labels = new Uint8Array(n);
    const best = out.slice(0, n);
    for (let c = 1; c < classes; c++) {
      const off = c * n;
      for (let i = 0; i < n; i++) {
        const v = out[off + i]!;
        if (v > best[i]!) {
          best[i] = v;
          labels[i] = c;
        }
      }
    }
    return labels;
  });
}

/** PAN skin/clothes/hair (sigmoid channels 0 skin, 1 clothes, 2 hair) as BiSeNet classes: skin 1, cloth 16, hair 17. */
export function createPanParser(session: ort.InferenceSession, opts: ParserOptions & { threshold?: number } = {}): FaceParser {
  const thr = opts.threshold ?? 0.5;
  return createCropParser(session, opts, (out) => {
    const n = PARSE_SIZE * PARSE_SIZE;
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const skin = out[i]!, cloth = out[n + i]!, hair = out[2 * n + i]!;
      const top = Math.max(skin, cloth, hair);
      if (top < thr) continue;
      labels[i] = top === skin ? 1 : top === hair ? 17 : 16;
    }
    return labels;
  });
}
