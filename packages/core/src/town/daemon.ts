import { type AnyActorRef, assign, fromPromise, setup } from 'xstate';
import type { LifecycleRequest } from '../model/types';
import type { JsonValue } from '../store/Store';
import { type TownSystem, wakeLifecycle, wakePatrol, witnessOf } from './actors';
import { withDeadline } from './boundedWait';
import type { TownContext } from './context';
import { incidentKey } from './incidents';
import { drainLifecycle, NotReadyYet } from './lifecycleQueue';
import { agentSession } from './names';
import { type SessionRequest, sessionOwners } from './sessionOwner';
import { stopSession } from './stopSession';
import type { Poller } from './types';
import { startPolecat } from './witness';

const SESSION_ACTIONS = ['start', 'stop', 'restart'] as const;

/** The Daemon's tick: counts, records the time, and nudges the Deacon's patrol and the lifecycle worker. */
export function heartbeatLogic(ctx: TownContext) {
  return setup({
    delays: { tick: () => ctx.timings.heartbeatMs },
    actions: {
      beat: ({ system }) => {
        ctx.daemon.heartbeatCount++;
        ctx.daemon.lastHeartbeat = ctx.clock.now();
        ctx.emit({ type: 'heartbeat', count: ctx.daemon.heartbeatCount });
        wakePatrol(system);
        wakeLifecycle(system);
      },
    },
  }).createMachine({
    initial: 'waiting',
    states: { waiting: { after: { tick: { target: 'waiting', reenter: true, actions: 'beat' } } } },
  });
}

/**
 * The Daemon's check of the Deacon, kept dumb: is the running patrol older than
 * `patrolBudgetMs`? Its age counts from the patrol's start, or from the current Deacon's start
 * when that is later (a restarted Deacon gets a whole budget to finish the resumed patrol).
 *
 * @param deaconStartedAt - when the current Deacon started.
 * @returns the overdue patrol (its step, and how long it has run), or undefined.
 */
export function overduePatrol(
  ctx: TownContext,
  deaconStartedAt: number | undefined,
): { moleculeId: string; step: string; runningMs: number } | undefined {
  const patrol = ctx.daemon.patrol;
  if (!patrol) return undefined;
  const runningMs = ctx.clock.now() - Math.max(patrol.startedAt, deaconStartedAt ?? 0);
  if (runningMs <= ctx.timings.patrolBudgetMs) return undefined;
  return { moleculeId: patrol.moleculeId, step: patrol.step, runningMs };
}

/**
 * Hands a start or restart to the session's owner, its polecat actor under the rig's Witness
 * (started or restarted first if it is not running), and waits until the owner has a session
 * running: resolves with its epoch, or rejects with the owner's reason, or once `withinMs` pass.
 */
function askOwner(
  ctx: TownContext,
  witness: AnyActorRef,
  agent: string,
  rig: string,
  ask: { restart: boolean; replaceEpoch: number | undefined },
  withinMs: number,
): Promise<number | undefined> {
  const owners = sessionOwners(ctx);
  let request: SessionRequest | undefined;
  const answered = new Promise<number | undefined>((resolve, reject) => {
    request = { ...ask, resolve, reject };
    owners.post(agent, request);
  });
  const asked = startPolecat(ctx, witness, agent, rig);
  return withDeadline(
    ctx.clock,
    asked.then(() => answered),
    withinMs,
    new AbortController(),
    () => {
      if (request) owners.withdraw(agent, request);
      return new Error(
        `${agent}'s polecat did not have a session running within the request's lease (${withinMs} ms)`,
      );
    },
  );
}

/**
 * Carries out one session request. A `stop` stops the session and puts the work back to the
 * pool. A `start` or `restart` never starts a session here: it goes to the session's one owner,
 * the polecat's actor under the rig's Witness (see `askOwner`), and completes with the epoch
 * the owner has running; it fails when the rig is not operational, the agent has no work, the
 * Witness is not running, or the owner has no session running within the request's lease.
 */
async function applySessionRequest(
  ctx: TownContext,
  system: TownSystem,
  request: LifecycleRequest,
): Promise<JsonValue> {
  const { model, driver } = ctx;
  const agent = request.target;
  const polecat = await model.polecats.get(agent);
  if (!polecat) throw new Error(`no polecat ${agent}`);
  const session = agentSession(agent);
  const witness = witnessOf(system, polecat.rig);
  const stop = (reason: string) =>
    stopSession(ctx, {
      session,
      rig: polecat.rig,
      agent,
      reason,
      ...(witness === undefined ? {} : { witness }),
    });
  if (request.action === 'stop') {
    // The work goes back to the pool first; otherwise the Witness would restart the session.
    // A crash before the stop leaves a session whose bead is off the hook: the Witness stops it.
    if (await model.hooks.get(agent)) await model.hooks.detach(agent, { status: 'open' });
    await stop(`lifecycle request ${request.id}: stop`);
    return { stopped: session };
  }
  const rig = await model.rigs.require(polecat.rig);
  if (rig.state !== 'operational')
    throw new Error(`rig ${rig.id} is ${rig.state}; its sessions are not started`);
  if (!(await model.hooks.get(agent))) throw new Error(`${agent} has no work on its hook`);
  // The rig is operational, so its Witness starts at the next patrol (which wakes this worker):
  // the request waits for it rather than fail.
  if (witness?.getSnapshot().status !== 'active')
    throw new NotReadyYet(
      `the Witness of rig ${rig.id}, which owns its sessions, is not running yet`,
    );
  const restart = request.action === 'restart';
  const before = restart ? await driver.status(session) : undefined;
  const now = ctx.clock.now();
  const withinMs = Math.max(0, (request.claim?.expiresAt ?? now + ctx.timings.leaseMs) - now);
  const epoch = await askOwner(
    ctx,
    witness,
    agent,
    rig.id,
    { restart, replaceEpoch: before?.state === 'running' ? before.epoch : undefined },
    withinMs,
  );
  return { session, outcome: 'running', epoch: epoch ?? null };
}

async function processSessionRequests(ctx: TownContext, system: TownSystem): Promise<void> {
  await drainLifecycle(ctx, 'daemon', SESSION_ACTIONS, (request) =>
    applySessionRequest(ctx, system, request),
  );
}

/**
 * Carries out session lifecycle requests (start, stop, restart) from the durable queue, claim
 * then act; woken by each heartbeat and by `town.wake()`, and on its own every heartbeat period.
 */
export function lifecycleLogic(ctx: TownContext) {
  return setup({
    types: { context: {} as { again: boolean }, events: {} as { type: 'WAKE' } },
    actors: {
      process: fromPromise<void, undefined>(({ system }) => processSessionRequests(ctx, system)),
    },
    delays: { poll: () => ctx.timings.heartbeatMs },
    guards: { again: ({ context }) => context.again },
  }).createMachine({
    context: { again: false },
    initial: 'processing',
    states: {
      processing: {
        entry: assign({ again: false }),
        // A wake while it works (a Witness came up for a waiting request) is kept, not lost:
        // it goes through the queue once more right after.
        on: { WAKE: { actions: assign({ again: true }) } },
        invoke: {
          src: 'process',
          onDone: [{ guard: 'again', target: 'processing', reenter: true }, { target: 'idle' }],
          onError: {
            target: 'idle',
            actions: ({ event }) =>
              console.error('[belfry] lifecycle processing failed', event.error),
          },
        },
      },
      idle: { on: { WAKE: 'processing' }, after: { poll: 'processing' } },
    },
  });
}

/**
 * A user poller on its own interval. Each run gets an abort signal, aborted when the run takes
 * longer than the poller's `timeoutMs` (then it counts as failed) or when the town stops. A
 * failure is reported once per incident and never stops the poller.
 */
export function pollerLogic(ctx: TownContext, poller: Poller) {
  const timeoutMs = poller.timeoutMs ?? poller.intervalMs;
  const runOnce = async (rig: string | undefined, stopping: AbortSignal) => {
    const key = incidentKey({
      kind: 'poller',
      name: poller.name,
      ...(rig === undefined ? {} : { rig }),
    });
    const abort = new AbortController();
    const onStop = () => abort.abort();
    stopping.addEventListener('abort', onStop, { once: true });
    try {
      await withDeadline(
        ctx.clock,
        Promise.resolve().then(() =>
          poller.run({
            now: ctx.clock.now(),
            signal: abort.signal,
            ...(rig === undefined ? {} : { rig }),
          }),
        ),
        timeoutMs,
        abort,
        () => new Error(`did not finish within ${timeoutMs} ms (aborted)`),
      );
      // It works again: an earlier failure is over, and a later one is a new incident.
      await ctx.model.reports.resolve(key);
    } catch (cause) {
      if (stopping.aborted) return;
      const error = cause instanceof Error ? cause : new Error(String(cause));
      ctx.emit({
        type: 'poller.failed',
        poller: poller.name,
        ...(rig === undefined ? {} : { rig }),
        error,
      });
      await ctx.report({
        incidentKey: key,
        severity: 'low',
        title: `poller ${poller.name}${rig === undefined ? '' : ` (rig ${rig})`} failed: ${error.message}`,
        source: 'daemon',
      });
    } finally {
      stopping.removeEventListener('abort', onStop);
    }
  };
  return setup({
    actors: {
      run: fromPromise<void, undefined>(async ({ signal }) => {
        if (!poller.perRig) return runOnce(undefined, signal);
        for (const rig of await ctx.model.rigs.list({ state: 'operational' })) {
          if (signal.aborted) return;
          await runOnce(rig.id, signal);
        }
      }),
    },
    delays: { interval: () => poller.intervalMs },
  }).createMachine({
    initial: 'waiting',
    states: {
      waiting: { after: { interval: 'running' } },
      running: { invoke: { src: 'run', onDone: 'waiting', onError: 'waiting' } },
    },
  });
}
