/** Test helpers: the shared fixture photos and models (../shared/fixtures, never copied into the repo). */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { RawImage } from '../../lib/images/raw.ts';
import { createSessionFactory } from '../../worker/onnx/session.ts';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures');
export const MODELS = path.join(FIXTURES, 'models');
export const IMAGES = path.join(FIXTURES, 'images');

export const FIXTURE_MODEL = {
  scrfd25: path.join(MODELS, 'insightface_det_2.5g.onnx'),
  scrfd500: path.join(MODELS, 'insightface_det_500m.onnx'),
  yunet: path.join(MODELS, 'yunet_n_dynamic.onnx'),
  mesh: path.join(MODELS, 'mediapipe_face_landmark_468.onnx'),
  recognizer: path.join(MODELS, 'mobilefacenet_foamliu.onnx'),
  pan: path.join(MODELS, 'pan_skin_clothes_hair_seg.onnx'),
  pfld: path.join(MODELS, 'pfld_landmarks_68.onnx'),
};

/** MODEL_FILES value that maps the production roles onto the fixture files. */
export const FIXTURE_MODEL_FILES = [
  'detector=insightface_det_2.5g.onnx',
  'detector_yunet=yunet_n_dynamic.onnx',
  'face_mesh=mediapipe_face_landmark_468.onnx',
  'recognizer=mobilefacenet_foamliu.onnx',
  'parser=pan_skin_clothes_hair_seg.onnx',
];

export const FACE_PHOTOS = {
  astronaut: 'astronaut_eileen_collins_nasa.png',
  obama: 'obama.jpg',
  biden: 'biden.jpg',
  two: 'two_people_obama_biden.jpg',
} as const;
export const NO_FACE_PHOTOS = ['noface_coffee.png', 'noface_cat_chelsea.png', 'noface_rocket.jpg'] as const;

export async function loadRgb(file: string): Promise<RawImage> {
  const { data, info } = await sharp(path.join(IMAGES, file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: 3 };
}

export const quietLog = { info: () => undefined, warn: () => undefined };

export function testSessions() {
  return createSessionFactory({ provider: 'cpu', threads: 1, log: quietLog });
}
