import { timerGate } from '@belfry/gate-timer';
import { runGateConformance } from '@belfry/testing';

runGateConformance(() => timerGate(), {
  name: 'timerGate conformance',
  validSpecs: [{ durationMs: 1 }, { durationMs: 30 * 60_000 }],
  invalidSpecs: [
    {},
    { durationMs: 0 },
    { durationMs: -5 },
    { durationMs: 1.5 },
    { durationMs: '1000' },
    { durationMs: 1_000, extra: true },
  ],
  staysOpen: { spec: { durationMs: 60_000 }, ageMs: 59_999 },
  closes: { spec: { durationMs: 60_000 }, ageMs: 60_000 },
});
