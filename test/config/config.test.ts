import path from 'node:path';
import { expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../lib/config.ts';

test('defaults: embedded database, embedded worker, local storage, folders of the project', () => {
  const config = loadConfig({}, '/srv/app');
  expect(config).toMatchObject({
    PORT: 3000,
    embeddedDatabase: true,
    WORKER: 'embedded',
    STORAGE: 'local',
    DATA_DIR: path.resolve('/srv/app/data'),
    MODELS_DIR: path.resolve('/srv/app/models'),
    FETCH_ALLOW_HOSTS: [],
    SYNC_TIMEOUT_S: 300,
    PUBLIC_BASE_URL: 'http://localhost:3000',
  });
});

test('with DATABASE_URL the worker defaults to off (API-only process)', () => {
  const config = loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/app', FETCH_ALLOW_HOSTS: 'localhost:8080, 127.0.0.1' });
  expect(config.WORKER).toBe('off');
  expect(config.embeddedDatabase).toBe(false);
  expect(config.FETCH_ALLOW_HOSTS).toEqual(['localhost:8080', '127.0.0.1']);
});

test('every bad variable is named at once', () => {
  let error: ConfigError | undefined;
  try {
    loadConfig({ PORT: 'eighty', STORAGE: 'supabase', WORKER: 'sometimes', DATABASE_URL: 'mysql://x' });
  } catch (e) {
    error = e as ConfigError;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const text = error!.message;
  for (const name of ['PORT', 'WORKER', 'DATABASE_URL']) expect(text).toContain(name);
  expect(text).toContain('"eighty"');
});

test('STORAGE=supabase needs its three settings', () => {
  expect(() => loadConfig({ STORAGE: 'supabase', SUPABASE_URL: 'https://x.supabase.co' })).toThrow(/SUPABASE_SERVICE_KEY: required[\s\S]*SUPABASE_BUCKET: required/);
});
