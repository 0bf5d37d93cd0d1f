/**
 * A town that deploys, then waits for the service to come up before its smoke test: a molecule
 * whose first step waits on an `http:health` gate (src/healthGate.ts, a custom evaluator). The
 * "service" is a local HTTP server that answers 503 for its first two seconds, then 200.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTown, type TownEvent } from '@belfry/core';
import { createMemoryDriver } from '@belfry/driver-memory';
import { httpHealthGate } from './healthGate';

const upAt = Date.now() + 2_000;
const service = createServer((_req, res) => {
  res.statusCode = Date.now() >= upAt ? 200 : 503;
  res.end();
});
await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(service.address() as AddressInfo).port}/healthz`;

const town = createTown({
  driver: createMemoryDriver(),
  rigs: ['api'],
  gates: [httpHealthGate({ requestTimeoutMs: 500 })],
  timings: { heartbeatMs: 250, patrolIntervalMs: 250, surveyMs: 200, gateIntervalMs: 250 },
});
const t0 = Date.now();
const say = (text: string) => console.log(`${String(Date.now() - t0).padStart(5)} ms  ${text}`);

await town.start();
const molecule = await town.model.molecules.create({
  name: 'deploy',
  rig: 'api',
  steps: [
    // A step's gate guards its start: the smoke test runs once the service is healthy.
    { name: 'smoke-test', gate: { type: 'http:health', spec: { url } } },
    { name: 'announce' },
  ],
});
const gateId = molecule.waitingOn as string;
say(`molecule ${molecule.id} waits on gate ${gateId}: ${url} must answer 200`);

const finished = new Promise<void>((resolve, reject) => {
  const giveUp = setTimeout(() => reject(new Error('the gate did not close within 15 s')), 15_000);
  town.events.on('*', async (e: TownEvent) => {
    if (e.type === 'gate.closed' && e.gateId === gateId) {
      const gate = await town.model.gates.require(gateId);
      say(`gate closed: ${JSON.stringify(gate.result)}`);
    }
    if (e.type === 'molecule.dispatched' && e.moleculeId === molecule.id) {
      say(`step ${e.step} (smoke-test) went to rig ${e.rig} as bead ${e.beadId}`);
      clearTimeout(giveUp);
      resolve();
    }
  });
});
const polls = setInterval(async () => {
  const gate = await town.model.gates.get(gateId);
  if (gate?.status === 'open' && gate.memo)
    say(`still waiting: the service answered ${gate.memo.lastSeen}`);
}, 500);

try {
  await finished;
} finally {
  clearInterval(polls);
  await town.stop();
  service.close();
}
say('done');
