/**
 * Results in a Supabase Storage bucket. Public buckets hand out public URLs;
 * with `signedUrlExpiresS > 0` we hand out signed URLs valid that long.
 */
import { createClient } from '@supabase/supabase-js';
import { contentTypeForKey, type Storage } from './storage.ts';

export interface SupabaseStorageOptions {
  url: string;
  serviceKey: string;
  bucket: string;
  signedUrlExpiresS: number;
  fetch?: typeof fetch;
}

export function createSupabaseStorage(options: SupabaseStorageOptions): Storage {
  const client = createClient(options.url, options.serviceKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    global: options.fetch ? { fetch: options.fetch } : {},
  });
  const bucket = () => client.storage.from(options.bucket);
  return {
    kind: 'supabase',
    async put(key, bytes, contentType) {
      const { error } = await bucket().upload(key, bytes, { contentType, cacheControl: '31536000', upsert: false });
      if (error) throw new Error(`Supabase upload of ${key} failed: ${error.message}`, { cause: error });
      if (options.signedUrlExpiresS > 0) {
        const signed = await bucket().createSignedUrl(key, options.signedUrlExpiresS);
        if (signed.error) throw new Error(`Supabase signed URL for ${key} failed: ${signed.error.message}`, { cause: signed.error });
        return signed.data.signedUrl;
      }
      return bucket().getPublicUrl(key).data.publicUrl;
    },
    async get(key) {
      const { data, error } = await bucket().download(key);
      if (error || !data) return undefined;
      return { bytes: Buffer.from(await data.arrayBuffer()), contentType: data.type || contentTypeForKey(key) };
    },
    async delete(keys) {
      if (keys.length === 0) return;
      const { error } = await bucket().remove(keys);
      if (error) throw new Error(`Supabase delete failed: ${error.message}`, { cause: error });
    },
  };
}
