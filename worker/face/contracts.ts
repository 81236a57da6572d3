/** Input/output contracts of the face-analysis roles (DESIGN 6). */
import type { ModelContract } from '../onnx/contract.ts';

const scrfdOut = (k: number) => ({ shape: [['A', k], [1, 'A', k]] });

/** SCRFD (insightface det_*): 9 outputs by position (scores, boxes, keypoints for strides 8, 16, 32), with or without a batch dimension. */
export const SCRFD_CONTRACT: ModelContract = {
  role: 'detector (SCRFD)',
  inputs: [{ name: 'input.1', shape: [1, 3, 'H', 'W'], type: 'float32' }],
  outputs: [scrfdOut(1), scrfdOut(1), scrfdOut(1), scrfdOut(4), scrfdOut(4), scrfdOut(4), scrfdOut(10), scrfdOut(10), scrfdOut(10)],
};

/** YuNet (libfacedetection.train, dynamic export): cls/obj/bbox/kps per stride 8, 16, 32. */
export const YUNET_CONTRACT: ModelContract = {
  role: 'detector (YuNet)',
  inputs: [{ name: 'input', shape: ['N', 3, 'H', 'W'], type: 'float32' }],
  outputs: (['cls', 'obj', 'bbox', 'kps'] as const).flatMap((k) =>
    [8, 16, 32].map((s) => ({ name: `${k}_${s}`, shape: ['N', 'A', k === 'bbox' ? 4 : k === 'kps' ? 10 : 1] })),
  ),
};

/** ArcFace-style recognizer: [N,3,112,112] -> [N,D] raw embedding (512 in production; the 128-d fixture fits too). */
export const RECOGNIZER_CONTRACT: ModelContract = {
  role: 'recognizer (ArcFace)',
  inputs: [{ shape: ['N', 3, 112, 112], type: 'float32' }],
  outputs: [{ shape: ['N', 'D'] }],
};

/** The 512-d ArcFace (buffalo_l w600k_r50) that IP-Adapter FaceID needs. */
export const ARCFACE_512_CONTRACT: ModelContract = {
  role: 'recognizer (ArcFace 512-d)',
  inputs: [{ shape: ['N', 3, 112, 112], type: 'float32' }],
  outputs: [{ shape: ['N', 512] }],
};

/** MediaPipe face mesh: 192x192 RGB crop -> 468 x (x, y, z) in crop pixels, plus a face-presence logit. */
export const FACE_MESH_CONTRACT: ModelContract = {
  role: 'face mesh (MediaPipe 468)',
  inputs: [{ shape: [1, 3, 192, 192], type: 'float32' }],
  outputs: [{ shape: [[1, 1, 1, 1404], [1, 1404]] }, { shape: [[1, 1, 1, 1], [1, 1]] }],
  extraOutputs: true,
};

/** BiSeNet face parsing (DESIGN 5.4): first output is [1,19,512,512] logits. */
export const BISENET_CONTRACT: ModelContract = {
  role: 'parser (BiSeNet)',
  inputs: [{ name: 'input', shape: [1, 3, 512, 512], type: 'float32' }],
  outputs: [{ shape: [1, 19, 512, 512] }],
  extraOutputs: true,
};

/** The skin/clothes/hair segmenter (PAN, Kazuhito00) that stands in for BiSeNet: sigmoid channels skin, clothes, hair. */
export const PAN_SEG_CONTRACT: ModelContract = {
  role: 'parser (PAN skin/hair)',
  inputs: [{ shape: [1, 3, 512, 512], type: 'float32' }],
  outputs: [{ shape: [1, 3, 512, 512] }],
};
