import { type AnyActorRef, assign, fromPromise, setup } from 'xstate';
import type { ChildSpec } from '../childSpec';
import { SupervisorError } from '../errors';
import {
  deleteChild,
  restartChild,
  startChild,
  terminateChild,
  whichChildren,
} from '../supervisorApi';
import { supervisor } from '../supervisorLogic';
import {
  pingWitness,
  requireWitness,
  type TownSystem,
  type WitnessPong,
  wakePatrol,
} from './actors';
import type { TownContext } from './context';
import { noticeExit } from './exits';
import {
  agentSession,
  isPolecatChild,
  polecatChildId,
  polecatName,
  WATCH_CHILD,
  watchId,
  witnessId,
} from './names';
import { polecatLogic, polecatSpec } from './polecat';
import { sessionOwners } from './sessionOwner';
import { inFlight, stopRigSessions, stopSession } from './stopSession';

interface WatchEvent {
  type: 'PING' | 'SURVEY';
  reply?: (pong: WitnessPong) => void;
}

/**
 * Stops the rig's sessions that belfry started for work no longer on a hook: the session of a
 * bead that was finished (a `done` whose stop was cut off by a crash) or taken off the hook. A
 * session without belfry's labels is not ours and is left alone.
 */
async function stopLeftovers(
  ctx: TownContext,
  rig: string,
  hooked: ReadonlyMap<string, string>,
): Promise<void> {
  for (const s of await ctx.sessions.sessionsOf(rig)) {
    const agent = s.labels?.agent;
    if (s.state !== 'running' || agent === undefined || s.labels?.bead === undefined) continue;
    if (hooked.get(agent) === s.labels.bead) continue;
    await stopSession(ctx, {
      session: s.name,
      rig,
      agent,
      reason: `its bead ${s.labels.bead} is no longer on the hook`,
    });
  }
}

/**
 * The drain of a docked rig, at each survey: past `drainUntil`, what is left is stopped (its
 * polecat actors retired first; the hooks stay); with nothing left in flight, the drain is over.
 * Either way the drain is ended in the store (once: `rig.drained`).
 *
 * @returns true while the rig still drains.
 */
async function drain(
  ctx: TownContext,
  rig: string,
  drainUntil: number,
  witness: AnyActorRef,
): Promise<boolean> {
  let stopped: string[] = [];
  if (ctx.clock.now() >= drainUntil) {
    // Stopped before the drain is ended: a crash in between stops only what still runs.
    stopped = await stopRigSessions(
      ctx,
      rig,
      `rig ${rig} docked: the drain limit passed before its work finished`,
      witness,
    );
  } else if ((await inFlight(ctx, rig)).length > 0) {
    return true;
  }
  if (await ctx.model.rigs.endDrain(rig)) ctx.emit({ type: 'rig.drained', rig, stopped });
  return false;
}

/**
 * Makes the Witness's polecat children match the rig's hooks: an operational rig gets a polecat
 * per hook; a parked or draining docked rig keeps only those whose sessions are still running
 * (in-flight work finishes, nothing new starts). A parked rig with nothing left in flight and a
 * drained docked rig wake the Deacon, which stops their Witness. It starts and deletes polecat
 * actors only, never a session: a hooked polecat's session that ended is recorded here
 * (`polecat.exited`, once per epoch) and restarted by its own actor.
 */
/** Records the end of each hooked polecat's session that is not running (once per epoch). */
async function noticeEnded(ctx: TownContext, rig: string): Promise<void> {
  const owners = sessionOwners(ctx);
  for (const hook of await ctx.model.hooks.list({ rig })) {
    const state = (await ctx.sessions.status(agentSession(hook.id))).state;
    // A session its owner is acting on is left to the owner, which records its end itself.
    if (state !== 'running' && owners.busySince(hook.id) === undefined)
      await noticeExit(ctx, hook.id);
  }
}

async function reconcile(
  ctx: TownContext,
  rig: string,
  witness: AnyActorRef,
  logic: ReturnType<typeof polecatLogic>,
  system: TownSystem,
): Promise<void> {
  const record = await ctx.model.rigs.get(rig);
  if (!record) return;
  if (record.state === 'docked') {
    // A session of the drain that ended by itself is recorded now, before the drain (which
    // may end because of it) retires this Witness.
    if (record.drainUntil !== undefined) await noticeEnded(ctx, rig);
    if (record.drainUntil === undefined || !(await drain(ctx, rig, record.drainUntil, witness))) {
      wakePatrol(system);
      return;
    }
  }
  const desired = new Map<string, string>();
  const hooks = await ctx.model.hooks.list({ rig });
  await stopLeftovers(ctx, rig, new Map(hooks.map((h) => [h.id, h.beadId])));
  await noticeEnded(ctx, rig);
  for (const hook of hooks) {
    const id = polecatChildId(polecatName(hook.id));
    const state = (await ctx.sessions.status(agentSession(hook.id))).state;
    if (record.state === 'operational' || state === 'running') desired.set(id, hook.id);
  }
  if (record.state === 'parked' && desired.size === 0) wakePatrol(system);
  const current = new Map(
    whichChildren(witness)
      .filter((c) => isPolecatChild(c.id))
      .map((c) => [c.id, c]),
  );
  for (const [id, agent] of desired) {
    const child = current.get(id);
    try {
      if (!child) await startChild(witness, polecatSpec(ctx, logic, agent, rig));
      else if (child.state === 'stopped') await restartChild(witness, id);
    } catch (error) {
      // A child that changed state meanwhile is dealt with by the next survey.
      if (!(error instanceof SupervisorError)) throw error;
    }
  }
  for (const [id, child] of current) {
    if (desired.has(id)) continue;
    try {
      if (child.state !== 'stopped') await terminateChild(witness, id);
      await deleteChild(witness, id);
    } catch (error) {
      if (!(error instanceof SupervisorError)) throw error;
    }
  }
}

const polecatLogics = new WeakMap<TownContext, ReturnType<typeof polecatLogic>>();

/** The town's polecat actor logic, one for every Witness (and for the Daemon's requests). */
function polecatLogicOf(ctx: TownContext): ReturnType<typeof polecatLogic> {
  let logic = polecatLogics.get(ctx);
  if (!logic) {
    logic = polecatLogic(ctx);
    polecatLogics.set(ctx, logic);
  }
  return logic;
}

/**
 * Asks a rig's Witness to have a polecat actor for `agent` running: started if it has none,
 * restarted if it is stopped; one that is running or waiting out its backoff is left as it is.
 * A survey starting it meanwhile is not an error.
 */
export async function startPolecat(
  ctx: TownContext,
  witness: AnyActorRef,
  agent: string,
  rig: string,
): Promise<void> {
  const id = polecatChildId(polecatName(agent));
  const child = whichChildren(witness).find((c) => c.id === id);
  try {
    if (!child) await startChild(witness, polecatSpec(ctx, polecatLogicOf(ctx), agent, rig));
    else if (child.state === 'stopped') await restartChild(witness, id);
  } catch (error) {
    if (!(error instanceof SupervisorError)) throw error;
  }
}

/**
 * A rig's Witness: a supervisor whose `watch` child surveys the rig every `surveyMs` (and on
 * demand), and whose polecat children each look after one hook's session. It answers the
 * Deacon's pings with the time of its last completed survey, so a Witness that is stuck is found.
 */
export function witnessLogic(ctx: TownContext, rig: string) {
  const polecat = polecatLogicOf(ctx);
  const watch = setup({
    types: {
      context: {} as { startedAt: number; lastSurveyAt: number | undefined },
      events: {} as WatchEvent,
    },
    actors: {
      survey: fromPromise<void, undefined>(({ system }) =>
        reconcile(ctx, rig, requireWitness(system, rig), polecat, system),
      ),
    },
    delays: { survey: () => ctx.timings.surveyMs },
  }).createMachine({
    context: () => ({ startedAt: ctx.clock.now(), lastSurveyAt: undefined }),
    initial: 'surveying',
    on: {
      PING: {
        actions: ({ context, event }) =>
          event.reply?.({ startedAt: context.startedAt, lastSurveyAt: context.lastSurveyAt }),
      },
    },
    states: {
      surveying: {
        invoke: {
          src: 'survey',
          onDone: { target: 'waiting', actions: assign({ lastSurveyAt: () => ctx.clock.now() }) },
          onError: {
            target: 'waiting',
            actions: ({ event }) =>
              console.error(`[belfry] witness ${rig}: survey failed`, event.error),
          },
        },
      },
      waiting: {
        after: { survey: 'surveying' },
        on: { SURVEY: 'surveying' },
      },
    },
  });
  return supervisor({
    strategy: 'one_for_one',
    // Polecat restarts are many and independent; the respawn limit per bead stops loops.
    maxRestarts: 1_000,
    withinMs: 60_000,
    children: [{ id: WATCH_CHILD, logic: watch, systemId: watchId(rig), shutdown: 'brutal' }],
  });
}

/** Pings a Witness: healthy when it answers and has finished a survey recently. */
async function witnessHealthy(ctx: TownContext, ref: AnyActorRef): Promise<boolean> {
  const pong = await pingWitness(ref);
  if (!pong) return false;
  const since = pong.lastSurveyAt ?? pong.startedAt;
  return ctx.clock.now() - since <= 2 * ctx.timings.surveyMs + ctx.timings.witnessPingTimeoutMs;
}

/** The child spec of a rig's Witness under the Deacon. */
export function witnessSpec(ctx: TownContext, rig: string): ChildSpec {
  const { timings } = ctx;
  return {
    id: witnessId(rig),
    logic: witnessLogic(ctx, rig),
    systemId: witnessId(rig),
    restart: 'permanent',
    shutdown: 'infinity',
    backoff: {
      minMs: Math.min(1_000, timings.patrolIntervalMs),
      maxMs: timings.patrolIntervalMs,
      factor: 2,
      jitter: 0.1,
      resetAfterMs: timings.patrolIntervalMs * 2,
    },
    probes: {
      // Pinged once a patrol cycle; one unanswered ping is the cycle of grace, the second restarts it.
      liveness: {
        check: ({ ref }) => witnessHealthy(ctx, ref),
        periodMs: timings.patrolIntervalMs,
        timeoutMs: timings.witnessPingTimeoutMs,
        failureThreshold: 2,
      },
    },
  };
}
