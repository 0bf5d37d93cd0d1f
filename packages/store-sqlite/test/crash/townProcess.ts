/**
 * The process the crash tests kill: a town on a SQLite file and the file driver, in real time.
 *
 *   run <db> <dir> <seed> <target> <fromOp>   a seeded workload; at the first store write from
 *                                              operation <fromOp> on whose context matches <target>
 *                                              (patrol, dispatch, lifecycle, warrants, any) it prints FROZEN
 *                                              and blocks, mid-transaction, for the test to SIGKILL it;
 *                                              target drain: the workload docks rig web gracefully
 *                                              (drainMs 400) at round 6, and the freeze is at the
 *                                              <fromOp>th store write while that drain is under way
 *                                              (from the dock request to the drain's end);
 *                                              target order: the same with an immediate dock (--now)
 *   recover <db> <dir>                         starts the town again and finishes all the work,
 *                                              then writes <dir>/report.json; after an order
 *                                              trial, the operator's next command (undock web) is
 *                                              filed before the town starts, and must win
 *
 * Every piece of work the workload creates is acknowledged in <dir>/acks.log once its
 * transaction committed: those are the records that must survive. Every `warrant.executed` event,
 * in either mode, is appended to <dir>/executed.log: each warrant must be executed exactly once.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTown, PATROL_STEPS, type Store, type StoreTx, type TownEvent } from '@belfry/core';
import { timerGate } from '@belfry/gate-timer';
import { SqliteStore } from '@belfry/store-sqlite';
import { createFileDriver } from './fileDriver';

const [mode = '', db = '', dir = '', seedArg, target = 'any', fromOpArg = '1'] =
  process.argv.slice(2);
if (!mode || !db || !dir) {
  console.error('usage: townProcess run|recover <db> <dir> [seed target fromOp]');
  process.exit(64);
}

/** What is running right now, for the freeze's context. */
const workload = new AsyncLocalStorage<true>();
let patrolStep: number | undefined;
/** A graceful dock of web is under way (target drain): from its request to `rig.drained`. */
let draining = false;
let drainOps = 0;

/** The store, wrapped to count writes and freeze at the chosen one. */
function freezing(store: SqliteStore, fromOp: number, want: string): Store {
  let ops = 0;
  const freeze = (context: string, inTx: number) => {
    process.stdout.write(`FROZEN ${context} op=${ops} tx-writes=${inTx}\n`);
    // Block the whole process, mid-transaction, until the test kills it.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  };
  const matches = (context: string) =>
    want === 'any' ||
    (want === 'patrol' && context.startsWith('patrol')) ||
    (want === 'dispatch' && context === 'patrol:dispatch') ||
    (want === 'lifecycle' && context === 'lifecycle') ||
    (want === 'warrants' && context === 'patrol:warrants');
  return {
    schema: store.schema,
    schemaVersion: () => store.schemaVersion(),
    close: () => store.close(),
    transaction: (fn) =>
      store.transaction((tx) => {
        const touched = new Set<string>();
        let inTx = 0;
        const context = () =>
          workload.getStore()
            ? 'workload'
            : touched.has('lifecycle')
              ? 'lifecycle'
              : patrolStep !== undefined
                ? `patrol:${PATROL_STEPS[patrolStep] ?? patrolStep}`
                : 'other';
        const wrote = (collection: string) => {
          ops++;
          inTx++;
          touched.add(collection);
          const c = context();
          if (want === 'drain' || want === 'order') {
            if (draining && ++drainOps >= fromOp) freeze(`drain:${c}`, inTx);
          } else if (ops >= fromOp && matches(c)) freeze(c, inTx);
        };
        const wrapped: StoreTx = {
          get: (c, id) => tx.get(c, id),
          find: (c, i, q) => tx.find(c, i, q),
          count: (c, i, q) => tx.count(c, i, q),
          nextSequence: async (name) => {
            const n = await tx.nextSequence(name);
            wrote(`sequence:${name}`);
            return n;
          },
          insert: async (c, r) => {
            await tx.insert(c, r);
            wrote(c);
          },
          update: async (c, r) => {
            await tx.update(c, r);
            wrote(c);
          },
          delete: async (c, id) => {
            const gone = await tx.delete(c, id);
            wrote(c);
            return gone;
          },
        };
        return fn(wrapped);
      }),
  };
}

/** A small seeded generator (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const ack = (entry: Record<string, unknown>) =>
  appendFileSync(join(dir, 'acks.log'), `${JSON.stringify(entry)}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const sqlite = SqliteStore.open({ path: db });
const store =
  mode === 'run' ? freezing(sqlite, Number(fromOpArg), target) : (sqlite as unknown as Store);
const driver = createFileDriver(dir);
const town = createTown({
  store,
  driver,
  rigs: ['api', 'web'],
  gates: [timerGate()],
  polecatNames: ['toast', 'nux', 'furiosa', 'slit', 'capable', 'ace'],
  timings: {
    heartbeatMs: 25,
    patrolIntervalMs: 40,
    surveyMs: 30,
    spawnGraceMs: 5_000,
    staleAfterMs: 120_000,
    gateIntervalMs: 40,
    stopGraceMs: 10,
    drainMs: 400,
    // A request the killed process had claimed is taken over once its lease runs out.
    leaseMs: 2_000,
  },
});
const seen: TownEvent[] = [];
town.events.on('*', (e: TownEvent) => {
  if (e.type === 'patrol.started') patrolStep = e.resumedAt;
  else if (e.type === 'patrol.step')
    patrolStep = PATROL_STEPS.indexOf(e.step as (typeof PATROL_STEPS)[number]) + 1;
  else if (e.type === 'patrol.finished') patrolStep = undefined;
  if (e.type === 'rig.drained' && e.rig === 'web') draining = false;
  // A dock with nothing in flight is docked at once, without a drain.
  if (e.type === 'lifecycle.done' && e.action === 'dock' && e.target === 'web')
    void town.model.rigs.get('web').then((rig) => {
      if (rig?.drainUntil === undefined) draining = false;
    });
  if (
    e.type === 'patrol.started' ||
    e.type === 'gate.closed' ||
    e.type === 'polecat.spawned' ||
    e.type === 'rig.drained'
  )
    seen.push(e);
  if (e.type === 'warrant.executed')
    appendFileSync(
      join(dir, 'executed.log'),
      `${JSON.stringify({ warrantId: e.warrantId, outcome: e.outcome })}\n`,
    );
});

/** Finishes whatever an agent holds (an agent reporting done). */
async function finishSome(pick: () => number, all = false): Promise<void> {
  for (const rig of (await town.status()).rigs)
    for (const p of rig.polecats)
      if (p.beadId && p.session.state === 'running' && (all || pick() < 0.5))
        await town.done(p.agent, p.beadId).catch(() => undefined);
}

async function run(seed: number): Promise<void> {
  const r = rng(seed);
  await town.start();
  const rigOf = () => (r() < 0.6 ? 'api' : 'web');
  let parked = false;
  let docked = false;
  for (let round = 0; round < 40; round++) {
    const x = r();
    // Only the workload's own records are made in its context: what the town does in response
    // (slings, surveys, lifecycle work) runs outside it.
    const mine = <T>(make: () => Promise<T>) => workload.run(true, make);
    if ((target === 'drain' || target === 'order') && round === 6) {
      // Work in flight on web when it docks, so there is something to drain.
      const bead = await mine(() => town.model.beads.create({ title: 'in flight', rig: 'web' }));
      ack({ kind: 'bead', id: bead.id });
      await town.sling(bead.id, 'web').catch(() => undefined);
      await sleep(100);
      const request = await mine(() =>
        town.model.lifecycle.request({
          action: 'dock',
          target: 'web',
          requestedBy: 'crash-test',
          ...(target === 'order' ? { args: { immediate: true } } : {}),
        }),
      );
      docked = true;
      ack({ kind: 'request', id: request.id });
      writeFileSync(
        join(dir, target === 'order' ? 'order.json' : 'drain.json'),
        JSON.stringify({ request: request.id }),
      );
      // From the committed request on: its claim, the dock, the drain, the drain's end.
      draining = true;
      town.wake();
    } else if (x < 0.3) {
      const rig = rigOf();
      const bead = await mine(() => town.model.beads.create({ title: `task ${round}`, rig }));
      ack({ kind: 'bead', id: bead.id });
      await town.sling(bead.id, rig).catch(() => undefined);
    } else if (x < 0.45) {
      const a = await mine(() =>
        town.model.beads.create({ title: `convoy ${round} a`, rig: 'api' }),
      );
      const b = await mine(() =>
        town.model.beads.create({ title: `convoy ${round} b`, rig: 'web' }),
      );
      ack({ kind: 'bead', id: a.id });
      ack({ kind: 'bead', id: b.id });
      const convoy = await mine(() =>
        town.convoys.create({ title: `release ${round}`, beadIds: [a.id, b.id] }),
      );
      ack({ kind: 'convoy', id: convoy.id });
      await town.sling(a.id, 'api').catch(() => undefined);
      await town.sling(b.id, 'web').catch(() => undefined);
    } else if (x < 0.7) {
      const durationMs = 100 + Math.floor(r() * 500);
      const molecule = await mine(() =>
        town.model.molecules.create({
          name: `deploy-${round}`,
          rig: rigOf(),
          steps: [
            { name: 'cool-down', gate: { type: 'timer', spec: { durationMs } } },
            { name: 'ship' },
          ],
        }),
      );
      ack({ kind: 'molecule', id: molecule.id });
      const gate = await town.model.gates.require(molecule.waitingOn as string);
      ack({ kind: 'gate', id: gate.id, createdAt: gate.createdAt, durationMs });
    } else if (x < 0.82 && !docked && target !== 'drain') {
      const request = await mine(() =>
        town.model.lifecycle.request({
          action: parked ? 'unpark' : 'park',
          target: 'web',
          requestedBy: 'crash-test',
        }),
      );
      parked = !parked;
      ack({ kind: 'request', id: request.id });
      town.wake();
    } else {
      // A warrant against a running polecat: the next patrol's warrants step executes it.
      const busy = (await town.status()).rigs
        .flatMap((rg) => rg.polecats)
        .filter((p) => p.beadId !== undefined && p.session.state === 'running');
      const target = busy[Math.floor(r() * busy.length)];
      if (target) {
        const release = r() < 0.5 ? 'open' : 'blocked';
        const { warrant, created } = await mine(() =>
          town.warrants.file({ target: target.agent, reason: `stuck in round ${round}`, release }),
        );
        if (created) ack({ kind: 'warrant', id: warrant.id });
      }
    }
    await finishSome(r);
    await sleep(10 + Math.floor(r() * 50));
  }
  process.stdout.write('DONE\n');
  await town.stop();
  await sqlite.close();
}

/**
 * Waits (up to 20 s) until the graceful dock of web is carried out and its drain is over, and
 * says how the rig stands then: docked, no deadline left, none of its sessions running, and no
 * session spawned into it since it was docked.
 */
async function drained(requestId: string) {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(20)) {
    const request = await town.model.lifecycle.get(requestId);
    const rig = await town.model.rigs.require('web');
    if (request?.status !== 'done' || rig.state !== 'docked' || rig.drainUntil !== undefined)
      continue;
    const running = (await driver.list()).filter(
      (s) => s.state === 'running' && s.labels?.rig === 'web',
    );
    return {
      request: request.status,
      state: rig.state,
      drainUntil: rig.drainUntil ?? null,
      running: running.map((s) => s.name),
      spawnedWhileDocked: seen.filter(
        (e) => e.type === 'polecat.spawned' && e.rig === 'web' && e.at >= rig.stateChangedAt,
      ).length,
    };
  }
  const rig = await town.model.rigs.get('web');
  return {
    request: (await town.model.lifecycle.get(requestId))?.status ?? null,
    state: rig?.state ?? null,
    drainUntil: rig?.drainUntil ?? null,
    running: [],
    spawnedWhileDocked: -1,
  };
}

/**
 * Waits (up to 20 s) until both the killed dock and the undock filed after it are carried out,
 * and says in which order they finished and how the rig stands: the operator's last command
 * (undock) must be the one that holds.
 */
async function lastCommandWon(order: { dock: string; undock: string }) {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(20)) {
    const dock = await town.model.lifecycle.get(order.dock);
    const undock = await town.model.lifecycle.get(order.undock);
    if (dock?.finishedAt === undefined || undock?.finishedAt === undefined) continue;
    // A little later: a stale dock carried out after the undock would show by now.
    await sleep(300);
    const rig = await town.model.rigs.require('web');
    return {
      dock: dock.status,
      undock: undock.status,
      dockFinishedFirst: dock.finishedAt <= undock.finishedAt,
      state: rig.state,
    };
  }
  return { dock: null, undock: null, dockFinishedFirst: null, state: null };
}

async function recover(): Promise<void> {
  const startedAt = Date.now();
  const acks = existsSync(join(dir, 'acks.log'))
    ? readFileSync(join(dir, 'acks.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { kind: string; id: string })
    : [];
  // The operator's next command, made while the daemon is down (or restarting): undock.
  const order = existsSync(join(dir, 'order.json'))
    ? {
        dock: JSON.parse(readFileSync(join(dir, 'order.json'), 'utf8')).request as string,
        undock: (
          await town.model.lifecycle.request({
            action: 'undock',
            target: 'web',
            requestedBy: 'crash-test',
          })
        ).id,
      }
    : undefined;
  await town.start();
  const ordered = order ? await lastCommandWon(order) : undefined;
  const drain = existsSync(join(dir, 'drain.json'))
    ? await drained(JSON.parse(readFileSync(join(dir, 'drain.json'), 'utf8')).request as string)
    : undefined;
  if (drain) await town.rigs.undock('web');
  else if (!order) await town.rigs.unpark('web').catch(() => undefined);
  /** The acknowledged work not finished yet, with where it is. */
  const unsettled = async () => {
    const m = town.model;
    const left: string[] = [];
    for (const a of acks) {
      const status =
        a.kind === 'bead'
          ? (await m.beads.get(a.id))?.status
          : a.kind === 'molecule'
            ? (await m.molecules.get(a.id))?.status
            : a.kind === 'convoy'
              ? (await m.convoys.get(a.id))?.status
              : a.kind === 'gate'
                ? (await m.gates.get(a.id))?.status
                : a.kind === 'warrant'
                  ? (await m.warrants.get(a.id))?.status
                  : (await m.lifecycle.get(a.id))?.status;
      const done = {
        bead: ['done'],
        molecule: ['done'],
        convoy: ['closed'],
        gate: ['closed'],
        warrant: ['executed'],
      }[a.kind] ?? ['done', 'failed'];
      if (!done.includes(String(status))) left.push(`${a.kind} ${a.id}: ${status ?? 'LOST'}`);
    }
    return left;
  };
  const settled = async () => (await unsettled()).length === 0;
  let quiescent = false;
  for (const deadline = Date.now() + 40_000; Date.now() < deadline; ) {
    await finishSome(() => 0, true);
    // Work the workload could not sling (every polecat name busy) is slung now.
    for (const a of acks) {
      if (a.kind !== 'bead') continue;
      const bead = await town.model.beads.get(a.id);
      // A warrant took it off its hook as blocked: the operator puts it back to work.
      if (bead?.status === 'blocked') await town.model.beads.setStatus(bead.id, 'open');
      if ((bead?.status === 'open' || bead?.status === 'blocked') && bead.rig)
        await town.sling(bead.id, bead.rig).catch(() => undefined);
    }
    // A warrant released a molecule step's bead: its molecule waits until someone takes it up.
    for (const status of ['open', 'blocked']) {
      for (const bead of await town.model.beads.list({ status })) {
        if (!bead.labels.includes('molecule-step') || !bead.rig) continue;
        if (status === 'blocked') await town.model.beads.setStatus(bead.id, 'open');
        await town.sling(bead.id, bead.rig).catch(() => undefined);
      }
    }
    if (await settled()) {
      quiescent = true;
      break;
    }
    await sleep(50);
  }
  const left = quiescent ? [] : await unsettled();
  writeFileSync(
    join(dir, 'report.json'),
    JSON.stringify({ startedAt, quiescent, unsettled: left, events: seen, drain, ordered }),
  );
  await town.stop();
  await sqlite.close();
  process.exit(quiescent ? 0 : 2);
}

if (mode === 'run') await run(Number(seedArg));
else await recover();
