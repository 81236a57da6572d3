/**
 * `npm run bench [-- api|landmark|daemon|diffusion ...]`: prints figures for this machine.
 * Speed is measured here, never asserted in tests.
 */
import { benchApi } from './api.ts';
import { benchDaemon } from './daemon.ts';
import { benchDiffusion } from './diffusion.ts';
import { benchLandmark } from './landmark.ts';

const all = ['api', 'landmark', 'daemon', 'diffusion'];
const chosen = process.argv.slice(2).filter((a) => all.includes(a));
const run = chosen.length > 0 ? chosen : all;

console.log(`node ${process.version}, ${(await import('node:os')).availableParallelism()} cores`);
if (run.includes('api')) {
  console.log('\n== API and queue ==');
  await benchApi({ seconds: Number(process.env.BENCH_SECONDS ?? 10), pickupJobs: 200 });
}
if (run.includes('landmark')) {
  console.log('\n== CPU landmark engine ==');
  await benchLandmark({ iterations: Number(process.env.BENCH_ITERATIONS ?? 20) });
}
if (run.includes('daemon')) {
  console.log('\n== CPU landmark engine, end to end in the daemon ==');
  await benchDaemon({ jobs: 20, format: 'png' });
  await benchDaemon({ jobs: 20, format: 'jpeg' });
}
if (run.includes('diffusion')) {
  console.log('\n== diffusion engine overhead (stand-in models) ==');
  await benchDiffusion({ steps: 30 });
}
