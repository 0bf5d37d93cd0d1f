/**
 * A small town in real time, on the memory driver: two rigs, work slung to polecats, a polecat
 * whose first session crashes (its Witness restarts it, keeping the hook), a timer gate that
 * releases a molecule, and a convoy that lands. Events print as they happen; the tree prints at
 * the end; the town stops by itself after a few seconds (the sessions would keep running).
 */
import { createTown, type TownEvent, type TownStatus } from '@belfry/core';
import { createMemoryDriver } from '@belfry/driver-memory';
import { timerGate } from '@belfry/gate-timer';

// Agents: each works for a while, writing progress; toast's first session crashes.
let toastStarts = 0;
const driver = createMemoryDriver({
  programs: {
    worker: (s) => {
      const crashFirst = s.name === 'api-toast' && ++toastStarts === 1;
      s.onNudge((text) => s.write(`> ${text.slice(0, 40)}…`));
      s.after(300, () => s.write('working'));
      if (crashFirst) s.after(700, () => s.crash('SIGSEGV'));
    },
  },
});

const town = createTown({
  driver,
  rigs: ['api', 'web'],
  gates: [timerGate()],
  agent: { launch: () => ({ command: ['worker'] }) },
  timings: {
    heartbeatMs: 400,
    patrolIntervalMs: 800,
    surveyMs: 200,
    spawnGraceMs: 2_000,
    staleAfterMs: 10_000,
    gateIntervalMs: 200,
    stopGraceMs: 100,
  },
  mayor: (m) => {
    if (m.kind === 'report')
      console.log(`           mayor ← [${m.report.severity}] ${m.report.title}`);
  },
});

const t0 = Date.now();
const line = (e: TownEvent): string | undefined => {
  switch (e.type) {
    case 'polecat.spawned':
      return `${e.agent} spawned (epoch ${e.epoch}${e.respawn ? ', respawn' : ''}) for ${e.beadId}`;
    case 'polecat.done':
      return `${e.agent} done with ${e.beadId}`;
    case 'witness.started':
      return `witness of ${e.rig} started`;
    case 'gate.closed':
      return `gate ${e.gateId} (${e.gateType}) closed`;
    case 'molecule.dispatched':
      return `molecule ${e.moleculeId} step ${e.step} → ${e.rig} as ${e.beadId}`;
    case 'convoy.closed':
      return `convoy ${e.convoyId} landed`;
    case 'patrol.finished':
      return `patrol done (${Object.keys(e.summary.steps).length} steps, digest ${e.digestBeadId})`;
    default:
      return undefined;
  }
};
town.events.on('*', (e) => {
  const text = line(e);
  if (text) console.log(`${`+${((e.at - t0) / 1000).toFixed(2)}s`.padStart(8)}  ${text}`);
});
town.supervision.on('child.exited', (e) => {
  if (e.reason === 'error')
    console.log(
      `${`+${((e.at - t0) / 1000).toFixed(2)}s`.padStart(8)}  ${e.supervisor}/${e.childId} failed: ${(e.error as Error).message}`,
    );
});

function printTree(status: TownStatus): void {
  console.log(`town: ${status.daemon.heartbeatCount} heartbeats; deacon ${status.deacon.state}`);
  for (const rig of status.rigs) {
    console.log(`├─ rig ${rig.name} (${rig.state}), witness ${rig.witness?.state ?? 'none'}`);
    for (const p of rig.polecats) {
      console.log(
        `│  └─ ${p.name}: ${p.session.state}${p.beadId ? ` on ${p.beadId}` : ' (idle)'}, ${p.respawns} respawn(s)`,
      );
    }
  }
  console.log(`gates open: ${status.gates.open}, convoys open: ${status.convoys.open}`);
}

await town.start();
const fix = await town.model.beads.create({ title: 'fix the login bug', rig: 'api' });
const docs = await town.model.beads.create({ title: 'document the API', rig: 'web' });
const convoy = await town.convoys.create({ title: 'release 1.2', beadIds: [fix.id, docs.id] });
await town.sling(fix.id, 'api');
await town.sling(docs.id, 'web');
// A molecule: wait one second, then build on api, then announce on web.
await town.model.molecules.create({
  name: 'deploy',
  rig: 'api',
  steps: [
    { name: 'cool-down', gate: { type: 'timer', spec: { durationMs: 1_000 } } },
    { name: 'build' },
    { name: 'announce' },
  ],
});

const finishAll = async () => {
  for (const rig of (await town.status()).rigs) {
    for (const p of rig.polecats)
      if (p.beadId && p.session.state === 'running') await town.done(p.agent, p.beadId);
  }
};
setTimeout(() => void finishAll(), 2_200);
setTimeout(() => void finishAll(), 3_200);
setTimeout(async () => {
  printTree(await town.status());
  console.log(`convoy ${convoy.id}: ${(await town.convoys.status(convoy.id)).status}`);
  await town.stop();
  console.log('--- the daemon stopped; agent sessions, if any, would keep running ---');
}, 4_200);
