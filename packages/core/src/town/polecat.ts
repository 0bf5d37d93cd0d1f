import { fromPromise } from 'xstate';
import type { ChildSpec } from '../childSpec';
import { isSessionName } from '../driver/checks';
import { DriverError } from '../errors';
import { callHook, errorMessage } from './boundedWait';
import type { TownContext } from './context';
import { noticeExit } from './exits';
import { incidentKey } from './incidents';
import { agentSession, polecatChildId, polecatName, witnessId } from './names';
import { type SessionRequest, sessionOwners } from './sessionOwner';
import { stopSession } from './stopSession';
import type { AgentContext } from './types';

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
    incidentKey: incidentKey({ kind: 'respawn-limit', beadId }),
    severity: 'high',
    title: `bead ${beadId} ${why}; taken off ${agent}'s hook as blocked`,
    details: { agent, rig, beadId, respawns: respawns - 1, why },
    source: witnessId(rig),
  });
  return 'escalated';
}

/** The text that primes a session: the agent's `prime` hook, bounded by `callTimeoutMs`. */
function primeText(ctx: TownContext, agentContext: AgentContext): Promise<string> {
  return callHook(ctx, "the agent's prime hook", (signal) => ctx.prime(agentContext, { signal }));
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
 *   `blocked` and is escalated, instead of looping. Only crashes and hangs count: a session the
 *   town stopped on purpose (`stopSession`) is not a respawn when it comes back;
 * - a session that ended is recorded (`polecat.exited`, with its last output) before anything
 *   replaces it; `replaceEpoch` (a restart request) stops the running session of that epoch on
 *   purpose first, recorded the same way;
 * - work whose warrant is being executed gets no new session.
 *
 * Only a polecat's actor calls it, inside its owner's lock: it is the one place that starts a
 * session (see {@link polecatLogic}).
 *
 * @returns undefined when a session is running, or why the polecat has nothing to run.
 */
async function ensureSession(
  ctx: TownContext,
  input: PolecatInput,
  options: { signal?: AbortSignal; replaceEpoch?: number } = {},
): Promise<PolecatOutcome | undefined> {
  const { model, driver, timings } = ctx;
  const { agent, rig } = input;
  const { signal } = options;
  const session = agentSession(agent);
  const hook = await model.hooks.get(agent);
  if (!hook) return 'no-hook';
  /** Counts one more try of the bead; past the limit, gives the bead up. */
  const countTry = async (why: (tries: number) => string) => {
    const respawns = await model.respawns.increment(hook.beadId);
    return respawns > timings.maxRespawns
      ? giveUp(ctx, agent, rig, hook.beadId, respawns, why(respawns - 1))
      : undefined;
  };
  /** A prime hook that fails counts as a failed start: the session exists but never got work. */
  const primeFailed = async (error: unknown) => {
    const last = errorMessage(error);
    return countTry((n) => `cannot prime its session: ${n} tries failed (last: ${last})`);
  };
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
  const replace =
    status.state === 'running' &&
    options.replaceEpoch !== undefined &&
    status.epoch === options.replaceEpoch;
  if (replace) await stopSession(ctx, { session, rig, agent, reason: 'restart request' });
  else if (status.state === 'running') {
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
        let text: string;
        try {
          text = await primeText(ctx, { polecat, bead, session });
        } catch (error) {
          const outcome = await primeFailed(error);
          if (outcome) return outcome;
          throw error;
        }
        await driver.nudge(session, text);
        await model.polecats.markStarted(agent, status.epoch, status.host);
        ctx.emit({ type: 'polecat.adopted', agent, rig, beadId: hook.beadId, epoch: status.epoch });
        return undefined;
      }
      if (
        status.epoch !== undefined &&
        (polecat?.spawnEpoch !== status.epoch || polecat.spawnHost !== status.host)
      )
        await model.polecats.markStarted(agent, status.epoch, status.host);
      ctx.emit({ type: 'polecat.adopted', agent, rig, beadId: hook.beadId, epoch: status.epoch });
      return undefined;
    }
    // A hang is the session's own fault and its respawn counts; other work left in the session
    // (a `done` cut off by a crash) is stopped on purpose.
    await stopSession(ctx, {
      session,
      rig,
      agent,
      reason: otherWork ? `the session held other work (${labels?.bead})` : 'hung: no activity',
      fault: !otherWork,
    });
  } else await noticeExit(ctx, agent);
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
  const { epoch, respawn } = await model.polecats.beginSpawn(agent, hook.beadId);
  // A respawn is a spawn after a crash: a stop on purpose (a dock, a restart request, `done`) was
  // recorded on the polecat, and `beginSpawn` does not call the next spawn a respawn.
  if (respawn) {
    const outcome = await countTry((n) => `keeps killing its polecat: ${n} respawns`);
    if (outcome) return outcome;
  }
  const polecat = await model.polecats.get(agent);
  const bead = await model.beads.require(hook.beadId);
  /** What runs the new session (the driver's answer to start). */
  let host: string | undefined;
  const agentContext = {
    polecat: polecat ?? { id: agent, rig, name: polecatName(agent), createdAt: 0 },
    bead,
    session,
  };
  try {
    // A launch hook that fails or does not answer is a failed start like a driver's.
    const launch = await callHook(ctx, "the agent's launch hook", (signal) =>
      ctx.launch(agentContext, { signal }),
    );
    host = (
      await driver.start({
        name: session,
        epoch,
        command: launch.command,
        ...(launch.cwd === undefined ? {} : { cwd: launch.cwd }),
        // The agent learns who it is and what it works on (`belfry done` reads them).
        env: { ...(launch.env ?? {}), BELFRY_AGENT: agent, BELFRY_BEAD: hook.beadId },
        labels: { rig, agent, bead: hook.beadId, hookEpoch: String(hook.epoch) },
      })
    )?.host;
  } catch (error) {
    ctx.sessions.forget(session);
    // Someone (the Daemon's restart, another Witness instance) started it meanwhile: adopt that.
    if (error instanceof DriverError && error.code === 'EXISTS')
      return ensureSession(ctx, input, options);
    // The driver's host is unavailable (a tmux server that died while it started): not the
    // bead's fault, so not one of its tries; the actor fails and its supervisor retries it.
    if (error instanceof DriverError && error.code === 'UNAVAILABLE') throw error;
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
    await stopSession(ctx, {
      session,
      rig,
      agent,
      reason: 'the rig was parked or docked while it started',
    });
    return 'rig-not-operational';
  }
  // Prime before recording the start: a crash in between primes again on adoption (at least
  // once), where the other order could leave an agent never primed.
  let text: string;
  try {
    text = await primeText(ctx, agentContext);
  } catch (error) {
    const outcome = await primeFailed(error);
    if (outcome) return outcome;
    throw error;
  }
  await driver.nudge(session, text);
  await model.polecats.markStarted(agent, epoch, host);
  ctx.emit({ type: 'polecat.spawned', agent, rig, beadId: hook.beadId, epoch, respawn });
  return undefined;
}

/** What a request is told when the polecat has nothing to run. */
const OUTCOME_REASONS: Record<PolecatOutcome, string> = {
  'no-hook': 'it has no work on its hook',
  'rig-not-operational': 'its rig is parked or docked',
  escalated: 'its bead was escalated and taken off its hook',
  stopped: 'its polecat was stopped',
  warranted: 'a warrant against its work is being executed',
};

/**
 * A polecat as actor logic: the one owner of its session. It ensures the session, then waits
 * until stopped or until the Daemon hands it a `start` or `restart` request, which it carries
 * out the same way (a restart first stops the session it replaces). Each step runs inside the
 * agent's owner lock, so an actor restarted by its supervisor acts only after the step of the
 * one it replaces. Stopping the actor never stops the session (a Witness restart re-attaches to
 * it); the session is stopped only by `done`, a dock, a warrant, a hang or a restart request.
 */
export function polecatLogic(ctx: TownContext) {
  return fromPromise<PolecatOutcome, PolecatInput>(async ({ input, signal }) => {
    const owners = sessionOwners(ctx);
    const { agent } = input;
    let wake: () => void = () => {};
    const unlisten = owners.listen(agent, () => wake());
    try {
      let requests: SessionRequest[] = owners.take(agent);
      for (;;) {
        const restart = requests.find((r) => r.restart);
        let outcome: PolecatOutcome | undefined;
        try {
          outcome = await owners.exclusive(agent, () =>
            ensureSession(ctx, input, {
              signal,
              // An operator's restart is not the bead's fault: the session it replaces is stopped
              // on purpose (recorded), so the new one does not count against its respawn limit.
              ...(restart
                ? {
                    ...(restart.replaceEpoch === undefined
                      ? {}
                      : { replaceEpoch: restart.replaceEpoch }),
                  }
                : {}),
            }),
          );
        } catch (error) {
          const why = new Error(`starting the session failed: ${errorMessage(error)}`);
          for (const r of requests) r.reject(why);
          throw error;
        }
        if (outcome === 'stopped' && signal.aborted) {
          // Stopped before acting: the actor that replaces this one takes them.
          owners.requeue(agent, requests);
          return outcome;
        }
        if (outcome) {
          const why = new Error(`${agent} gets no session: ${OUTCOME_REASONS[outcome]}`);
          for (const r of requests) r.reject(why);
          return outcome;
        }
        if (requests.length > 0) {
          const epoch = (await ctx.model.polecats.get(agent))?.spawnEpoch;
          for (const r of requests) r.resolve(epoch);
        }
        if (signal.aborted) return 'stopped';
        requests = owners.take(agent);
        if (requests.length > 0) continue;
        await new Promise<void>((resolve) => {
          const onAbort = () => resolve();
          wake = () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          };
          signal.addEventListener('abort', onAbort, { once: true });
        });
        wake = () => {};
        if (signal.aborted) return 'stopped';
        requests = owners.take(agent);
      }
    } finally {
      unlisten();
    }
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
  const session = agentSession(agent);
  return {
    id: polecatChildId(polecatName(agent)),
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
        // A session its owner is acting on (stopping, starting) is not judged meanwhile, for
        // at most the spawn grace. One that ended is recorded at once, before the restart.
        check: async () => {
          const status = await ctx.sessions.status(session);
          const busySince = sessionOwners(ctx).busySince(agent);
          if (busySince !== undefined && ctx.clock.now() - busySince < timings.spawnGraceMs)
            return true;
          if (status.state !== 'running') await noticeExit(ctx, agent);
          return ctx.healthy(status);
        },
        periodMs: timings.surveyMs,
        timeoutMs: Math.max(1_000, Math.floor(timings.surveyMs / 2)),
        failureThreshold: 2,
      },
    },
  };
}
