import type { Warrant } from '../model/types';
import type { JsonObject } from '../store/Store';
import { surveyRig, type TownSystem, witnessOf } from './actors';
import { runBoot } from './bootTriage';
import { errorMessage } from './boundedWait';
import type { TownContext } from './context';
import { incidentKey } from './incidents';
import { agentSession, rigOfAgent } from './names';
import { stopSession } from './stopSession';
import type { Situation } from './types';

/* The patrol's `warrants` step: pending warrants, assessed by Boot and executed by the Deacon. */

/**
 * Executes one warrant Boot said to execute (or that a run before a crash had begun): unless the
 * target moved on to other work, the decision is recorded, the target's session is stopped (whole
 * process tree, with the stop grace; stopping a session that is gone does nothing), then one
 * transaction releases the warranted work and marks the warrant executed. A crash anywhere in
 * between leaves it pending, and the next run finishes it, once.
 */
async function executeWarrant(
  ctx: TownContext,
  system: TownSystem,
  warrant: Warrant,
  legacy: boolean,
): Promise<void> {
  const { target: agent, rig } = warrant;
  const hook = await ctx.model.hooks.get(agent);
  // A warrant filed before warrants recorded their work is about the work on the hook now.
  const movedOn =
    !legacy &&
    hook !== undefined &&
    (hook.beadId !== warrant.beadId || hook.epoch !== warrant.hookEpoch);
  let session: string | undefined;
  if (!movedOn) {
    await ctx.model.warrants.beginStop(warrant.id);
    session = agentSession(agent);
    // On purpose, through the one stop path: recorded (the work's next spawn is no respawn),
    // the polecat's actor retired first (its probe does not take the stop for a crash), the end
    // recorded with its last output, `polecat.stopped` announced.
    const witness = witnessOf(system, rig);
    await stopSession(ctx, {
      session,
      rig,
      agent,
      reason: `warrant ${warrant.id}: ${warrant.reason}`,
      ...(witness === undefined ? {} : { witness }),
    });
  }
  const executed = await ctx.model.warrants.execute(warrant.id, {
    by: 'deacon',
    ...(session === undefined ? {} : { session }),
  });
  const outcome = executed.outcome as NonNullable<Warrant['outcome']>;
  ctx.emit({ type: 'warrant.executed', warrantId: warrant.id, agent, rig, outcome });
  // News, like a convoy landing: the Mayor hears of each executed warrant once.
  const key = incidentKey({ kind: 'warrant-executed', warrantId: warrant.id });
  await ctx.report({
    incidentKey: key,
    severity: 'medium',
    title: `warrant ${warrant.id} against ${agent} executed (${warrant.reason}): ${outcome.summary}`,
    details: {
      warrantId: warrant.id,
      agent,
      rig,
      filedBy: warrant.filedBy,
      reason: warrant.reason,
      outcome: outcome as unknown as JsonObject,
    },
    source: 'deacon',
  });
  await ctx.model.reports.resolve(key);
  // The released work's polecat actor is retired by its Witness's next survey: do it now.
  surveyRig(system, rig);
}

/**
 * The pending warrants, oldest first: Boot assesses each (`execute`, `none` = hold it for a later
 * patrol, `escalate` = report it and hold it), and the Deacon executes those Boot said to. A
 * warrant whose execution had begun before a crash is finished without asking again. A failure
 * to execute one (a driver that cannot stop the session) is reported; it stays pending.
 */
export async function processWarrants(ctx: TownContext, system: TownSystem): Promise<JsonObject> {
  const executed: string[] = [];
  const held: string[] = [];
  const escalated: string[] = [];
  const failed: string[] = [];
  for (const stored of await ctx.model.warrants.pending()) {
    // Warrants filed before warrants were executed lack the rig, the release and the work they
    // are about: derive the first two here; beginStop records the work.
    const legacy = (stored as Partial<Warrant>).release === undefined;
    const warrant: Warrant = {
      ...stored,
      rig: stored.rig ?? rigOfAgent(stored.target),
      release: stored.release ?? 'open',
    };
    const { id, target: agent, rig } = warrant;
    if (warrant.stoppingAt === undefined) {
      const situation: Situation = {
        kind: 'warrant',
        rig,
        agent,
        warrantId: id,
        reason: warrant.reason,
        filedBy: warrant.filedBy,
        beadId: warrant.beadId ?? null,
        release: warrant.release,
      };
      const assessment = await runBoot(ctx, system, situation);
      if (assessment.action === 'none') {
        held.push(id);
        continue;
      }
      if (assessment.action !== 'execute') {
        escalated.push(id);
        await ctx.report({
          incidentKey: incidentKey({ kind: 'warrant-held', warrantId: id }),
          severity: 'high',
          title: `warrant ${id} against ${agent} (${warrant.reason}) is held pending: ${assessment.reason}`,
          details: situation as unknown as JsonObject,
          source: 'boot',
        });
        continue;
      }
    }
    try {
      await executeWarrant(ctx, system, warrant, legacy);
      executed.push(id);
    } catch (error) {
      failed.push(id);
      await ctx.report({
        incidentKey: incidentKey({ kind: 'warrant-failed', warrantId: id }),
        severity: 'high',
        title: `warrant ${id} against ${agent} could not be executed: ${errorMessage(error)}`,
        details: { warrantId: id, agent, rig },
        source: 'deacon',
      });
    }
  }
  return { executed, held, escalated, failed };
}
