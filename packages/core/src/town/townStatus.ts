import type { SessionStatus } from '../driver/SessionDriver';
import type { Supervisor } from '../Supervisor';
import { whichChildren } from '../supervisorApi';
import type { ChildInfo } from '../types';
import { deaconOf } from './actors';
import { errorMessage } from './boundedWait';
import type { TownContext } from './context';
import { polecatChildId, SYSTEM, sessionName, witnessId } from './names';
import type { PolecatStatus, RigStatus, TownStatus } from './types';

/** Lines of a polecat's last output that `status()` shows with its last exit. */
const STATUS_OUTPUT_LINES = 5;

/**
 * The whole tree as data, read from the running tree, the records and one `driver.list()`:
 * the Daemon, the Deacon (restarts, crash loop, the running patrol), each rig with its Witness
 * and polecats (session, last exit), and the counts of open gates, convoys and lifecycle requests.
 *
 * @param root - the town's root supervisor (the Daemon).
 * @param facts - what only the facade knows: whether the tree runs, and whether the Deacon is in
 *   a crash loop (asked last, at the time the status is taken).
 */
export async function townStatus(
  ctx: TownContext,
  root: Supervisor,
  facts: { running: boolean; crashLoop: () => boolean },
): Promise<TownStatus> {
  const { running } = facts;
  const top = running ? root.whichChildren() : [];
  const deaconInfo = top.find((c) => c.id === SYSTEM.deacon);
  const deacon = deaconOf(root.actor.system);
  const deaconChildren: ChildInfo[] =
    deacon && deacon.getSnapshot().status === 'active' ? whichChildren(deacon) : [];
  // A driver whose list() fails or does not settle (bounded by callTimeoutMs) leaves the
  // sessions unknown, with the reason; the rest of the status is still answered.
  let sessions: Map<string, SessionStatus> | undefined;
  let unread: string | undefined;
  try {
    sessions = new Map((await ctx.driver.list()).map((s) => [s.name, s]));
  } catch (error) {
    unread = `the sessions could not be read: ${errorMessage(error)}`;
  }
  const rigs: RigStatus[] = [];
  for (const rig of await ctx.model.rigs.list()) {
    const witnessInfo = deaconChildren.find((c) => c.id === witnessId(rig.id));
    const witnessRef = witnessInfo?.ref;
    const polecatChildren =
      witnessRef && witnessRef.getSnapshot().status === 'active' ? whichChildren(witnessRef) : [];
    const polecats: PolecatStatus[] = [];
    for (const p of await ctx.model.polecats.list(rig.id)) {
      const hook = await ctx.model.hooks.get(p.id);
      const child = polecatChildren.find((c) => c.id === polecatChildId(p.name));
      const session = sessionName(rig.id, p.name);
      polecats.push({
        agent: p.id,
        name: p.name,
        beadId: hook?.beadId,
        state: child?.state,
        restarts: child?.restarts ?? 0,
        ...(child?.backoffUntil === undefined ? {} : { backoffUntil: child.backoffUntil }),
        respawns: hook ? await ctx.model.respawns.count(hook.beadId) : 0,
        session: sessions
          ? (sessions.get(session) ?? { name: session, state: 'missing' })
          : { name: session, state: 'unknown', reason: unread as string },
        lastExit: p.lastExit && {
          ...p.lastExit,
          lastOutput: p.lastExit.lastOutput.slice(-STATUS_OUTPUT_LINES),
        },
      });
    }
    rigs.push({
      name: rig.id,
      state: rig.state,
      ...(rig.drainUntil === undefined ? {} : { drainUntil: rig.drainUntil }),
      witness: witnessInfo
        ? {
            state: witnessInfo.state,
            restarts: witnessInfo.restarts,
            ...(witnessInfo.backoffUntil === undefined
              ? {}
              : { backoffUntil: witnessInfo.backoffUntil }),
          }
        : undefined,
      polecats,
    });
  }
  const counts = await ctx.model.store.transaction(async (tx) => ({
    gates: await tx.count('gates', 'byStatus', { prefix: ['open'] }),
    convoys: await tx.count('convoys', 'open'),
    lifecycle:
      (await tx.count('lifecycle', 'requested')) + (await tx.count('lifecycle', 'claimed')),
  }));
  return {
    at: ctx.clock.now(),
    daemon: {
      running,
      startedAt: ctx.daemon.startedAt,
      lastHeartbeat: ctx.daemon.lastHeartbeat,
      heartbeatCount: ctx.daemon.heartbeatCount,
    },
    deacon: {
      state: deaconInfo?.state,
      restarts: deaconInfo?.restarts ?? 0,
      ...(deaconInfo?.backoffUntil === undefined ? {} : { backoffUntil: deaconInfo.backoffUntil }),
      crashLoop: facts.crashLoop(),
      lastPatrolAt: ctx.daemon.lastPatrolAt,
      patrol: ctx.daemon.patrol && {
        moleculeId: ctx.daemon.patrol.moleculeId,
        step: ctx.daemon.patrol.step,
        runningMs: ctx.clock.now() - ctx.daemon.patrol.startedAt,
      },
    },
    ...(unread === undefined ? {} : { sessionsUnread: unread }),
    rigs,
    gates: { open: counts.gates },
    convoys: { open: counts.convoys },
    lifecycle: { pending: counts.lifecycle },
  };
}
