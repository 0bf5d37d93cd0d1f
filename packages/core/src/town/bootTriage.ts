import { type AnyActorRef, toPromise } from 'xstate';
import { SupervisorError } from '../errors';
import type { JsonObject } from '../store/Store';
import { restartChild, startChild, terminateChild } from '../supervisorApi';
import { requireDeacon, type TownSystem, witnessOf } from './actors';
import { bootLogic } from './boot';
import { describeValue, errorMessage } from './boundedWait';
import type { TownContext } from './context';
import { incidentKey } from './incidents';
import { bootChildId, witnessId } from './names';
import { stopRigSessions } from './stopSession';
import type { Assessment, Situation } from './types';

/*
 * Boot's triage as the Deacon runs it: Boot (a temporary child of the Deacon) assesses a
 * situation, its answer is checked against the actions that fit the situation, and the Deacon
 * carries out the assessment.
 */

const ACTIONS: readonly Assessment['action'][] = [
  'none',
  'stop-sessions',
  'restart-witness',
  'execute',
  'escalate',
];

/** The actions that answer a situation of this kind (see {@link Assessment}). */
function actionsFor(situation: Situation): readonly Assessment['action'][] {
  return situation.kind === 'warrant'
    ? ['execute', 'none', 'escalate']
    : ACTIONS.filter((a) => a !== 'execute');
}

function isAssessment(value: unknown): value is Assessment {
  const a = value as Assessment | null | undefined;
  return (
    typeof a === 'object' &&
    a !== null &&
    ACTIONS.includes(a.action) &&
    typeof a.reason === 'string' &&
    a.reason.trim().length > 0
  );
}

/** Boot was stopped with its Deacon before it answered: the patrol that asked is over. */
export class BootStopped extends Error {
  override readonly name = 'BootStopped';
  constructor(situation: Situation) {
    super(
      `boot was stopped with its deacon before it assessed ${situation.kind} (rig ${situation.rig})`,
    );
  }
}

/**
 * Runs Boot on a situation as a temporary child of the Deacon and returns its assessment,
 * checked: an answer that is no assessment, or whose action does not fit the situation, or a
 * Boot that fails, becomes an `escalate` saying why. Emits `boot.assessed`. Throws
 * {@link BootStopped} when Boot was stopped with its Deacon (the patrol is over).
 */
export async function runBoot(
  ctx: TownContext,
  system: TownSystem,
  situation: Situation,
): Promise<Assessment> {
  let assessment: Assessment;
  try {
    const info = await startChild(requireDeacon(system), {
      id: bootChildId(ctx.clock.now(), ctx.random),
      logic: bootLogic(ctx),
      input: situation,
      restart: 'temporary',
    });
    const ref = info.ref as AnyActorRef;
    const answer: unknown = await toPromise(ref);
    // Stopped before it answered: its Deacon was stopped or restarted (a patrol past its
    // budget). The patrol that asked is over, so nothing is assessed and nothing acted on.
    if (ref.getSnapshot().status === 'stopped') throw new BootStopped(situation);
    const allowed = actionsFor(situation);
    assessment = !isAssessment(answer)
      ? {
          action: 'escalate',
          reason: `the triage answered ${describeValue(answer)}, not an assessment ({ action: ${allowed.join(' | ')}, reason: non-empty string })`,
        }
      : allowed.includes(answer.action)
        ? { action: answer.action, reason: answer.reason }
        : {
            action: 'escalate',
            reason: `the triage answered ${answer.action} (${answer.reason}), which does not apply to a ${situation.kind} situation (allowed: ${allowed.join(', ')})`,
          };
  } catch (error) {
    if (error instanceof BootStopped) throw error;
    assessment = { action: 'escalate', reason: `boot could not assess it: ${errorMessage(error)}` };
  }
  ctx.emit({ type: 'boot.assessed', situation, assessment });
  return assessment;
}

/**
 * Carries out Boot's assessment. A failure to act (a driver that cannot stop a session, say) is
 * reported and never fails the patrol: the next patrol sees the situation again.
 */
export async function actOn(
  ctx: TownContext,
  system: TownSystem,
  situation: Situation,
  assessment: Assessment,
): Promise<void> {
  try {
    await applyAssessment(ctx, system, situation, assessment);
  } catch (error) {
    await ctx.report({
      incidentKey: incidentKey({ kind: 'boot', situation: situation.kind, rig: situation.rig }),
      severity: 'high',
      title: `rig ${situation.rig}: could not ${assessment.action} (${assessment.reason}): ${errorMessage(error)}`,
      details: situation as unknown as JsonObject,
      source: 'boot',
    });
  }
}

async function applyAssessment(
  ctx: TownContext,
  system: TownSystem,
  situation: Situation,
  assessment: Assessment,
): Promise<void> {
  switch (assessment.action) {
    case 'stop-sessions':
      await stopRigSessions(
        ctx,
        situation.rig,
        `boot: ${assessment.reason}`,
        witnessOf(system, situation.rig),
      );
      return;
    case 'restart-witness': {
      const deacon = requireDeacon(system);
      try {
        await terminateChild(deacon, witnessId(situation.rig));
        await restartChild(deacon, witnessId(situation.rig));
      } catch (error) {
        if (!(error instanceof SupervisorError)) throw error;
      }
      return;
    }
    case 'escalate':
      await ctx.report({
        incidentKey: incidentKey({ kind: 'boot', situation: situation.kind, rig: situation.rig }),
        severity: 'high',
        title: `rig ${situation.rig}: ${assessment.reason}`,
        details: situation as unknown as JsonObject,
        source: 'boot',
      });
      return;
    case 'none':
    // Warrants are executed by the warrants step; runBoot lets `execute` through for them only.
    case 'execute':
      return;
  }
}
