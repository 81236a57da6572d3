/** Results as files under `<DATA_DIR>/files`, served by the API at `/files/<key>`. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { contentTypeForKey, isSafeKey, type Storage, type StoredObject } from './storage.ts';

export function createLocalStorage(options: { root: string; publicBaseUrl: string }): Storage {
  const fileFor = (key: string) => {
    if (!isSafeKey(key)) throw new Error(`invalid storage key: ${key}`);
    return path.join(options.root, key);
  };
  return {
    kind: 'local',
    async put(key, bytes) {
      const file = fileFor(key);
      await fs.mkdir(path.dirname(file), { recursive: true });
      // Write then rename, so a reader never sees half a file.
      const tmp = `${file}.${process.pid}.tmp`;
      await fs.writeFile(tmp, bytes);
      await fs.rename(tmp, file);
      return `${options.publicBaseUrl}/files/${key}`;
    },
    async get(key): Promise<StoredObject | undefined> {
      if (!isSafeKey(key)) return undefined;
      try {
        return { bytes: await fs.readFile(fileFor(key)), contentType: contentTypeForKey(key) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    },
    async delete(keys) {
      await Promise.all(
        keys.filter(isSafeKey).map(async (key) => {
          await fs.rm(fileFor(key), { force: true });
          await fs.rmdir(path.dirname(fileFor(key))).catch(() => {});
        }),
      );
    },
  };
}
