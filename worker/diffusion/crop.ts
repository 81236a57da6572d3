/**
 * The generation window (issue 5): SDXL works best near 1024² with the face a
 * fair part of the frame, so we crop a square around the base face and its
 * mask (with margin), generate at a size near SDXL's native resolution, and
 * paste the result back, instead of squashing the whole photo to 1024.
 */

export interface CropPlan {
  /** Crop rectangle in the base image (integers, inside the image). */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Generation size (multiples of 64, area near resolution²). */
  genWidth: number;
  genHeight: number;
}

export interface CropOptions {
  /** Side of the generation square; other aspect ratios keep about this area. Default 1024. */
  resolution?: number;
  /** Crop side as a multiple of the face box's larger side. Default 2.5. */
  faceScale?: number;
  /** Pixels kept around the mask's bounding box. Default 16. */
  maskMargin?: number;
}

export type Box = [number, number, number, number];

/** Bounding box [x1, y1, x2, y2) of the nonzero pixels of a mask, or null when empty. */
export function maskBounds(mask: Uint8Array, width: number, height: number): Box | null {
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (mask[row + x]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  return x1 < 0 ? null : [x0, y0, x1 + 1, y1 + 1];
}

const round64 = (v: number) => Math.max(64, Math.round(v / 64) * 64);

export function planCrop(imageWidth: number, imageHeight: number, face: Box, mask: Box | null, opts: CropOptions = {}): CropPlan {
  const resolution = opts.resolution ?? 1024;
  const faceScale = opts.faceScale ?? 2.5;
  const margin = opts.maskMargin ?? 16;
  let [ux0, uy0, ux1, uy1] = face;
  if (mask) {
    ux0 = Math.min(ux0, mask[0] - margin);
    uy0 = Math.min(uy0, mask[1] - margin);
    ux1 = Math.max(ux1, mask[2] + margin);
    uy1 = Math.max(uy1, mask[3] + margin);
  }
  const faceSide = Math.max(face[2] - face[0], face[3] - face[1]);
  let side = Math.ceil(Math.max(faceSide * faceScale, ux1 - ux0, uy1 - uy0));
  side = Math.max(side, 64);
  const width = Math.min(side, imageWidth);
  const height = Math.min(side, imageHeight);
  const cx = (ux0 + ux1) / 2;
  const cy = (uy0 + uy1) / 2;
  const x = Math.round(Math.min(Math.max(cx - width / 2, 0), imageWidth - width));
  const y = Math.round(Math.min(Math.max(cy - height / 2, 0), imageHeight - height));
  const scale = Math.sqrt((resolution * resolution) / (width * height));
  return { x, y, width, height, genWidth: round64(width * scale), genHeight: round64(height * scale) };
}
