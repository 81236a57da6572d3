/** Public API of the face-analysis stages. */
export type {
  Affine,
  DenseLandmarks,
  Face,
  FaceDetector,
  FaceMaskOptions,
  FaceParse,
  FaceParser,
  FaceRecognizer,
  LandmarkModel,
  Point,
  RawImage,
} from './types.ts';
export { alignFace, applyAffine, arcfaceTemplate, composeAffine, estimateSimilarity, invertAffine, warpAffine } from './align.ts';
