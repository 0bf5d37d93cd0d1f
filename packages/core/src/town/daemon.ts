import { type ActorSystem, type AnyActorRef, fromPromise, setup } from 'xstate';
import type { LifecycleRequest } from '../model/types';
import type { JsonValue } from '../store/Store';
import {
  drainLifecycle,
  polecatName,
  sessionName,
  type TownContext,
  withDeadline,
} from './context';
import { ensureSession } from './polecat';
import { stopSession } from './stopSession';
import type { Poller } from './types';
import { witnessId } from './witness';

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
        (system.get('deacon-patrol') as AnyActorRef | undefined)?.send({ type: 'HEARTBEAT' });
        (system.get('lifecycle') as AnyActorRef | undefined)?.send({ type: 'WAKE' });
      },
    },
  }).createMachine({
    initial: 'waiting',
    states: { waiting: { after: { tick: { target: 'waiting', reenter: true, actions: 'beat' } } } },
  });
}

/**
 * Carries out one session request. The stops are on purpose (`stopSession`): the polecat's actor
 * is retired first and the stop recorded, so neither the new session of a restart nor a later
 * one counts as a respawn of the bead, nor the stop as a failure under the Witness.
 */
async function applySessionRequest(
  ctx: TownContext,
  // biome-ignore lint/suspicious/noExplicitAny: xstate's own AnyActorSystem
  system: ActorSystem<any>,
  request: LifecycleRequest,
): Promise<JsonValue> {
  const { model, driver } = ctx;
  const agent = request.target;
  const polecat = await model.polecats.get(agent);
  if (!polecat) throw new Error(`no polecat ${agent}`);
  const session = sessionName(polecat.rig, polecatName(agent));
  const witness = system.get(witnessId(polecat.rig)) as AnyActorRef | undefined;
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
  // An operator's restart is not the bead's fault: the stop is recorded, so the new session does
  // not count against its respawn limit.
  if (request.action === 'restart') await stop(`lifecycle request ${request.id}: restart`);
  const outcome = await ensureSession(ctx, { agent, rig: polecat.rig });
  const status = await driver.status(session);
  return { session, outcome: outcome ?? 'running', epoch: status.epoch ?? null };
}

async function processSessionRequests(
  ctx: TownContext,
  // biome-ignore lint/suspicious/noExplicitAny: xstate's own AnyActorSystem
  system: ActorSystem<any>,
): Promise<void> {
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
    types: { events: {} as { type: 'WAKE' } },
    actors: {
      process: fromPromise<void, undefined>(({ system }) => processSessionRequests(ctx, system)),
    },
    delays: { poll: () => ctx.timings.heartbeatMs },
  }).createMachine({
    initial: 'processing',
    states: {
      processing: {
        invoke: {
          src: 'process',
          onDone: 'idle',
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
    const key = `poller:${poller.name}${rig === undefined ? '' : `:${rig}`}`;
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
