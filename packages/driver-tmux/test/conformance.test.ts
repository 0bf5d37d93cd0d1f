import { runDriverConformance } from '@belfry/testing';
import { afterAll } from 'vitest';
import { killAll, NODE, sleep, tmuxDriver } from './helpers';

afterAll(killAll);

runDriverConformance(() => tmuxDriver(), {
  name: 'TmuxDriver conformance (real tmux)',
  echo: ['cat'],
  // Exits by itself soon, after the driver's start check (250 ms): a clean start, then an exit.
  exitWith: (code) => ['sh', '-c', `sleep 0.5; exit ${code}`],
  stubborn: [
    NODE,
    '-e',
    'process.on("SIGTERM", () => {}); process.on("SIGHUP", () => {}); setInterval(() => {}, 1e9)',
  ],
  wait: sleep,
  timeoutMs: 8_000,
  activityResolutionMs: 1_000,
});
