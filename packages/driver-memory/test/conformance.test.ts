import { createMemoryDriver } from '@belfry/driver-memory';
import { runDriverConformance, SimulatedClock } from '@belfry/testing';

const clock = new SimulatedClock();

runDriverConformance(() => createMemoryDriver({ clock }), {
  name: 'MemoryDriver conformance',
  echo: ['agent'],
  exitWith: (code) => ['exit', String(code)],
  stubborn: ['stubborn'],
  wait: (ms) => clock.advance(ms),
});
