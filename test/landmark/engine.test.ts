/**
 * The landmark engine on the real fixture photos and models.
 *
 * Identity is measured the standard way: the fixture recognizer (MobileFaceNet)
 * on the result's face (detected with SCRFD, 5-point aligned); margin =
 * cos(result, source face) - cos(result, base face). The issue asks >= 0.25; a
 * crude 5-point warp reaches 0.20-0.44. Measured with this engine (YuNet
 * detector, shape transfer 0.85) on this machine:
 *   obama -> biden 0.615 (cos to source 0.762, to base 0.147)
 *   biden -> obama 0.462 (0.698 / 0.236)
 *   obama -> two_people face_index 1 (Biden) 0.563 (0.743 / 0.180)
 *   biden -> two_people swap_all: left face (Obama) 0.443; right face (already Biden) cos to Biden 0.961
 *   obama -> biden with the SCRFD detector instead of YuNet 0.614
 * The assertions use 0.35 (above the 0.25) so small numeric changes do not flake.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.ts';
import { JobError } from '../../lib/errors.ts';
import type { InputImage, RawImage } from '../../lib/images/raw.ts';
import { FaceSwapParamsSchema, type FaceSwapParams } from '../../lib/jobs/params.ts';
import { createLogger } from '../../lib/logger.ts';
import type { Engine, EngineContext } from '../../worker/engine.ts';
import { createLandmarkEngine } from '../../worker/engines/landmark/index.ts';
import { createLandmarkSwapper } from '../../worker/engines/landmark/swap.ts';
import { FACE_MESH_CONTRACT, RECOGNIZER_CONTRACT, SCRFD_CONTRACT, YUNET_CONTRACT } from '../../worker/face/contracts.ts';
import { chooseFaces, leftToRight } from '../../worker/face/detect.ts';
import { createFaceMesh } from '../../worker/face/mesh.ts';
import { cosineSimilarity, createRecognizer, embedFace } from '../../worker/face/recognize.ts';
import { createScrfdDetector } from '../../worker/face/scrfd.ts';
import type { FaceDetector, FaceRecognizer } from '../../worker/face/types.ts';
import { createYunetDetector } from '../../worker/face/yunet.ts';
import { FACE_PHOTOS, FIXTURE_MODEL, FIXTURE_MODEL_FILES, loadRgb, MODELS, testSessions } from '../face/fixtures.ts';

const log = createLogger('silent');
const config = loadConfig({ MODELS_DIR: MODELS, MODEL_FILES: FIXTURE_MODEL_FILES.join(','), ONNX_PROVIDER: 'cpu', ONNX_THREADS: '2' });
const MIN_MARGIN = 0.35;

let engine: Engine<FaceSwapParams>;
let evalDetector: FaceDetector;
let recognizer: FaceRecognizer;
const photos: Record<string, RawImage> = {};

function input(raw: RawImage): InputImage {
  return { bytes: Buffer.alloc(0), format: 'png', width: raw.width, height: raw.height, raw };
}

function ctx(over: Partial<EngineContext> = {}): EngineContext & { stages: string[] } {
  const stages: string[] = [];
  return { signal: new AbortController().signal, progress: (_f, s) => void stages.push(s), log, stages, ...over };
}

const params = (p: Record<string, unknown> = {}) => FaceSwapParamsSchema.parse({ engine: 'landmark', ...p });

async function swap(base: RawImage, face: RawImage, p: Record<string, unknown> = {}): Promise<RawImage> {
  const out = await engine.run({ base: input(base), face: input(face) }, params(p), ctx());
  const img = out.images[0]!;
  if (img.kind !== 'raw') throw new Error('expected a raw image');
  return img.image;
}

/** Margin of the result's face `index` (left to right): cos to the source identity minus cos to the base identity. */
async function margin(result: RawImage, base: RawImage, source: RawImage, opts: { index?: number; sourceIndex?: number } = {}) {
  const pick = async (img: RawImage, index?: number) => chooseFaces(leftToRight(await evalDetector.detect(img)), { index })[0]!;
  const r = await embedFace(recognizer, result, await pick(result, opts.index));
  const b = await embedFace(recognizer, base, await pick(base, opts.index));
  const s = await embedFace(recognizer, source, await pick(source, opts.sourceIndex));
  const toSource = cosineSimilarity(r, s), toBase = cosineSimilarity(r, b);
  return { toSource, toBase, margin: toSource - toBase };
}

beforeAll(async () => {
  engine = await createLandmarkEngine({ config, log });
  const s = testSessions();
  evalDetector = createScrfdDetector(await s.load(FIXTURE_MODEL.scrfd25, SCRFD_CONTRACT));
  recognizer = createRecognizer(await s.load(FIXTURE_MODEL.recognizer, RECOGNIZER_CONTRACT));
  for (const [k, f] of Object.entries(FACE_PHOTOS)) photos[k] = await loadRgb(f);
});

afterAll(async () => {
  await engine?.close?.();
});

describe('landmark engine', () => {
  it('is a ready CPU face_swap engine named landmark', () => {
    expect(engine.name).toBe('landmark');
    expect(engine.task).toBe('face_swap');
    expect(engine.device).toBe('cpu');
    expect(engine.status()).toMatchObject({ ready: true });
    expect(engine.status().detail).toMatch(/yunet/);
  });

  it('moves the identity: obama into biden and biden into obama', async () => {
    const a = await margin(await swap(photos.biden!, photos.obama!), photos.biden!, photos.obama!);
    const b = await margin(await swap(photos.obama!, photos.biden!), photos.obama!, photos.biden!);
    console.log(`identity margin obama->biden ${a.margin.toFixed(3)} (src ${a.toSource.toFixed(3)}, base ${a.toBase.toFixed(3)}); biden->obama ${b.margin.toFixed(3)} (src ${b.toSource.toFixed(3)}, base ${b.toBase.toFixed(3)})`);
    expect(a.margin).toBeGreaterThan(MIN_MARGIN);
    expect(b.margin).toBeGreaterThan(MIN_MARGIN);
  });

  it('swaps only the chosen face of two_people with face_index, leaving the other untouched', async () => {
    const two = photos.two!;
    const result = await swap(two, photos.obama!, { face_index: 1 });
    const m = await margin(result, two, photos.obama!, { index: 1 });
    console.log(`identity margin obama->two_people[1] ${m.margin.toFixed(3)} (src ${m.toSource.toFixed(3)}, base ${m.toBase.toFixed(3)})`);
    expect(m.margin).toBeGreaterThan(MIN_MARGIN);
    // The left face (index 0) is bit-identical: every pixel of its box.
    const [left] = chooseFaces(await evalDetector.detect(two), { index: 0 });
    const [x1, y1, x2, y2] = left!.box.map(Math.round) as [number, number, number, number];
    let changed = 0;
    for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) for (let k = 0; k < 3; k++) if (result.data[(y * two.width + x) * 3 + k] !== two.data[(y * two.width + x) * 3 + k]) changed++;
    expect(changed).toBe(0);
  });

  it('puts the source face on every face with swap_all', async () => {
    const two = photos.two!;
    const result = await swap(two, photos.biden!, { swap_all: true });
    // Left face is Obama: it must now read as Biden.
    const left = await margin(result, two, photos.biden!, { index: 0 });
    // Right face is Biden already: it must stay Biden and have changed pixels (it was swapped too).
    const right = await margin(result, two, photos.biden!, { index: 1 });
    console.log(`swap_all biden->two_people: left margin ${left.margin.toFixed(3)}; right cos to biden ${right.toSource.toFixed(3)}`);
    expect(left.margin).toBeGreaterThan(MIN_MARGIN);
    expect(right.toSource).toBeGreaterThan(0.6);
    const single = await swap(two, photos.biden!, { face_index: 0 });
    expect(Buffer.compare(Buffer.from(single.data), Buffer.from(result.data))).not.toBe(0);
  });

  it('leaves every pixel outside the mask bit-identical to the base image', async () => {
    const s = testSessions();
    const swapper = createLandmarkSwapper({
      detector: createYunetDetector(await s.load(FIXTURE_MODEL.yunet, YUNET_CONTRACT)),
      mesh: createFaceMesh(await s.load(FIXTURE_MODEL.mesh, FACE_MESH_CONTRACT)),
    });
    for (const [base, src, opts] of [[photos.biden!, photos.obama!, {}], [photos.two!, photos.obama!, { swap_all: true }]] as const) {
      const r = await swapper.swap(base, src, opts);
      let outside = 0, changedOutside = 0, inside = 0, changedInside = 0;
      for (let i = 0; i < r.mask.length; i++) {
        const same = r.image.data[i * 3] === base.data[i * 3] && r.image.data[i * 3 + 1] === base.data[i * 3 + 1] && r.image.data[i * 3 + 2] === base.data[i * 3 + 2];
        if (r.mask[i] === 0) {
          outside++;
          if (!same) changedOutside++;
        } else {
          inside++;
          if (!same) changedInside++;
        }
      }
      expect(changedOutside).toBe(0);
      expect(outside).toBeGreaterThan(inside);
      expect(changedInside / inside).toBeGreaterThan(0.5);
      // The engine gives the same pixels as the swapper it wraps.
      const viaEngine = await swap(base, src, opts);
      expect(Buffer.compare(Buffer.from(viaEngine.data), Buffer.from(r.image.data))).toBe(0);
    }
  });

  it('reports progress by stage and returns what it found', async () => {
    const c = ctx();
    const out = await engine.run({ base: input(photos.biden!), face: input(photos.obama!) }, params(), c);
    expect(new Set(c.stages)).toEqual(new Set(['detect', 'landmarks', 'warp', 'blend']));
    expect(out.info).toMatchObject({ engine: 'landmark', detector: 'yunet', faces_in_base: 1, faces_in_source: 1, faces_swapped: 1 });
    expect(out.images[0]).toMatchObject({ kind: 'raw' });
  });
});

describe('bad input', () => {
  const expectCode = async (p: Promise<unknown>, code: string) => {
    const err = await p.then(() => undefined, (e: unknown) => e);
    expect(err, `expected ${code}`).toBeInstanceOf(JobError);
    expect((err as JobError).code).toBe(code);
    expect((err as JobError).retryable).toBe(false);
  };
  const black = (w: number, h: number): RawImage => ({ data: new Uint8Array(w * h * 3), width: w, height: h, channels: 3 });

  it('no face in the base image (a fully black image, a cat)', async () => {
    await expectCode(swap(black(640, 480), photos.obama!), 'no_face_in_base');
    await expectCode(swap(await loadRgb('noface_cat_chelsea.png'), photos.obama!), 'no_face_in_base');
    await expectCode(swap(black(1, 1), black(1, 1)), 'no_face_in_base');
  });

  it('no face in the source image (coffee, black)', async () => {
    await expectCode(swap(photos.obama!, await loadRgb('noface_coffee.png')), 'no_face_in_source');
    await expectCode(swap(photos.obama!, black(300, 300)), 'no_face_in_source');
  });

  it('a face too small to use', async () => {
    // Obama scaled to 80 px wide: the detector still finds the face (it upsamples to 640) but it is ~20 px.
    const { data, info } = await sharp(path.join(MODELS, '../images/obama.jpg')).resize(80).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const tiny: RawImage = { data: new Uint8Array(data), width: info.width, height: info.height, channels: 3 };
    await expectCode(swap(tiny, photos.biden!), 'face_too_small');
    await expectCode(swap(photos.biden!, tiny), 'face_too_small');
  });

  it('a face index past the last face', async () => {
    await expectCode(swap(photos.two!, photos.obama!, { face_index: 2 }), 'face_index_out_of_range');
    await expectCode(swap(photos.biden!, photos.two!, { source_face_index: 5 }), 'face_index_out_of_range');
  });

  it('stops between stages when the job is canceled', async () => {
    const ac = new AbortController();
    const c = ctx({ signal: ac.signal, progress: (_f, stage) => { if (stage === 'landmarks') ac.abort(); } });
    const err = await engine.run({ base: input(photos.biden!), face: input(photos.obama!) }, params(), c).catch((e: unknown) => e);
    expect((err as JobError).code).toBe('canceled');
  });
});

describe('missing models', () => {
  it('gives a not-ready engine naming the missing files instead of throwing', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'no-models-'));
    const e = await createLandmarkEngine({ config: loadConfig({ MODELS_DIR: dir, ONNX_PROVIDER: 'cpu' }), log });
    expect(e.status().ready).toBe(false);
    expect(e.status().detail).toContain(path.join(dir, 'mediapipe_face_landmark_468.onnx'));
    expect(e.status().detail).toMatch(/det_10g\.onnx/);
    const err = await e.run({ base: input(photos.obama!), face: input(photos.biden!) }, params(), ctx()).catch((x: unknown) => x);
    expect((err as JobError).code).toBe('engine_unavailable');
  });

  it('gives a not-ready engine when a file does not fit its contract', async () => {
    // face_mesh role pointed at the PFLD 68-point model: wrong input size and outputs.
    const cfg = loadConfig({ MODELS_DIR: MODELS, MODEL_FILES: [...FIXTURE_MODEL_FILES.filter((f) => !f.startsWith('face_mesh')), 'face_mesh=pfld_landmarks_68.onnx'].join(','), ONNX_PROVIDER: 'cpu' });
    const e = await createLandmarkEngine({ config: cfg, log });
    expect(e.status().ready).toBe(false);
    expect(e.status().detail).toMatch(/pfld_landmarks_68\.onnx.*face mesh/);
  });

  it('uses SCRFD when asked (or when YuNet is absent)', async () => {
    const e = await createLandmarkEngine({ config, log, detector: 'scrfd' });
    expect(e.status().detail).toMatch(/scrfd/);
    const out = await e.run({ base: input(photos.biden!), face: input(photos.obama!) }, params(), ctx());
    const img = out.images[0]!;
    if (img.kind !== 'raw') throw new Error('raw expected');
    const m = await margin(img.image, photos.biden!, photos.obama!);
    console.log(`identity margin obama->biden with SCRFD ${m.margin.toFixed(3)}`);
    expect(m.margin).toBeGreaterThan(MIN_MARGIN);
    await e.close?.();
  });
});
