import { beforeAll, describe, expect, it } from 'vitest';
import { chooseFaces, leftToRight } from '../../worker/face/detect.ts';
import { FACE_MESH_CONTRACT, PAN_SEG_CONTRACT, RECOGNIZER_CONTRACT, SCRFD_CONTRACT } from '../../worker/face/contracts.ts';
import { buildFaceMask, fillHoles, morphDisk } from '../../worker/face/mask.ts';
import { createFaceMesh, MESH_INDEX, MESH_POINTS } from '../../worker/face/mesh.ts';
import { pasteBack } from '../../worker/face/paste.ts';
import { createPanParser } from '../../worker/face/parse.ts';
import { cosineSimilarity, createRecognizer, embedFace } from '../../worker/face/recognize.ts';
import { createScrfdDetector } from '../../worker/face/scrfd.ts';
import type { Face, FaceDetector, FaceParser, FaceRecognizer, LandmarkModel, RawImage } from '../../worker/face/types.ts';
import { FACE_PHOTOS, FIXTURE_MODEL, loadRgb, testSessions } from './fixtures.ts';

let detector: FaceDetector, recognizer: FaceRecognizer, mesh: LandmarkModel, parser: FaceParser;
const photos: Record<string, RawImage> = {};
const faces: Record<string, Face[]> = {};

beforeAll(async () => {
  const s = testSessions();
  detector = createScrfdDetector(await s.load(FIXTURE_MODEL.scrfd25, SCRFD_CONTRACT));
  recognizer = createRecognizer(await s.load(FIXTURE_MODEL.recognizer, RECOGNIZER_CONTRACT));
  mesh = createFaceMesh(await s.load(FIXTURE_MODEL.mesh, FACE_MESH_CONTRACT));
  parser = createPanParser(await s.load(FIXTURE_MODEL.pan, PAN_SEG_CONTRACT));
  for (const [k, f] of Object.entries(FACE_PHOTOS)) {
    photos[k] = await loadRgb(f);
    faces[k] = leftToRight(await detector.detect(photos[k]!));
  }
});

describe('recognizer (MobileFaceNet 128-d through the ArcFace code path)', () => {
  it('gives L2-normalised embeddings that tell Obama from Biden across photos', async () => {
    const obama = await embedFace(recognizer, photos.obama!, faces.obama![0]!);
    const biden = await embedFace(recognizer, photos.biden!, faces.biden![0]!);
    expect(obama).toHaveLength(128);
    expect(Math.hypot(...obama)).toBeCloseTo(1, 5);
    const [left, right] = await Promise.all(faces.two!.map((f) => embedFace(recognizer, photos.two!, f)));
    // two_people: Obama left, Biden right. Measured: same person 0.75 / 0.98, different people about 0.1.
    const same = [cosineSimilarity(obama, left!), cosineSimilarity(biden, right!)];
    const diff = [cosineSimilarity(obama, right!), cosineSimilarity(biden, left!), cosineSimilarity(obama, biden)];
    for (const s of same) expect(s).toBeGreaterThan(0.6);
    for (const d of diff) expect(d).toBeLessThan(0.3);
  });
});

describe('dense landmarks (MediaPipe face mesh)', () => {
  it.each(['astronaut', 'obama', 'biden', 'two'])('468 points that agree with the detector keypoints on %s', async (name) => {
    for (const face of faces[name]!) {
      const lm = await mesh.landmarks(photos[name]!, face);
      expect(lm.points).toHaveLength(MESH_POINTS);
      expect(lm.score).toBeGreaterThan(0.9);
      const p = lm.points;
      const eyeL = [(p[MESH_INDEX.leftEyeOuter]![0] + p[MESH_INDEX.leftEyeInner]![0]) / 2, (p[MESH_INDEX.leftEyeOuter]![1] + p[MESH_INDEX.leftEyeInner]![1]) / 2];
      const eyeR = [(p[MESH_INDEX.rightEyeOuter]![0] + p[MESH_INDEX.rightEyeInner]![0]) / 2, (p[MESH_INDEX.rightEyeOuter]![1] + p[MESH_INDEX.rightEyeInner]![1]) / 2];
      const iod = Math.hypot(face.kps[1]![0] - face.kps[0]![0], face.kps[1]![1] - face.kps[0]![1]);
      const near = (a: number[], b: number[]) => expect(Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!)).toBeLessThan(0.15 * iod);
      near(eyeL, face.kps[0]!);
      near(eyeR, face.kps[1]!);
      near(p[MESH_INDEX.mouthLeft]!, face.kps[3]!);
      near(p[MESH_INDEX.mouthRight]!, face.kps[4]!);
    }
  });
});

describe('face parsing (PAN stand-in mapped to BiSeNet classes) and masks', () => {
  it('labels skin on the face and hair above it, at full resolution, background outside the crop', async () => {
    const img = photos.obama!, face = faces.obama![0]!;
    const { labels, width, height } = await parser.parse(img, face);
    expect([width, height]).toEqual([img.width, img.height]);
    const at = (x: number, y: number) => labels[Math.round(y) * width + Math.round(x)];
    const [nx, ny] = face.kps[2]!;
    expect(at(nx, ny)).toBe(1);
    // Cheek between eye and mouth.
    expect(at(face.kps[0]![0], (face.kps[0]![1] + face.kps[3]![1]) / 2)).toBe(1);
    // Hair: the band above the eyebrows near the top of the detector box.
    let hair = 0;
    for (let x = face.box[0]; x < face.box[2]; x++) if (at(x, face.box[1] + 5) === 17) hair++;
    expect(hair).toBeGreaterThan(10);
    expect(at(0, height - 1)).toBe(0);
    const withHair = buildFaceMask(labels, width, height, {});
    const noHair = buildFaceMask(labels, width, height, { include_hair: false, mask_blur: 0, mask_padding: 0, mask_expand: 0 });
    expect(withHair[Math.round(ny) * width + Math.round(nx)]).toBe(255);
    const count = (m: Uint8Array) => m.reduce((n, v) => n + (v > 0 ? 1 : 0), 0);
    expect(count(withHair)).toBeGreaterThan(count(noHair) * 1.2);
    expect(withHair[0]).toBe(0);
  });

  it('builds masks in the DESIGN 5.4 order: classes, fill holes, expand, blur, padding', () => {
    const W = 200, H = 200;
    const labels = new Uint8Array(W * H);
    // A skin ring (hole in the middle: an unlabelled region enclosed by face), hair on top, neck below, cloth beside.
    for (let y = 60; y < 140; y++) for (let x = 60; x < 140; x++) labels[y * W + x] = 1;
    for (let y = 90; y < 110; y++) for (let x = 90; x < 110; x++) labels[y * W + x] = 0;
    for (let y = 40; y < 60; y++) for (let x = 60; x < 140; x++) labels[y * W + x] = 17;
    for (let y = 140; y < 160; y++) for (let x = 80; x < 120; x++) labels[y * W + x] = 14;
    for (let y = 60; y < 140; y++) for (let x = 150; x < 190; x++) labels[y * W + x] = 16;
    const hard = { mask_expand: 0, mask_blur: 0, mask_padding: 0 };
    const m = buildFaceMask(labels, W, H, { ...hard, include_hair: false, include_neck: false });
    expect(m[100 * W + 100]).toBe(255); // hole filled
    expect(m[50 * W + 100]).toBe(0); // hair excluded
    expect(m[150 * W + 100]).toBe(0); // neck excluded
    expect(m[100 * W + 170]).toBe(0); // cloth never
    const m2 = buildFaceMask(labels, W, H, { ...hard, include_hair: true, include_neck: true });
    expect(m2[50 * W + 100]).toBe(255);
    expect(m2[150 * W + 100]).toBe(255);
    // Expand: round(200 * 0.02 * 1) = 4 steps of 3x3 dilation.
    const e = buildFaceMask(labels, W, H, { ...hard, include_hair: false, mask_expand: 1 });
    expect(e[100 * W + 56]).toBe(255);
    expect(e[100 * W + 55]).toBe(0);
    // Blur: soft edge, symmetric around the boundary.
    const b = buildFaceMask(labels, W, H, { ...hard, include_hair: false, mask_blur: 5 });
    const edge = b[100 * W + 60]!;
    expect(edge).toBeGreaterThan(90);
    expect(edge).toBeLessThan(165);
    expect(b[100 * W + 100]).toBe(255);
    expect(b[100 * W + 40]).toBe(0);
    // Padding: elliptical dilation (+) or erosion (-) by |p|.
    const pPlus = buildFaceMask(labels, W, H, { ...hard, include_hair: false, mask_padding: 10 });
    expect(pPlus[100 * W + 50]).toBe(255);
    expect(pPlus[100 * W + 49]).toBe(0);
    expect(pPlus[52 * W + 52]).toBe(0); // disk, not square: corner (8, 8) away is outside radius 10
    const pMinus = buildFaceMask(labels, W, H, { ...hard, include_hair: false, mask_padding: -10 });
    expect(pMinus[100 * W + 69]).toBe(0);
    expect(pMinus[100 * W + 70]).toBe(255);
    // Nothing selected: empty mask.
    expect(buildFaceMask(new Uint8Array(W * H).fill(16), W, H).every((v) => v === 0)).toBe(true);
  });

  it('fills only enclosed holes and dilates with a disk', () => {
    const w = 5, h = 5;
    const bin = Uint8Array.from([0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
    fillHoles(bin, w, h);
    expect(bin[12]).toBe(1);
    expect(bin[0]).toBe(0);
    const dot = new Uint8Array(49);
    dot[24] = 255;
    const d = morphDisk(dot, 7, 7, 2, true);
    expect(d[24 + 2]).toBe(255);
    expect(d[24 - 14]).toBe(255);
    expect(d[24 - 16]).toBe(0); // (-2, -2) lies outside a radius-2 disk
  });
});

describe('paste-back (DESIGN 5.8)', () => {
  it('is bit-identical where M = 0, equals the generated image where M = 255, and rounds as specified between', () => {
    const n = 64 * 48;
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) % 256;
    const base: RawImage = { data: Uint8Array.from({ length: n * 3 }, rnd), width: 64, height: 48, channels: 3 };
    const gen: RawImage = { data: Uint8Array.from({ length: n * 3 }, rnd), width: 64, height: 48, channels: 3 };
    const mask = Uint8Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : i % 3 === 1 ? 255 : rnd()));
    const baseBefore = Uint8Array.from(base.data);
    const genBefore = Uint8Array.from(gen.data);
    const out = pasteBack(base, gen, mask);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 3; k++) {
        const o = base.data[i * 3 + k]!, g = gen.data[i * 3 + k]!, m = mask[i]!;
        expect(out.data[i * 3 + k]).toBe(Math.floor((o * (255 - m) + g * m + 127) / 255));
        if (m === 0) expect(out.data[i * 3 + k]).toBe(o);
      }
    }
    // Neither input is written to: the blend goes into a new buffer.
    expect(Buffer.from(base.data).equals(Buffer.from(baseBefore))).toBe(true);
    expect(Buffer.from(gen.data).equals(Buffer.from(genBefore))).toBe(true);
    expect(() => pasteBack(base, { ...gen, width: 63 }, mask)).toThrow(/63x48/);
  });
});

describe('chooseFaces on two_people', () => {
  it('picks left and right by index', () => {
    const [l] = chooseFaces(faces.two!, { index: 0 });
    const [r] = chooseFaces(faces.two!, { index: 1 });
    expect(l!.box[0]).toBeLessThan(r!.box[0]);
  });
});
