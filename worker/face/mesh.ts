/**
 * Dense landmarks: the MediaPipe 468-point face mesh. The model expects a
 * 192x192 RGB crop, square, centred on the face, rotated so the eyes are level,
 * about 1.5x the face box; it returns (x, y, z) per point in crop pixels and a
 * face-presence logit. We crop from the detector's box and eye keypoints, run
 * once, re-crop from the first landmarks (as MediaPipe's tracking does) and run
 * again, then map the points back to image coordinates.
 */
import * as ort from 'onnxruntime-node';
import type { RawImage } from '../../lib/images/raw.ts';
import { applyAffine, invertAffine, warpAffine } from './align.ts';
import { toChwTensor, toRgb } from './image.ts';
import type { Affine, DenseLandmarks, Face, LandmarkModel, Point } from './types.ts';

export const MESH_SIZE = 192;
export const MESH_POINTS = 468;

/** Useful face-mesh indices (image-left / image-right as seen in a frontal photo). */
export const MESH_INDEX = {
  leftEyeOuter: 33,
  leftEyeInner: 133,
  rightEyeInner: 362,
  rightEyeOuter: 263,
  noseTip: 1,
  mouthLeft: 61,
  mouthRight: 291,
} as const;

/** The face-oval contour of the mesh, in order (MediaPipe FACEMESH_FACE_OVAL). */
export const FACE_OVAL = [
  10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136,
  172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
];

export interface MeshOptions {
  /** Crop size relative to the face box (first pass) and to the landmarks' extent (second pass). Default 1.5. */
  scale?: number;
  /** Run a second pass on a crop taken from the first pass's landmarks. Default true. */
  refine?: boolean;
}

function cropMatrix(center: Point, size: number, angle: number): Affine {
  const k = MESH_SIZE / size;
  const c = Math.cos(-angle) * k, s = Math.sin(-angle) * k;
  const half = MESH_SIZE / 2;
  return [c, -s, half - (c * center[0] - s * center[1]), s, c, half - (s * center[0] + c * center[1])];
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

export function createFaceMesh(session: ort.InferenceSession, opts: MeshOptions = {}): LandmarkModel {
  const inputName = session.inputNames[0]!;
  const [meshName, scoreName] = session.outputNames as [string, string];
  const scale = opts.scale ?? 1.5;

  async function runCrop(rgb: RawImage, m: Affine): Promise<DenseLandmarks> {
    const crop = warpAffine(rgb, m, MESH_SIZE, MESH_SIZE);
    const data = toChwTensor(crop, { mean: 0, std: 255 });
    const input = new ort.Tensor('float32', data, [1, 3, MESH_SIZE, MESH_SIZE]);
    const out = await session.run({ [inputName]: input });
    const raw = out[meshName]!.data as Float32Array;
    const score = sigmoid((out[scoreName]!.data as Float32Array)[0]!);
    for (const t of Object.values(out)) t.dispose?.();
    const inv = invertAffine(m);
    const points: Point[] = new Array(MESH_POINTS);
    for (let i = 0; i < MESH_POINTS; i++) points[i] = applyAffine(inv, [raw[i * 3]!, raw[i * 3 + 1]!]);
    return { points, score };
  }

  return {
    async landmarks(image: RawImage, face: Face): Promise<DenseLandmarks> {
      const rgb = toRgb(image);
      const [x1, y1, x2, y2] = face.box;
      const [le, re] = face.kps as [Point, Point];
      const angle = Math.atan2(re[1] - le[1], re[0] - le[0]);
      let result = await runCrop(rgb, cropMatrix([(x1 + x2) / 2, (y1 + y2) / 2], Math.max(x2 - x1, y2 - y1) * scale, angle));
      if (opts.refine ?? true) {
        const p = result.points;
        const a = p[MESH_INDEX.leftEyeOuter]!, b = p[MESH_INDEX.rightEyeOuter]!;
        const ang = Math.atan2(b[1] - a[1], b[0] - a[0]);
        // Extent of the landmarks in the rotated frame.
        const c = Math.cos(-ang), s = Math.sin(-ang);
        let minU = Infinity, maxU = -Infinity, minV = Infinity, maxV = -Infinity;
        for (const [x, y] of p) {
          const u = c * x - s * y, v = s * x + c * y;
          if (u < minU) minU = u;
          if (u > maxU) maxU = u;
          if (v < minV) minV = v;
          if (v > maxV) maxV = v;
        }
        const cu = (minU + maxU) / 2, cv = (minV + maxV) / 2;
        // Back to image coordinates (rotate by +ang).
        const center: Point = [Math.cos(ang) * cu - Math.sin(ang) * cv, Math.sin(ang) * cu + Math.cos(ang) * cv];
        result = await runCrop(rgb, cropMatrix(center, Math.max(maxU - minU, maxV - minV) * scale, ang));
      }
      return result;
    },
  };
}
