/** SCRFD face detector (insightface det_* models), exactly as DESIGN 5.1. */
import * as ort from 'onnxruntime-node';
import type { RawImage } from '../../lib/images/raw.ts';
import { letterbox, nms, type DetectorOptions } from './detect.ts';
import { toChwTensor } from './image.ts';
import type { Face, FaceDetector, Point } from './types.ts';

const STRIDES = [8, 16, 32] as const;
const ANCHORS_PER_LOCATION = 2;

export function createScrfdDetector(session: ort.InferenceSession, opts: DetectorOptions = {}): FaceDetector {
  const size = opts.inputSize ?? 640;
  const threshold = opts.threshold ?? 0.5;
  const iou = opts.nmsIou ?? 0.4;
  const inputName = session.inputNames[0]!;
  const outputNames = session.outputNames;
  if (outputNames.length < 9) throw new Error(`SCRFD model has ${outputNames.length} outputs, expected 9`);

  return {
    async detect(image: RawImage): Promise<Face[]> {
      const { resized, scale } = await letterbox(image, size);
      // Black canvas, image at the top-left; (x - 127.5) / 128, RGB.
      const data = toChwTensor(resized, { mean: 127.5, std: 128, width: size, height: size, pad: 0 });
      const input = new ort.Tensor('float32', data, [1, 3, size, size]);
      const out = await session.run({ [inputName]: input });
      input.dispose?.();
      const faces: Face[] = [];
      STRIDES.forEach((stride, i) => {
        const scores = out[outputNames[i]!]!.data as Float32Array;
        const boxes = out[outputNames[i + 3]!]!.data as Float32Array;
        const kps = out[outputNames[i + 6]!]!.data as Float32Array;
        const fw = Math.ceil(size / stride);
        for (let a = 0; a < scores.length; a++) {
          const score = scores[a]!;
          if (!(score >= threshold)) continue;
          const loc = Math.floor(a / ANCHORS_PER_LOCATION);
          const cx = (loc % fw) * stride;
          const cy = Math.floor(loc / fw) * stride;
          const b = a * 4;
          const box: Face['box'] = [
            (cx - boxes[b]! * stride) / scale,
            (cy - boxes[b + 1]! * stride) / scale,
            (cx + boxes[b + 2]! * stride) / scale,
            (cy + boxes[b + 3]! * stride) / scale,
          ];
          const points: Point[] = [];
          for (let j = 0; j < 5; j++) {
            points.push([(cx + kps[a * 10 + 2 * j]! * stride) / scale, (cy + kps[a * 10 + 2 * j + 1]! * stride) / scale]);
          }
          faces.push({ box, score, kps: points });
        }
      });
      for (const t of Object.values(out)) t.dispose?.();
      return nms(faces, iou);
    },
  };
}
