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
export { boxArea, chooseFaces, leftToRight, letterbox, nms } from './detect.ts';
export type { DetectorOptions } from './detect.ts';
export { createScrfdDetector } from './scrfd.ts';
export { createYunetDetector, YUNET_DEFAULT_THRESHOLD } from './yunet.ts';
export { cosineSimilarity, createRecognizer, embedFace, l2normalize } from './recognize.ts';
export type { RecognizerOptions } from './recognize.ts';
export { createFaceMesh, FACE_OVAL, MESH_INDEX, MESH_POINTS, MESH_SIZE } from './mesh.ts';
export { cropRaw, resizeRaw, toChwTensor, toRgb } from './image.ts';
export {
  ARCFACE_512_CONTRACT,
  BISENET_CONTRACT,
  FACE_MESH_CONTRACT,
  PAN_SEG_CONTRACT,
  RECOGNIZER_CONTRACT,
  SCRFD_CONTRACT,
  YUNET_CONTRACT,
} from './contracts.ts';
export { pasteBack } from './paste.ts';
export {
  buildFaceMask,
  DEFAULT_MASK_OPTIONS,
  FACE_CLASSES,
  FACE_MASK_CLASSES,
  fillHoles,
  gaussianBlurMask,
  maskClasses,
  morphDisk,
  morphSquare,
} from './mask.ts';
export { createBisenetParser, createPanParser, labelsToImage, PARSE_SIZE, parseCropMatrix } from './parse.ts';
export type { ParserOptions } from './parse.ts';
