/**
 * Uncompressed images as the pipeline stages pass them around: interleaved
 * 8-bit channels, row-major, no padding. Decoding and encoding live in the
 * intake and output modules; everything in between works on these.
 */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/** An input image that passed intake: type sniffed, size checked, EXIF orientation applied. */
export interface InputImage {
  /** Re-encoded bytes without metadata (safe to store and to send on to providers). */
  bytes: Buffer;
  format: 'jpeg' | 'png' | 'webp';
  width: number;
  height: number;
  /** RGB pixels, oriented. */
  raw: RawImage;
}
