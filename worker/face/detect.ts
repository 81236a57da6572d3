/** Detector helpers shared by SCRFD and YuNet: letterboxing, NMS, choosing faces. */
import { JobError } from '../../lib/errors.ts';
import type { RawImage } from '../../lib/images/raw.ts';
import { resizeRaw, toRgb } from './image.ts';
import type { Face } from './types.ts';

export interface DetectorOptions {
  /** Longer side of the detector input (DESIGN 5.1: 640). */
  inputSize?: number;
  /** Minimum score to keep a face. */
  threshold?: number;
  /** IoU threshold of the greedy NMS. */
  nmsIou?: number;
}

/** Scale the longer side to `size`, keeping aspect (insightface rounding); returns the resized RGB image and det_scale. */
export async function letterbox(image: RawImage, size: number): Promise<{ resized: RawImage; scale: number }> {
  const rgb = toRgb(image);
  const ratio = rgb.height / rgb.width;
  let nw: number, nh: number;
  if (ratio > 1) {
    nh = size;
    nw = Math.max(1, Math.floor(nh / ratio));
  } else {
    nw = size;
    nh = Math.max(1, Math.floor(nw * ratio));
  }
  const resized = await resizeRaw(rgb, nw, nh);
  return { resized, scale: nh / rgb.height };
}

/** Greedy NMS by descending score; areas as (x2 - x1 + 1)(y2 - y1 + 1) as in insightface. */
export function nms(faces: Face[], iou: number): Face[] {
  const sorted = [...faces].sort((a, b) => b.score - a.score);
  const keep: Face[] = [];
  const area = (f: Face) => (f.box[2] - f.box[0] + 1) * (f.box[3] - f.box[1] + 1);
  for (const f of sorted) {
    let ok = true;
    for (const k of keep) {
      const xx1 = Math.max(f.box[0], k.box[0]), yy1 = Math.max(f.box[1], k.box[1]);
      const xx2 = Math.min(f.box[2], k.box[2]), yy2 = Math.min(f.box[3], k.box[3]);
      const inter = Math.max(0, xx2 - xx1 + 1) * Math.max(0, yy2 - yy1 + 1);
      if (inter / (area(f) + area(k) - inter) > iou) {
        ok = false;
        break;
      }
    }
    if (ok) keep.push(f);
  }
  return keep;
}

export function boxArea(face: Face): number {
  return Math.max(0, face.box[2] - face.box[0]) * Math.max(0, face.box[3] - face.box[1]);
}

/** Faces ordered left to right by box centre (the order `face_index` counts in). */
export function leftToRight(faces: Face[]): Face[] {
  return [...faces].sort((a, b) => a.box[0] + a.box[2] - (b.box[0] + b.box[2]));
}

/**
 * Pick the faces to use: `all` -> every face, left to right; `index` -> that
 * face counting left to right (JobError face_index_out_of_range when there is
 * no such face); neither -> the largest face. No faces -> [].
 */
export function chooseFaces(faces: Face[], opts: { index?: number; all?: boolean; role?: string } = {}): Face[] {
  if (faces.length === 0) return [];
  if (opts.all) return leftToRight(faces);
  if (opts.index !== undefined) {
    const ordered = leftToRight(faces);
    const face = ordered[opts.index];
    if (!face) {
      throw new JobError(
        'face_index_out_of_range',
        `${opts.role ?? 'The image'} has ${faces.length} face${faces.length === 1 ? '' : 's'}; index ${opts.index} is out of range (0-${faces.length - 1}, left to right)`,
      );
    }
    return [face];
  }
  return [faces.reduce((best, f) => (boxArea(f) > boxArea(best) ? f : best))];
}
