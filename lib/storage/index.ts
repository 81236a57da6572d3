import path from 'node:path';
import type { Config } from '../config.ts';
import { createLocalStorage } from './local.ts';
import type { Storage } from './storage.ts';
import { createSupabaseStorage } from './supabase.ts';

export * from './storage.ts';

export function createStorage(config: Config): Storage {
  if (config.STORAGE === 'supabase') {
    return createSupabaseStorage({
      url: config.SUPABASE_URL!,
      serviceKey: config.SUPABASE_SERVICE_KEY!,
      bucket: config.SUPABASE_BUCKET!,
      signedUrlExpiresS: config.SUPABASE_SIGNED_URL_EXPIRES_S,
    });
  }
  return createLocalStorage({ root: path.join(config.DATA_DIR, 'files'), publicBaseUrl: config.PUBLIC_BASE_URL });
}
