/**
 * Benchmark of the landmark (CPU) engine: one swap at 1024x1024, split by
 * stage (decode, detect, landmarks, warp, blend, encode), median and p95.
 * Uses the fixture photos and models (../shared/fixtures), or MODELS_DIR /
 * MODEL_FILES when set. Run alone: npm exec -- node bench/landmark.ts [iterations]
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { RawImage } from '../lib/images/raw.ts';
import { createLandmarkSwapper } from '../worker/engines/landmark/swap.ts';
import { FACE_MESH_CONTRACT, SCRFD_CONTRACT, YUNET_CONTRACT } from '../worker/face/contracts.ts';
import { createFaceMesh } from '../worker/face/mesh.ts';
import { createScrfdDetector } from '../worker/face/scrfd.ts';
import { createYunetDetector } from '../worker/face/yunet.ts';
import { loadModelManifest, resolveModel } from '../worker/models/manifest.ts';
import { createSessionFactory } from '../worker/onnx/session.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/fixtures');
const FIXTURE_FILES = ['detector=insightface_det_2.5g.onnx', 'detector_yunet=yunet_n_dynamic.onnx', 'face_mesh=mediapipe_face_landmark_468.onnx'];

const STAGES = ['decode', 'detect', 'landmarks', 'warp', 'blend', 'encode', 'total'] as const;

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

async function photo1024(file: string): Promise<Buffer> {
  // Square 1024x1024 JPEG: the top square of the portrait (where the face is), as a client would upload.
  const img = sharp(path.join(FIXTURES, 'images', file));
  const { width = 0, height = 0 } = await img.metadata();
  const side = Math.min(width, height);
  return img.extract({ left: Math.floor((width - side) / 2), top: 0, width: side, height: side }).resize(1024, 1024).jpeg({ quality: 90 }).toBuffer();
}

async function decode(bytes: Buffer): Promise<RawImage> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: 3 };
}

export async function benchLandmark(opts: { iterations: number }): Promise<void> {
  const modelsDir = process.env.MODELS_DIR ?? path.join(FIXTURES, 'models');
  const modelFiles = process.env.MODEL_FILES ? process.env.MODEL_FILES.split(',') : process.env.MODELS_DIR ? [] : FIXTURE_FILES;
  const manifest = loadModelManifest(modelsDir, { modelFiles });
  const threads = Number(process.env.ONNX_THREADS ?? 0);
  const sessions = createSessionFactory({ provider: 'cpu', threads, log: { info: () => undefined, warn: () => undefined } });
  const mesh = createFaceMesh(await sessions.load(resolveModel(manifest, 'face_mesh').path, FACE_MESH_CONTRACT));
  const detectors = {
    yunet: createYunetDetector(await sessions.load(resolveModel(manifest, 'detector_yunet').path, YUNET_CONTRACT)),
    scrfd: createScrfdDetector(await sessions.load(resolveModel(manifest, 'detector').path, SCRFD_CONTRACT)),
  };
  const baseBytes = await photo1024('biden.jpg');
  const faceBytes = await photo1024('obama.jpg');

  console.log(`landmark engine: one swap, base and face 1024x1024 JPEG, output PNG; ${opts.iterations} iterations after 2 warm-up; ONNX threads ${sessions.threads}`);
  console.log('(the machine is shared: other processes using the CPU inflate these numbers)');
  for (const [name, detector] of Object.entries(detectors)) {
    const swapper = createLandmarkSwapper({ detector, mesh });
    const rows: Record<(typeof STAGES)[number], number[]> = Object.fromEntries(STAGES.map((s) => [s, []])) as never;
    let jpegMs: number[] = [];
    for (let i = 0; i < opts.iterations + 2; i++) {
      const t0 = performance.now();
      const [base, face] = await Promise.all([decode(baseBytes), decode(faceBytes)]);
      const t1 = performance.now();
      const r = await swapper.swap(base, face, {});
      const t2 = performance.now();
      const png = await sharp(Buffer.from(r.image.data.buffer, r.image.data.byteOffset, r.image.data.byteLength), { raw: { width: r.image.width, height: r.image.height, channels: 3 } }).png().toBuffer();
      const t3 = performance.now();
      await sharp(Buffer.from(r.image.data.buffer, r.image.data.byteOffset, r.image.data.byteLength), { raw: { width: r.image.width, height: r.image.height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
      const t4 = performance.now();
      if (i < 2) continue;
      void png;
      rows.decode.push(t1 - t0);
      for (const s of ['detect', 'landmarks', 'warp', 'blend'] as const) rows[s].push(r.timings[s]);
      rows.encode.push(t3 - t2);
      rows.total.push(t3 - t0);
      jpegMs.push(t4 - t3);
    }
    console.log(`\ndetector ${name}`);
    console.log(`${'stage'.padEnd(10)} ${'median ms'.padStart(10)} ${'p95 ms'.padStart(10)}`);
    for (const s of STAGES) console.log(`${s.padEnd(10)} ${pct(rows[s], 50).toFixed(1).padStart(10)} ${pct(rows[s], 95).toFixed(1).padStart(10)}`);
    console.log(`(encode as JPEG q90 instead of PNG: median ${pct(jpegMs, 50).toFixed(1)} ms)`);
    jpegMs = [];
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchLandmark({ iterations: Number(process.argv[2] ?? 20) });
}
