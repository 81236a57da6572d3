/**
 * Types shared by the face-analysis stages (detection, alignment, recognition,
 * dense landmarks, parsing, paste-back) and by the engines that use them.
 */
import type { RawImage } from '../../lib/images/raw.ts';

export type { RawImage };

/** A point in image pixel coordinates: [x, y]. */
export type Point = [number, number];

/** A detected face. */
export interface Face {
  /** [x1, y1, x2, y2] in image pixels. */
  box: [number, number, number, number];
  /** Detector confidence in [0, 1]. */
  score: number;
  /** 5 points: left eye, right eye (as seen in the image), nose, left mouth corner, right mouth corner. */
  kps: Point[];
}

/** A 2x3 affine matrix, row-major: [a, b, tx, c, d, ty]; x' = a x + b y + tx, y' = c x + d y + ty. */
export type Affine = [number, number, number, number, number, number];

export interface FaceDetector {
  /** Faces sorted by descending score. */
  detect(image: RawImage): Promise<Face[]>;
}

export interface FaceRecognizer {
  /** Identity embedding of an aligned face crop (inputSize x inputSize, RGB), L2-normalised. */
  embed(aligned: RawImage): Promise<Float32Array>;
  readonly inputSize: number;
}

/** Per-pixel class labels at full image resolution (BiSeNet / CelebAMask-HQ classes, DESIGN 5.4). */
export interface FaceParse {
  labels: Uint8Array;
  width: number;
  height: number;
}

export interface FaceParser {
  parse(image: RawImage, face: Face): Promise<FaceParse>;
}

/** Mask post-processing options (DESIGN 5.4; same names and defaults as the job parameters). */
export interface FaceMaskOptions {
  include_hair: boolean;
  include_neck: boolean;
  mask_expand: number;
  mask_blur: number;
  mask_padding: number;
}

/** Dense landmarks (MediaPipe face mesh: 468 points) in image coordinates. */
export interface DenseLandmarks {
  points: Point[];
  /** Face presence confidence reported by the model, in [0, 1]. */
  score: number;
}

export interface LandmarkModel {
  landmarks(image: RawImage, face: Face): Promise<DenseLandmarks>;
}
