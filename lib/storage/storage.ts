/**
 * Where result images (and uploaded inputs) live. Two implementations:
 * `local` (files under DATA_DIR, served by the API) and `supabase`
 * (Supabase Storage through @supabase/supabase-js).
 */
export interface StoredObject {
  bytes: Buffer;
  contentType: string;
}

export interface Storage {
  readonly kind: 'local' | 'supabase';
  /** Store bytes under `key` and return the URL clients fetch it from. */
  put(key: string, bytes: Buffer, contentType: string): Promise<string>;
  /** Read back an object (uploaded inputs); undefined when it does not exist. */
  get(key: string): Promise<StoredObject | undefined>;
  delete(keys: string[]): Promise<void>;
}

const EXTENSIONS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/avif': 'avif',
};

export function extensionFor(contentType: string): string {
  return EXTENSIONS[contentType] ?? 'bin';
}

export function contentTypeForKey(key: string): string {
  const ext = key.slice(key.lastIndexOf('.') + 1).toLowerCase();
  for (const [type, e] of Object.entries(EXTENSIONS)) if (e === ext) return type;
  return ext === 'jpeg' ? 'image/jpeg' : 'application/octet-stream';
}

/** Keys are `<prefix>/<uuid>/<128 random bits>.<ext>`: nothing in them can be guessed from another. */
export function isSafeKey(key: string): boolean {
  return /^[a-z]+\/[0-9a-f-]{36}\/[A-Za-z0-9_-]{10,64}\.[a-z0-9]{2,5}$/.test(key);
}
