/**
 * Image intake: the one way an input image enters the system.
 *
 * API (request time): `checkImageUrl(url, config.FETCH_ALLOW_HOSTS)` for a
 * quick 400 on obviously bad URLs; `createImageLoader(config).decode(bytes)`
 * for uploaded files.
 * Daemon: `createImageLoader(config).load(url, signal)` fetches with the full
 * DNS-checked policy and decodes.
 */
import type { Config } from '../config.ts';
import type { InputImage } from '../images/raw.ts';
import { decodeImage } from './decode-image.ts';
import { createImageFetcher, type LookupFunction } from './fetch-image.ts';

export {
  classifyAddress,
  isAllowedHost,
  isForbiddenAddress,
  isIpLiteral,
  normalizeHost,
  parseAllowHosts,
  type AddressVerdict,
  type AllowHostRule,
} from './address-policy.ts';
export { checkImageUrl, MAX_URL_LENGTH } from './check-url.ts';
export { createImageFetcher, type FetchPolicy, type ImageFetcher, type LookupFunction } from './fetch-image.ts';
export {
  decodeImage,
  FLATTEN_BACKGROUND,
  sniffImageType,
  type DecodeOptions,
  type SniffResult,
  type SupportedImageType,
} from './decode-image.ts';

export type IntakeConfig = Pick<
  Config,
  | 'FETCH_ALLOW_HOSTS'
  | 'FETCH_CONNECT_TIMEOUT_MS'
  | 'FETCH_TIMEOUT_MS'
  | 'FETCH_MAX_BYTES'
  | 'FETCH_MAX_REDIRECTS'
  | 'IMAGE_MAX_PIXELS'
>;

export interface ImageLoader {
  /** Fetch (SSRF-checked, size- and time-limited) and decode. Throws JobError (see docs/intake.md). */
  load(url: string, signal?: AbortSignal): Promise<InputImage>;
  /** Decode uploaded bytes with the same checks. */
  decode(bytes: Buffer): Promise<InputImage>;
}

/**
 * Build the loader from configuration. `deps.lookup` replaces dns.lookup
 * (tests). Throws (plain Error) on an unreadable FETCH_ALLOW_HOSTS entry.
 */
export function createImageLoader(config: IntakeConfig, deps: { lookup?: LookupFunction } = {}): ImageLoader {
  const fetcher = createImageFetcher({
    allowHosts: config.FETCH_ALLOW_HOSTS,
    connectTimeoutMs: config.FETCH_CONNECT_TIMEOUT_MS,
    totalTimeoutMs: config.FETCH_TIMEOUT_MS,
    maxBytes: config.FETCH_MAX_BYTES,
    maxRedirects: config.FETCH_MAX_REDIRECTS,
    ...(deps.lookup ? { lookup: deps.lookup } : {}),
  });
  const maxPixels = config.IMAGE_MAX_PIXELS;
  return {
    async load(url, signal) {
      const bytes = await fetcher.fetch(url, signal);
      return decodeImage(bytes, { maxPixels });
    },
    decode: (bytes) => decodeImage(bytes, { maxPixels }),
  };
}
