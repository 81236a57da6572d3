/**
 * The landmark face swap: detect faces in both images, dense landmarks (468)
 * on each chosen face, piecewise-affine warp of the source face onto the base
 * face's landmarks (optionally pulled toward the source's own face shape),
 * colour transfer inside the mask, feathered mask, paste-back (DESIGN 5.8).
 */
import { JobError, throwIfAborted } from '../../../lib/errors.ts';
import type { RawImage } from '../../../lib/images/raw.ts';
import { applyAffine, estimateSimilarity } from '../../face/align.ts';
import { chooseFaces } from '../../face/detect.ts';
import { toRgb } from '../../face/image.ts';
import { FACE_OVAL } from '../../face/mesh.ts';
import { pasteBack } from '../../face/paste.ts';
import type { Face, FaceDetector, LandmarkModel, Point } from '../../face/types.ts';
import { featherMask, fillPolygon, roiOf, transferColour, triangulate, warpTriangles } from './warp.ts';

export interface SwapModels {
  detector: FaceDetector;
  mesh: LandmarkModel;
}

export interface SwapOptions {
  face_index?: number | undefined;
  source_face_index?: number | undefined;
  swap_all?: boolean | undefined;
  /** How far the inner landmarks move toward the source's own face shape (0: base shape, 1: source shape). Default 0.85. */
  shape_transfer?: number;
  /** Smallest usable face (shorter side of the detector box, in pixels). Default 32. */
  min_face_size?: number;
}

export type SwapStage = 'detect' | 'landmarks' | 'warp' | 'blend';

export interface SwapHooks {
  signal?: AbortSignal;
  progress?: (fraction: number, stage: SwapStage) => void;
}

export interface SwapResult {
  image: RawImage;
  /** Union of the paste-back masks (0..255, full resolution): pixels where it is 0 equal the base image. */
  mask: Uint8Array;
  baseFaces: Face[];
  sourceFaces: Face[];
  swapped: Face[];
  /** Milliseconds per stage. */
  timings: Record<SwapStage, number>;
}

const OVAL_SET = new Set(FACE_OVAL);

function checkSize(face: Face, min: number, role: string): void {
  const w = face.box[2] - face.box[0], h = face.box[3] - face.box[1];
  if (Math.min(w, h) < min) {
    throw new JobError('face_too_small', `The face in the ${role} image is ${Math.round(w)}x${Math.round(h)} px; at least ${min} px is needed`);
  }
}

/**
 * Target landmarks: the base face's contour stays where it is (so the blend
 * seam matches the base), inner points move `alpha` of the way toward the
 * source landmarks mapped into the base frame by a least-squares similarity.
 */
export function targetLandmarks(basePts: Point[], srcPts: Point[], alpha: number): Point[] {
  if (alpha <= 0) return basePts;
  const m = estimateSimilarity(srcPts, basePts);
  return basePts.map((b, i) => {
    if (OVAL_SET.has(i)) return b;
    const s = applyAffine(m, srcPts[i]!);
    return [b[0] + alpha * (s[0] - b[0]), b[1] + alpha * (s[1] - b[1])];
  });
}

export function createLandmarkSwapper(models: SwapModels) {
  async function swap(baseIn: RawImage, sourceIn: RawImage, opts: SwapOptions = {}, hooks: SwapHooks = {}): Promise<SwapResult> {
    const timings: Record<SwapStage, number> = { detect: 0, landmarks: 0, warp: 0, blend: 0 };
    const minFace = opts.min_face_size ?? 32;
    const alpha = opts.shape_transfer ?? 0.85;
    const base = toRgb(baseIn), source = toRgb(sourceIn);
    const { width, height } = base;
    let t = performance.now();
    const lap = (stage: SwapStage) => {
      const now = performance.now();
      timings[stage] += now - t;
      t = now;
    };

    hooks.progress?.(0, 'detect');
    const baseFaces = await models.detector.detect(base);
    throwIfAborted(hooks.signal);
    if (baseFaces.length === 0) throw new JobError('no_face_in_base', 'No face was found in the base image');
    const sourceFaces = await models.detector.detect(source);
    throwIfAborted(hooks.signal);
    if (sourceFaces.length === 0) throw new JobError('no_face_in_source', 'No face was found in the face (source) image');
    const targets = chooseFaces(baseFaces, { index: opts.face_index, all: opts.swap_all ?? false, role: 'The base image' });
    const [srcFace] = chooseFaces(sourceFaces, { index: opts.source_face_index, role: 'The face image' }) as [Face];
    checkSize(srcFace, minFace, 'face (source)');
    for (const f of targets) checkSize(f, minFace, 'base');
    lap('detect');

    hooks.progress?.(0.3, 'landmarks');
    const srcMesh = await models.mesh.landmarks(source, srcFace);
    throwIfAborted(hooks.signal);
    const baseMeshes = [];
    for (const f of targets) {
      baseMeshes.push(await models.mesh.landmarks(base, f));
      throwIfAborted(hooks.signal);
    }
    lap('landmarks');

    let image = base;
    const union = new Uint8Array(width * height);
    for (let k = 0; k < targets.length; k++) {
      hooks.progress?.(0.5 + (0.5 * k) / targets.length, 'warp');
      const basePts = baseMeshes[k]!.points;
      const dstPts = targetLandmarks(basePts, srcMesh.points, alpha);
      const tris = triangulate(dstPts);
      const faceW = targets[k]!.box[2] - targets[k]!.box[0];
      const roi = roiOf(dstPts, width, height, 2);
      const warped = new Uint8Array(width * height * 3);
      const cover = new Uint8Array(width * height);
      warpTriangles(source, srcMesh.points, dstPts, tris, warped, cover, width, height);
      // Hard mask: the base face contour, where the warp wrote pixels.
      const hard = new Uint8Array(width * height);
      fillPolygon(FACE_OVAL.map((i) => basePts[i]!), hard, width, roi);
      for (let y = roi.y0; y < roi.y1; y++) {
        for (let x = roi.x0; x < roi.x1; x++) {
          const i = y * width + x;
          if (cover[i] !== 255) hard[i] = 0;
        }
      }
      lap('warp');
      throwIfAborted(hooks.signal);

      hooks.progress?.(0.75 + (0.25 * k) / targets.length, 'blend');
      transferColour(warped, image, hard, width, roi);
      const feather = Math.max(2, Math.round(faceW * 0.04));
      const mask = featherMask(hard, width, height, roi, feather, feather * 0.6);
      image = pasteBack(image, { data: warped, width, height, channels: 3 }, mask);
      for (let y = roi.y0; y < roi.y1; y++) {
        for (let x = roi.x0; x < roi.x1; x++) {
          const i = y * width + x;
          if (mask[i]! > union[i]!) union[i] = mask[i]!;
        }
      }
      lap('blend');
      throwIfAborted(hooks.signal);
    }
    hooks.progress?.(1, 'blend');
    return { image, mask: union, baseFaces, sourceFaces, swapped: targets, timings };
  }
  return { swap };
}

export type LandmarkSwapper = ReturnType<typeof createLandmarkSwapper>;
