import type { AnyActorRef } from 'xstate';
import { SupervisorError } from '../errors';
import type { Rig } from '../model/types';
import { deleteChild, terminateChild, whichChildren } from '../supervisorApi';
import { clip } from './boundedWait';
import type { TownContext } from './context';
import { captureOutput, noticeExit } from './exits';
import { agentSession, polecatChildId, polecatName } from './names';

/** What {@link stopSession} stops, and why. */
export interface StopSessionInput {
  /** The session's name. */
  session: string;
  /** The rig it belongs to. */
  rig: string;
  /** The polecat whose session it is (`<rig>/<name>`), when it is one of belfry's. */
  agent?: string;
  /** Why it is stopped: recorded on the polecat and carried by the `polecat.stopped` event. */
  reason: string;
  /**
   * The session is stopped for a fault of its own (a hang): its next spawn counts as a respawn.
   * Every other stop is on purpose and never counts. @defaultValue false
   */
  fault?: boolean;
  /**
   * The rig's Witness: the polecat's actor is terminated first, so the stopped session is not
   * taken for a crash by its liveness probe (which would count against the Witness's restart
   * intensity). Left out by the polecat's own actor, which is the one stopping it.
   */
  witness?: AnyActorRef;
  /** Emit `polecat.stopped` (a `done` announces itself as `polecat.done`). @defaultValue true */
  announce?: boolean;
}

/** Terminates and removes a polecat's actor under its Witness, if it has one. */
export async function retirePolecat(witness: AnyActorRef, agent: string): Promise<void> {
  const id = polecatChildId(polecatName(agent));
  if (witness.getSnapshot().status !== 'active') return;
  if (!whichChildren(witness).some((c) => c.id === id)) return;
  try {
    await terminateChild(witness, id);
    await deleteChild(witness, id);
  } catch (error) {
    // A child that changed state meanwhile is dealt with by the next survey.
    if (!(error instanceof SupervisorError)) throw error;
  }
}

/**
 * Stops a session: the one way the town stops a polecat's session, so what is recorded and what
 * is done cannot diverge. A stop on purpose (a dock, a restart or stop request, a warrant,
 * `done`, leftover work) is recorded on the polecat first (`model.polecats.recordStop`), so the
 * next spawn of its bead is not counted as a respawn; a fault (a hang) is not, and counts. Then
 * the polecat's actor is retired (when `witness` is given), its last output read, the session
 * stopped with the grace period, its end recorded (`polecat.exited` as `stopped`, for a hooked
 * polecat's current session), and `polecat.stopped` emitted.
 */
export async function stopSession(ctx: TownContext, input: StopSessionInput): Promise<void> {
  const { agent, rig, session } = input;
  const reason = clip(input.reason, 500);
  if (agent !== undefined && input.fault !== true) {
    const polecat = await ctx.model.polecats.get(agent);
    if (polecat?.spawnEpoch !== undefined)
      await ctx.model.polecats.recordStop(agent, { epoch: polecat.spawnEpoch, reason });
  }
  if (agent !== undefined && input.witness) await retirePolecat(input.witness, agent);
  // Its last output is read before the stop, so the exit record says what it was doing.
  const lastOutput = agent === undefined ? [] : await captureOutput(ctx, session);
  await ctx.driver.stop(session, { graceMs: ctx.timings.stopGraceMs });
  ctx.sessions.forget(session);
  // A hooked polecat's current session ends as `stopped` (nothing for `done` or a stop request,
  // whose work left the hook first).
  if (agent !== undefined) await noticeExit(ctx, agent, { stopped: true, lastOutput });
  if (agent !== undefined && input.announce !== false)
    ctx.emit({ type: 'polecat.stopped', agent, rig, reason });
}

/**
 * Stops every running session labelled with the rig (read fresh from the driver), each through
 * {@link stopSession}, on purpose. The hooks stay, so the work resumes when the rig does.
 *
 * @returns the names of the sessions stopped.
 */
export async function stopRigSessions(
  ctx: TownContext,
  rig: string,
  reason: string,
  witness?: AnyActorRef,
): Promise<string[]> {
  const stopped: string[] = [];
  for (const s of await ctx.driver.list()) {
    if (s.state !== 'running' || s.labels?.rig !== rig) continue;
    const agent = s.labels.agent;
    await stopSession(ctx, {
      session: s.name,
      rig,
      ...(agent === undefined ? {} : { agent }),
      reason,
      ...(witness === undefined ? {} : { witness }),
    });
    stopped.push(s.name);
  }
  return stopped;
}

/**
 * The rig's work in flight: the agents whose hooked work has a running session (from the town's
 * shared reading). A parked or draining rig lets exactly these finish.
 */
export async function inFlight(ctx: TownContext, rig: string): Promise<string[]> {
  const agents: string[] = [];
  for (const hook of await ctx.model.hooks.list({ rig })) {
    const status = await ctx.sessions.status(agentSession(hook.id));
    if (status.state === 'running') agents.push(hook.id);
  }
  return agents;
}

/**
 * Whether the rig needs its Witness: an operational rig always; a docked rig while it drains
 * (the Witness watches the in-flight sessions and ends the drain); a parked rig while it has work
 * in flight. A parked rig without sessions, and a drained docked rig, cost no Witness.
 */
export async function witnessWanted(ctx: TownContext, rig: Rig): Promise<boolean> {
  if (rig.state === 'operational') return true;
  if (rig.state === 'docked') return rig.drainUntil !== undefined;
  return (await inFlight(ctx, rig.id)).length > 0;
}
