import type { Rig } from '../model/types';
import type { JsonObject } from '../store/Store';
import {
  deleteChild,
  restartChild,
  startChild,
  terminateChild,
  whichChildren,
} from '../supervisorApi';
import { requireDeacon, type TownSystem, wakeLifecycle } from './actors';
import { actOn, runBoot } from './bootTriage';
import type { TownContext } from './context';
import { incidentKey } from './incidents';
import { agentSession, witnessId } from './names';
import { witnessWanted } from './stopSession';
import type { Situation } from './types';
import { witnessSpec } from './witness';

/*
 * The patrol's `witnesses` step: each rig has a Witness exactly when its state wants one, a
 * restarted Witness is triaged by Boot, and a rig whose sessions all stayed down is triaged.
 */

/**
 * The `witnesses` step: Witnesses the Deacon restarted are triaged by Boot (then the Mayor
 * hears); each rig gets or loses its Witness as its state wants; a docked rig with running
 * sessions, and an operational rig whose hooked work has no running session, are triaged.
 */
export async function checkWitnesses(ctx: TownContext, system: TownSystem): Promise<JsonObject> {
  const deacon = requireDeacon(system);
  const now = ctx.clock.now();
  const started: string[] = [];
  const stopped: string[] = [];
  const triaged: JsonObject[] = [];
  // Witnesses the Deacon restarted since the last patrol: Boot assesses, then the Mayor hears.
  for (const [rig, error] of [...ctx.witnessRestarts]) {
    const situation: Situation = { kind: 'witness-restarted', rig, error };
    const assessment = await runBoot(ctx, system, situation);
    await ctx.report({
      incidentKey: incidentKey({ kind: 'witness-unresponsive', rig }),
      severity: assessment.action === 'escalate' ? 'high' : 'medium',
      title: `the witness of rig ${rig} stopped answering and was restarted; boot: ${assessment.reason}`,
      details: { rig, error, action: assessment.action, assessment: assessment.reason },
      source: 'deacon',
    });
    ctx.witnessRestarts.delete(rig);
    if (assessment.action !== 'escalate') await actOn(ctx, system, situation, assessment);
    triaged.push({ rig, kind: situation.kind, action: assessment.action });
  }
  /** Boot assesses a situation, the Deacon acts on the answer. */
  const triage = async (situation: Situation) => {
    const assessment = await runBoot(ctx, system, situation);
    await actOn(ctx, system, situation, assessment);
    triaged.push({ rig: situation.rig, kind: situation.kind, action: assessment.action });
  };
  const children = new Map(whichChildren(deacon).map((c) => [c.id, c]));
  for (const rig of await ctx.model.rigs.list()) {
    const id = witnessId(rig.id);
    const child = children.get(id);
    // A parked rig with nothing in flight and a drained docked rig cost no Witness (the Deacon
    // ignores them); a draining docked rig keeps its Witness, which ends the drain.
    if (!(await witnessWanted(ctx, rig))) {
      if (await stopWitness(ctx, system, rig.id)) stopped.push(rig.id);
      if (rig.state !== 'docked') continue;
      // From the town's shared reading: one driver.list() per interval, not one per docked rig.
      const running = (await ctx.sessions.sessionsOf(rig.id)).filter((s) => s.state === 'running');
      if (running.length > 0)
        await triage({
          kind: 'docked-rig-with-sessions',
          rig: rig.id,
          sessions: running.map((s) => s.name),
        });
      continue;
    }
    if (!child) {
      if (await startWitness(ctx, system, rig.id)) started.push(rig.id);
      continue;
    }
    if (child.state === 'stopped') {
      await restartChild(deacon, id);
      started.push(rig.id);
      wakeLifecycle(system);
      continue;
    }
    // A Witness up for two patrol cycles has answered its pings (a silent one is restarted
    // within two): only then is an unresponsive-witness incident over.
    if (
      child.state === 'running' &&
      now - (child.startedAt ?? now) >= 2 * ctx.timings.patrolIntervalMs
    ) {
      await ctx.model.reports.resolve(incidentKey({ kind: 'witness-unresponsive', rig: rig.id }));
    }
    // Hooked work in an operational rig whose sessions all stayed down past the spawn grace.
    if (
      rig.state === 'operational' &&
      child.state === 'running' &&
      now - (child.startedAt ?? now) > ctx.timings.spawnGraceMs
    ) {
      const hooks = await ctx.model.hooks.list({ rig: rig.id });
      if (hooks.length > 0) {
        const statuses = await Promise.all(
          hooks.map((h) => ctx.sessions.status(agentSession(h.id))),
        );
        if (statuses.every((s) => s.state !== 'running'))
          await triage({
            kind: 'hooks-without-sessions',
            rig: rig.id,
            agents: hooks.map((h) => h.id),
          });
      }
    }
  }
  return { started, stopped, triaged };
}

/** Starts the rig's Witness unless it runs. @returns whether it was started. */
export async function startWitness(
  ctx: TownContext,
  system: TownSystem,
  rig: string,
): Promise<boolean> {
  const deacon = requireDeacon(system);
  if (whichChildren(deacon).some((c) => c.id === witnessId(rig))) return false;
  await startChild(deacon, witnessSpec(ctx, rig));
  ctx.emit({ type: 'witness.started', rig });
  // A session request waiting for this Witness (it owns the rig's sessions) can go on now.
  wakeLifecycle(system);
  return true;
}

/** Stops and removes the rig's Witness (and its polecat actors), if it has one. */
export async function stopWitness(
  ctx: TownContext,
  system: TownSystem,
  rig: string,
): Promise<boolean> {
  const deacon = requireDeacon(system);
  if (!whichChildren(deacon).some((c) => c.id === witnessId(rig))) return false;
  await terminateChild(deacon, witnessId(rig));
  await deleteChild(deacon, witnessId(rig));
  ctx.emit({ type: 'witness.stopped', rig });
  return true;
}

/** Starts or stops the rig's Witness as its state wants it ({@link witnessWanted}). */
export async function syncWitness(ctx: TownContext, system: TownSystem, rig: Rig): Promise<void> {
  if (await witnessWanted(ctx, rig)) await startWitness(ctx, system, rig.id);
  else await stopWitness(ctx, system, rig.id);
}
