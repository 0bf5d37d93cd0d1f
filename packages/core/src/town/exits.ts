import { EXIT_OUTPUT_LINES } from '../model/Polecats';
import type { PolecatExit } from '../model/types';
import type { TownContext } from './context';
import { incidentKey } from './incidents';
import { sessionName, witnessId } from './names';

/**
 * Records and announces (`polecat.exited`) how a hooked polecat's session ended, once per epoch,
 * with its last lines of output captured first: call it before anything restarts or replaces
 * the session. Every path that sees an ended session calls it (the polecat's liveness probe, the
 * Witness's survey, the polecat starting a new session, a stop on purpose); the store keeps the
 * first record of an epoch and the others change nothing.
 *
 * Only the session of the polecat's current spawn counts: its epoch is the last one claimed, it
 * was seen started, and it worked on the bead still on the hook. A `missing` session is taken as
 * that spawn's (nothing else is left to tell). A session that is running is not an exit.
 *
 * @param options.stopped - the town stopped it on purpose (`reason: 'stopped'`).
 * @param options.lastOutput - output captured before a stop; read from the driver otherwise.
 * @returns the exit when this call recorded it, else undefined.
 */
export async function noticeExit(
  ctx: TownContext,
  agent: string,
  options: { stopped?: boolean; lastOutput?: readonly string[] } = {},
): Promise<PolecatExit | undefined> {
  const { model } = ctx;
  const polecat = await model.polecats.get(agent);
  if (polecat?.spawnEpoch === undefined || polecat.spawnStartedAt === undefined) return undefined;
  if ((polecat.lastExit?.epoch ?? -1) >= polecat.spawnEpoch) return undefined;
  const hook = await model.hooks.get(agent);
  if (!hook || hook.beadId !== polecat.spawnBeadId) return undefined;
  const session = sessionName(polecat.rig, polecat.name);
  // Read again from the driver, after the record: a survey's reading may predate a new start,
  // and a session seen started in the record but not running now has really ended.
  const status = await ctx.driver.status(session);
  if (status.state === 'running') return undefined;
  const epoch = status.state === 'missing' ? polecat.spawnEpoch : status.epoch;
  if (epoch !== polecat.spawnEpoch) return undefined;
  const lastOutput = options.lastOutput ?? (await captureOutput(ctx, session));
  // Missing from another host than the one that ran it (or with none running): it went with its
  // host (a tmux server's death), which is not the agent's doing.
  const lostWith =
    status.state === 'missing' &&
    polecat.spawnHost !== undefined &&
    status.host !== polecat.spawnHost
      ? polecat.spawnHost
      : undefined;
  // A session the town just stopped may be gone altogether (tmux kills the session): it was
  // stopped, not lost, and the driver can no longer say with what.
  const exit: PolecatExit =
    status.state === 'missing' && !options.stopped
      ? {
          epoch,
          beadId: hook.beadId,
          reason: lostWith === undefined ? 'missing' : 'lost',
          exitCode: null,
          signal: null,
          at: ctx.clock.now(),
          lastOutput,
        }
      : {
          epoch,
          beadId: hook.beadId,
          reason: options.stopped ? 'stopped' : 'exited',
          exitCode: status.exitCode ?? null,
          signal: status.signal ?? null,
          at: status.exitedAt ?? ctx.clock.now(),
          lastOutput,
        };
  const { recorded, polecat: stored } = await model.polecats.recordExit(agent, exit);
  if (!recorded || !stored.lastExit) return undefined;
  const recordedExit = stored.lastExit;
  if (recordedExit.reason === 'lost' && lostWith !== undefined)
    await ctx.report({
      incidentKey: incidentKey({ kind: 'session-host-lost', host: lostWith }),
      severity: 'high',
      title: `the sessions' host ${lostWith} is gone (a tmux server that died, a reboot): its sessions were lost with it and are started again, not counted as respawns`,
      details: { host: lostWith, firstAgent: agent, rig: polecat.rig },
      source: witnessId(polecat.rig),
    });
  ctx.emit({
    type: 'polecat.exited',
    agent,
    rig: polecat.rig,
    beadId: recordedExit.beadId,
    epoch: recordedExit.epoch,
    reason: recordedExit.reason,
    exitCode: recordedExit.exitCode,
    signal: recordedExit.signal,
    exitedAt: recordedExit.at,
    lastOutput: recordedExit.lastOutput,
  });
  return recordedExit;
}

/**
 * The session's last lines of output, or none when the driver has nothing left (a `missing`
 * session) or fails to say: the exit is recorded either way.
 */
export async function captureOutput(ctx: TownContext, session: string): Promise<string[]> {
  try {
    return await ctx.driver.capture(session, { lines: EXIT_OUTPUT_LINES });
  } catch {
    return [];
  }
}
