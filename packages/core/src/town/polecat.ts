import { fromPromise } from 'xstate';
import type { ChildSpec } from '../childSpec';
import { isSessionName } from '../driver/checks';
import { DriverError } from '../errors';
import { polecatName, sessionName, type TownContext } from './context';

/**
 * How a polecat actor ended: it does not end while its session is being looked after.
 * `warranted`: a warrant against the agent is being executed for this work; no new session.
 */
export type PolecatOutcome =
  | 'no-hook'
  | 'rig-not-operational'
  | 'escalated'
  | 'stopped'
  | 'warranted';

export interface PolecatInput {
  agent: string;
  rig: string;
}

/**
 * Takes a bead off its hook as `blocked` and reports it once: the bead keeps killing (or never
 * starts) its polecat, so respawning it again would only loop.
 */
async function giveUp(
  ctx: TownContext,
  agent: string,
  rig: string,
  beadId: string,
  respawns: number,
  why: string,
): Promise<'escalated'> {
  await ctx.model.hooks.detach(agent, { status: 'blocked' });
  ctx.emit({ type: 'polecat.escalated', agent, rig, beadId, respawns });
  await ctx.report({
    incidentKey: `respawn-limit:${beadId}`,
    severity: 'high',
    title: `bead ${beadId} ${why}; taken off ${agent}'s hook as blocked`,
    details: { agent, rig, beadId, respawns: respawns - 1, why },
    source: `witness-${rig}`,
  });
  return 'escalated';
}

/**
 * Makes sure a polecat's hook has a healthy session, once:
 * - a running, healthy session of this hook's bead is adopted whatever its epoch (never kill a
 *   healthy agent); a session left from other work (a `done` cut off by a crash) is stopped;
 * - a hung session (running, no activity past the grace) in an operational rig is stopped;
 * - a parked or docked rig gets no new session (the operator wins): its state is read again
 *   right before a spawn, and a spawn whose actor was stopped meanwhile is undone;
 * - a new session claims its epoch in the store first, then starts, then is primed;
 * - past `maxRespawns` respawns (or failed starts) of the same bead, the bead leaves the hook as
 *   `blocked` and is escalated, instead of looping;
 * - work whose warrant is being executed gets no new session.
 *
 * @returns undefined when a session is running, or why the polecat has nothing to run.
 */
export async function ensureSession(
  ctx: TownContext,
  input: PolecatInput,
  options: { countRespawn?: boolean; signal?: AbortSignal } = {},
): Promise<PolecatOutcome | undefined> {
  const { model, driver, timings } = ctx;
  const { agent, rig } = input;
  const { signal } = options;
  const session = sessionName(rig, polecatName(agent));
  const hook = await model.hooks.get(agent);
  if (!hook) return 'no-hook';
  if (!isSessionName(session))
    // No driver takes it, and retrying cannot help: off the hook at once, reported.
    return giveUp(
      ctx,
      agent,
      rig,
      hook.beadId,
      1,
      `cannot get a session named ${JSON.stringify(session)} (rig names are 1 to 32 letters, digits, '_' or '-')`,
    );
  const status = await driver.status(session);
  if (status.state === 'running') {
    const labels = status.labels;
    const otherWork =
      labels !== undefined &&
      ((labels.agent !== undefined && labels.agent !== agent) ||
        (labels.bead !== undefined && labels.bead !== hook.beadId));
    const rigRecord = await model.rigs.require(rig);
    if (!otherWork && (ctx.healthy(status) || rigRecord.state !== 'operational')) {
      // Adopt it: after a restart of the Witness or the town, the session is the truth. A
      // parked rig's in-flight work is left to finish even when it looks stale.
      const polecat = await model.polecats.get(agent);
      if (
        status.epoch !== undefined &&
        polecat?.spawnEpoch === status.epoch &&
        polecat.spawnStartedAt === undefined
      ) {
        // Our own spawn, cut off after the session started: finish it (prime, then record).
        const bead = await model.beads.require(hook.beadId);
        await driver.nudge(session, ctx.prime({ polecat, bead, session }));
        await model.polecats.markStarted(agent, status.epoch);
        ctx.emit({ type: 'polecat.adopted', agent, rig, beadId: hook.beadId, epoch: status.epoch });
        return undefined;
      }
      if (status.epoch !== undefined && polecat?.spawnEpoch !== status.epoch)
        await model.polecats.markStarted(agent, status.epoch);
      ctx.emit({ type: 'polecat.adopted', agent, rig, beadId: hook.beadId, epoch: status.epoch });
      return undefined;
    }
    await driver.stop(session, { graceMs: timings.stopGraceMs });
    ctx.sessions.forget(session);
    ctx.emit({
      type: 'polecat.stopped',
      agent,
      rig,
      reason: otherWork ? `the session held other work (${labels?.bead})` : 'hung: no activity',
    });
  }
  // Read again: the rig may have been parked or docked while a session was being stopped.
  if ((await model.rigs.require(rig)).state !== 'operational') return 'rig-not-operational';
  if (signal?.aborted) return 'stopped';
  // The Deacon is executing a warrant for this very work (stopped its session, perhaps crashed
  // before recording it): an operator's stop is not a crash, so nothing is respawned.
  const warrant = await model.warrants.pendingFor(agent);
  if (
    warrant?.stoppingAt !== undefined &&
    warrant.beadId === hook.beadId &&
    warrant.hookEpoch === hook.epoch
  )
    return 'warranted';
  /** Counts one more try of the bead; past the limit, gives the bead up. */
  const countTry = async (why: (tries: number) => string) => {
    const respawns = await model.respawns.increment(hook.beadId);
    return respawns > timings.maxRespawns
      ? giveUp(ctx, agent, rig, hook.beadId, respawns, why(respawns - 1))
      : undefined;
  };
  const { epoch, respawn } = await model.polecats.beginSpawn(agent, hook.beadId);
  if (respawn && options.countRespawn !== false) {
    const outcome = await countTry((n) => `keeps killing its polecat: ${n} respawns`);
    if (outcome) return outcome;
  }
  const polecat = await model.polecats.get(agent);
  const bead = await model.beads.require(hook.beadId);
  const agentContext = {
    polecat: polecat ?? { id: agent, rig, name: polecatName(agent), createdAt: 0 },
    bead,
    session,
  };
  const launch = ctx.launch(agentContext);
  try {
    await driver.start({
      name: session,
      epoch,
      command: launch.command,
      ...(launch.cwd === undefined ? {} : { cwd: launch.cwd }),
      ...(launch.env === undefined ? {} : { env: launch.env }),
      labels: { rig, agent, bead: hook.beadId, hookEpoch: String(hook.epoch) },
    });
  } catch (error) {
    ctx.sessions.forget(session);
    // Someone (the Daemon's restart, another Witness instance) started it meanwhile: adopt that.
    if (error instanceof DriverError && error.code === 'EXISTS')
      return ensureSession(ctx, input, options);
    // A start that fails counts like a respawn: a bead whose session never starts is escalated
    // after the same number of tries, not retried forever.
    const last = error instanceof Error ? error.message : String(error);
    const outcome = await countTry(
      (n) => `cannot start its session: ${n} tries failed (last: ${last})`,
    );
    if (outcome) return outcome;
    throw error;
  }
  ctx.sessions.forget(session);
  // Stopped while starting (a dock, a retire): undo the spawn if the rig no longer takes one.
  if (signal?.aborted && (await model.rigs.require(rig)).state !== 'operational') {
    await driver.stop(session, { graceMs: timings.stopGraceMs });
    ctx.emit({
      type: 'polecat.stopped',
      agent,
      rig,
      reason: 'the rig was parked or docked while it started',
    });
    return 'rig-not-operational';
  }
  // Prime before recording the start: a crash in between primes again on adoption (at least
  // once), where the other order could leave an agent never primed.
  await driver.nudge(session, ctx.prime(agentContext));
  await model.polecats.markStarted(agent, epoch);
  ctx.emit({ type: 'polecat.spawned', agent, rig, beadId: hook.beadId, epoch, respawn });
  return undefined;
}

/**
 * A polecat as actor logic: ensures its session, then waits until stopped. Stopping the actor
 * never stops the session (a Witness restart re-attaches to it); the session is stopped only by
 * `done`, a dock, a warrant or a hang.
 */
export function polecatLogic(ctx: TownContext) {
  return fromPromise<PolecatOutcome, PolecatInput>(async ({ input, signal }) => {
    const outcome = await ensureSession(ctx, input, { signal });
    if (outcome) return outcome;
    if (signal.aborted) return 'stopped';
    await new Promise<void>((resolve) =>
      signal.addEventListener('abort', () => resolve(), { once: true }),
    );
    return 'stopped';
  });
}

/** The child spec of a polecat under its Witness. */
export function polecatSpec(
  ctx: TownContext,
  logic: ReturnType<typeof polecatLogic>,
  agent: string,
  rig: string,
): ChildSpec {
  const { timings } = ctx;
  const session = sessionName(rig, polecatName(agent));
  return {
    id: `polecat-${polecatName(agent)}`,
    logic,
    input: { agent, rig },
    // A polecat that ends normally (its work is done, the rig is parked, it was escalated) is
    // not restarted; one that fails, or whose session dies or hangs, is.
    restart: 'transient',
    shutdown: 'brutal',
    backoff: {
      minMs: Math.min(1_000, timings.surveyMs),
      maxMs: Math.max(timings.surveyMs, timings.surveyMs * 4),
      factor: 2,
      jitter: 0.1,
      resetAfterMs: timings.spawnGraceMs * 2,
    },
    probes: {
      liveness: {
        // Two readings in a row: one hiccup of the driver does not restart a healthy agent.
        check: async () => ctx.healthy(await ctx.sessions.status(session)),
        periodMs: timings.surveyMs,
        timeoutMs: Math.max(1_000, Math.floor(timings.surveyMs / 2)),
        failureThreshold: 2,
      },
    },
  };
}
