/**
 * A small supervision tree, in real time: a flaky worker that crashes every ~0.6 s, restarted
 * with backoff; a dependent worker restarted with it (rest_for_one); a heartbeat child watched
 * for hangs. Every lifecycle event is printed as it happens, then the tree shuts down
 * gracefully (children in reverse order, each within its budget) after about 3 seconds.
 */
import {
  createSupervisor,
  heartbeat,
  type SupervisorEvent,
  shutdownExit,
  supervisor,
} from '@belfry/core';
import { assign, setup } from 'xstate';

/** A worker that crashes `crashAfterMs` after it starts (never, if 0). */
const worker = setup({
  types: { input: {} as { crashAfterMs: number; drainMs: number } },
  delays: {
    crash: ({ context }) => context.crashAfterMs,
    drain: ({ context }) => context.drainMs,
  },
  actions: {
    explode: () => {
      throw new Error('disk on fire');
    },
  },
}).createMachine({
  context: ({ input }) => ({ ...input, left: false }),
  initial: 'working',
  states: {
    working: {
      always: { guard: ({ context }) => context.crashAfterMs === 0, target: 'steady' },
      after: { crash: { actions: 'explode' } },
      on: { 'belfry.shutdown': 'draining' },
    },
    steady: { on: { 'belfry.shutdown': 'draining' } },
    draining: { after: { drain: { target: 'gone', actions: assign({ left: true }) } } },
    gone: { type: 'final' },
  },
  output: () => shutdownExit(),
});

/**
 * Beats every 200 ms; the supervisor restarts it if beats stop for 300 + 300 ms. It ignores the
 * shutdown request, so at shutdown it is killed when its 300 ms budget runs out.
 */
const ticker = setup({}).createMachine({
  initial: 'beating',
  states: {
    beating: { after: { 200: { target: 'beating', reenter: true, actions: heartbeat() } } },
  },
});

const workers = supervisor({
  strategy: 'rest_for_one',
  maxRestarts: 10,
  withinMs: 5_000,
  children: [
    { id: 'db', logic: worker, input: { crashAfterMs: 0, drainMs: 50 }, shutdown: 1_000 },
    {
      id: 'flaky',
      logic: worker,
      input: { crashAfterMs: 600, drainMs: 0 },
      backoff: { minMs: 100, maxMs: 1_000, factor: 2, jitter: 0.1 },
    },
    { id: 'indexer', logic: worker, input: { crashAfterMs: 0, drainMs: 150 }, shutdown: 1_000 },
  ],
});

const town = createSupervisor({
  id: 'town',
  maxRestarts: 3,
  withinMs: 10_000,
  children: [
    {
      id: 'ticker',
      logic: ticker,
      shutdown: 300,
      probes: { heartbeat: { intervalMs: 300, graceMs: 300 } },
    },
    { id: 'workers', logic: workers },
  ],
});

const t0 = Date.now();
const describe = (e: SupervisorEvent): string => {
  switch (e.type) {
    case 'child.started':
      return `${e.childId}${e.restarts ? ` (restart #${e.restarts})` : ''}`;
    case 'child.exited': {
      const why = e.reason === 'error' ? `error: ${(e.error as Error).message}` : e.reason;
      return `${e.childId} ${why}${e.willRestart ? ' → will restart' : ''}`;
    }
    case 'child.restarting':
      return `${e.childId} (because ${e.cause} failed)`;
    case 'child.backoff':
      return `${e.childId} waits ${e.delayMs} ms`;
    case 'child.killed':
      return `${e.childId} after ${e.afterMs} ms`;
    case 'child.unhealthy':
      return `${e.childId}: ${e.error.message}`;
    case 'supervisor.started':
      return `${e.children} children`;
    case 'supervisor.stopped':
      return e.reason;
    case 'supervisor.escalated':
      return e.error.message;
    default:
      return '';
  }
};
town.events.on('*', (e) => {
  const at = `+${((e.at - t0) / 1000).toFixed(3)}s`;
  console.log(`${at.padStart(8)}  ${e.supervisor.padEnd(13)} ${e.type.padEnd(18)} ${describe(e)}`);
});

town.start();
setTimeout(async () => {
  console.log('--- asking the tree to shut down ---');
  const exit = await town.stop();
  console.log(`--- stopped: ${exit.reason} ---`);
  for (const c of town.whichChildren()) {
    console.log(`${c.id}: ${c.state}, ${c.restarts} restart(s), last exit ${c.lastExit?.reason}`);
  }
}, 3_000);

town.whenStopped().catch((err: unknown) => {
  console.error('the tree failed:', err);
  process.exitCode = 1;
});
