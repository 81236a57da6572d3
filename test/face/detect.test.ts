import { beforeAll, describe, expect, it } from 'vitest';
import { JobError } from '../../lib/errors.ts';
import { chooseFaces, leftToRight } from '../../worker/face/detect.ts';
import { SCRFD_CONTRACT, YUNET_CONTRACT } from '../../worker/face/contracts.ts';
import { createScrfdDetector } from '../../worker/face/scrfd.ts';
import type { Face, FaceDetector } from '../../worker/face/types.ts';
import { createYunetDetector, YUNET_DEFAULT_THRESHOLD } from '../../worker/face/yunet.ts';
import { FACE_PHOTOS, FIXTURE_MODEL, loadRgb, NO_FACE_PHOTOS, testSessions } from './fixtures.ts';

const EXPECTED: Record<string, number> = {
  [FACE_PHOTOS.astronaut]: 1,
  [FACE_PHOTOS.obama]: 1,
  [FACE_PHOTOS.biden]: 1,
  [FACE_PHOTOS.two]: 2,
  ...Object.fromEntries(NO_FACE_PHOTOS.map((f) => [f, 0])),
};

const detectors: Record<string, FaceDetector> = {};

beforeAll(async () => {
  const sessions = testSessions();
  detectors.scrfd_2_5g = createScrfdDetector(await sessions.load(FIXTURE_MODEL.scrfd25, SCRFD_CONTRACT));
  detectors.scrfd_500m = createScrfdDetector(await sessions.load(FIXTURE_MODEL.scrfd500, SCRFD_CONTRACT));
  detectors.yunet = createYunetDetector(await sessions.load(FIXTURE_MODEL.yunet, YUNET_CONTRACT));
  // YuNet below its threshold, to show the threshold separates faces from the cat.
  detectors.yunet_low = createYunetDetector(await sessions.load(FIXTURE_MODEL.yunet, YUNET_CONTRACT), { threshold: 0.3 });
});

describe.each(['scrfd_2_5g', 'scrfd_500m', 'yunet'])('%s detection on the fixture photos', (name) => {
  it.each(Object.keys(EXPECTED))('%s', async (file) => {
    const img = await loadRgb(file);
    const faces = await detectors[name]!.detect(img);
    expect(faces.map((f) => f.score.toFixed(2))).toHaveLength(EXPECTED[file]!);
    for (const f of faces) {
      const [x1, y1, x2, y2] = f.box;
      expect(x2 - x1).toBeGreaterThan(40);
      expect(y2 - y1).toBeGreaterThan(40);
      expect(f.kps).toHaveLength(5);
      // Keypoints inside the box, eyes above the mouth, image-left eye first.
      for (const [x, y] of f.kps) {
        expect(x).toBeGreaterThan(x1 - 5);
        expect(x).toBeLessThan(x2 + 5);
        expect(y).toBeGreaterThan(y1 - 5);
        expect(y).toBeLessThan(y2 + 5);
      }
      expect(f.kps[0]![0]).toBeLessThan(f.kps[1]![0]);
      expect(f.kps[3]![0]).toBeLessThan(f.kps[4]![0]);
      expect(f.kps[0]![1]).toBeLessThan(f.kps[3]![1]);
    }
  });
});

describe('YuNet threshold', () => {
  it(`real faces score well above ${YUNET_DEFAULT_THRESHOLD}; the cat, a hard negative, scores between 0.5 and it`, async () => {
    const cat = await detectors.yunet_low!.detect(await loadRgb('noface_cat_chelsea.png'));
    expect(cat.length).toBeGreaterThan(0);
    expect(cat[0]!.score).toBeGreaterThan(0.5);
    expect(cat[0]!.score).toBeLessThan(YUNET_DEFAULT_THRESHOLD - 0.05);
    for (const file of [FACE_PHOTOS.obama, FACE_PHOTOS.biden, FACE_PHOTOS.two, FACE_PHOTOS.astronaut]) {
      for (const f of await detectors.yunet!.detect(await loadRgb(file))) expect(f.score).toBeGreaterThan(YUNET_DEFAULT_THRESHOLD + 0.1);
    }
  });
});

describe('SCRFD and YuNet agree', () => {
  it('on the two faces of two_people (boxes and eye keypoints within a few pixels)', async () => {
    const img = await loadRgb(FACE_PHOTOS.two);
    const a = leftToRight(await detectors.scrfd_2_5g!.detect(img));
    const b = leftToRight(await detectors.yunet!.detect(img));
    expect(a).toHaveLength(2);
    expect(b).toHaveLength(2);
    for (let i = 0; i < 2; i++) {
      for (let k = 0; k < 2; k++) {
        expect(Math.abs(a[i]!.kps[k]![0] - b[i]!.kps[k]![0])).toBeLessThan(8);
        expect(Math.abs(a[i]!.kps[k]![1] - b[i]!.kps[k]![1])).toBeLessThan(8);
      }
    }
  });
});

describe('chooseFaces', () => {
  const face = (x1: number, w: number): Face => ({ box: [x1, 0, x1 + w, w], score: 0.9, kps: [] });
  const faces = [face(500, 50), face(100, 80), face(300, 120)];
  it('defaults to the largest face', () => {
    expect(chooseFaces(faces)).toEqual([faces[2]]);
  });
  it('indexes left to right', () => {
    expect(chooseFaces(faces, { index: 0 })).toEqual([faces[1]]);
    expect(chooseFaces(faces, { index: 2 })).toEqual([faces[0]]);
  });
  it('returns all faces left to right', () => {
    expect(chooseFaces(faces, { all: true })).toEqual([faces[1], faces[2], faces[0]]);
  });
  it('rejects an index past the last face with face_index_out_of_range', () => {
    let err: unknown;
    try {
      chooseFaces(faces, { index: 3, role: 'The base image' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JobError);
    expect((err as JobError).code).toBe('face_index_out_of_range');
    expect((err as JobError).message).toMatch(/3 faces/);
  });
  it('returns nothing for no faces', () => {
    expect(chooseFaces([], { index: 1 })).toEqual([]);
  });
});
