import type { JsonObject, JsonValue } from '../store/Store';
import type { TownSystem } from './actors';
import type { RunningPatrol, TownContext } from './context';
import { incidentKey } from './incidents';
import { checkConvoys } from './patrolConvoys';
import { dispatchMolecules } from './patrolDispatch';
import { evaluateGates } from './patrolGates';
import { reportPatrol } from './patrolReport';
import { processRigRequests } from './patrolRigRequests';
import { processWarrants } from './patrolWarrants';
import { checkWitnesses } from './patrolWitnesses';
import type { PatrolSummary, TownHealth } from './types';

/*
 * The Deacon's patrol: its steps in order, each in its own file (`patrol<Step>.ts`), run one after
 * the other on a patrol molecule so that a restarted Deacon resumes at the step it was on.
 */

/** The patrol molecule's formula name. */
export const PATROL = 'deacon-patrol';
/**
 * The patrol's steps, in order. Each is recorded on the patrol molecule as it finishes, so a
 * Deacon restarted mid-patrol resumes at the step it was on.
 */
export const PATROL_STEPS = [
  'witnesses',
  'warrants',
  'gates',
  'lifecycle',
  'dispatch',
  'convoys',
  'report',
] as const;

/** Each patrol step's work, by its name in {@link PATROL_STEPS}. */
const STEPS: Record<
  (typeof PATROL_STEPS)[number],
  (ctx: TownContext, system: TownSystem, results: JsonObject) => Promise<JsonObject>
> = {
  witnesses: checkWitnesses,
  warrants: processWarrants,
  gates: (ctx) => evaluateGates(ctx),
  lifecycle: processRigRequests,
  dispatch: dispatchMolecules,
  convoys: (ctx) => checkConvoys(ctx),
  report: (ctx, _system, results) => reportPatrol(ctx, results),
};

function count(value: unknown): number {
  return Array.isArray(value) ? value.length : typeof value === 'number' ? value : 0;
}

/**
 * One line for the digest, as the seed's squash summary ("Patrol: 3 gates evaluated, 1 closed,
 * 0 issues"). The step results themselves, lists included, are on the digest as `steps`; the
 * line stays short however many gates, molecules or convoys a patrol handled.
 */
export function describePatrol(steps: JsonObject): string {
  const get = (step: string) => (steps[step] ?? {}) as Record<string, unknown>;
  const w = get('witnesses');
  const wr = get('warrants');
  const g = get('gates');
  const l = get('lifecycle');
  const c = get('convoys');
  const r = get('report');
  const h = r.health as Record<string, unknown> | undefined;
  return [
    `Patrol: witnesses ${count(w.started)} started, ${count(w.stopped)} stopped, ${count(w.triaged)} triaged`,
    `warrants ${count(wr.executed)} executed, ${count(wr.held) + count(wr.escalated) + count(wr.failed)} pending`,
    `gates ${count(g.evaluated)} evaluated, ${count(g.closed)} closed, ${count(g.escalated)} escalated, ${count(g.overdue)} overdue, ${count(g.failed)} evaluators failed`,
    `lifecycle ${count(l.done)} done, ${count(l.failed)} failed`,
    `dispatched ${count(get('dispatch').dispatched)}`,
    `convoys ${count(c.closed)} closed, ${count(c.stalled)} stalled`,
    `incidents resolved ${count(r.resolved)}`,
    ...(h === undefined
      ? []
      : [
          `agents ${count(h.healthy)} healthy, ${count(h.unhealthy)} unhealthy${count(h.unknown) > 0 ? `, ${count(h.unknown)} unknown` : ''}`,
          `${count((h.incidents as Record<string, unknown> | undefined)?.open)} open incidents`,
        ]),
  ].join('; ');
}

/**
 * Runs one patrol: resumes an unfinished one at its next step, or starts a new one. Each step's
 * result is recorded as the molecule's step; the finished patrol is squashed into a digest.
 * The patrol it runs is on `ctx.daemon.patrol` (with its step) for the Daemon to watch; once
 * `signal` is aborted (the Deacon was stopped, as for an overdue patrol) a run whose step
 * settles late does nothing more, the new Deacon's patrol carrying on from the record.
 */
export async function runPatrol(
  ctx: TownContext,
  system: TownSystem,
  signal?: AbortSignal,
): Promise<void> {
  const { model } = ctx;
  let molecule =
    (await model.molecules.list({ status: 'running', name: PATROL, limit: 1 }))[0] ??
    (await model.transaction(async (m) => {
      const created = await m.molecules.create({
        name: PATROL,
        steps: PATROL_STEPS.map((name) => ({ name })),
      });
      return m.molecules.dispatch(created.id, { by: 'deacon' });
    }));
  if (signal?.aborted) return;
  const running: RunningPatrol = {
    moleculeId: molecule.id,
    step: PATROL_STEPS[molecule.cursor] ?? 'squash',
    startedAt: molecule.dispatchedAt ?? ctx.clock.now(),
  };
  ctx.daemon.patrol = running;
  ctx.emit({ type: 'patrol.started', moleculeId: molecule.id, resumedAt: molecule.cursor });
  const results: JsonObject = {
    molecule: molecule.id,
    startedAt: molecule.dispatchedAt ?? ctx.clock.now(),
  };
  for (const done of molecule.completed) results[done.name] = (done.result ?? null) as JsonValue;
  while (molecule.status === 'running') {
    // By the stored molecule's own step names, not by position: a patrol poured by an earlier
    // version (with other steps) resumes where it was. A step this version lacks is recorded as
    // skipped rather than wedging the patrol.
    const name = molecule.steps[molecule.cursor]?.name ?? `step ${molecule.cursor}`;
    running.step = name;
    const result = Object.hasOwn(STEPS, name)
      ? await STEPS[name as (typeof PATROL_STEPS)[number]](ctx, system, results)
      : { skipped: `this version has no patrol step ${JSON.stringify(name)}` };
    if (signal?.aborted) return;
    results[name] = result;
    molecule = await model.molecules.completeStep(molecule.id, {
      step: molecule.cursor,
      epoch: molecule.epoch,
      result,
    });
    ctx.emit({ type: 'patrol.step', moleculeId: molecule.id, step: name, result });
  }
  const {
    molecule: id,
    startedAt,
    ...steps
  } = results as { molecule: string; startedAt: number } & JsonObject;
  const health = (steps.report as { health?: TownHealth } | null | undefined)?.health;
  const summary: PatrolSummary = {
    moleculeId: id,
    startedAt,
    finishedAt: ctx.clock.now(),
    steps,
    ...(health === undefined ? {} : { health }),
  };
  running.step = 'squash';
  const digest = await model.molecules.squash(molecule.id, { summary: describePatrol(steps) });
  // Digests are the patrol's audit trail; without a bound a daemon's store would grow by one
  // every few minutes for as long as it runs.
  await model.molecules.pruneDigests(PATROL, { keep: ctx.timings.keepPatrolDigests });
  // A patrol finished: an overdue one before it is over.
  await model.reports.resolve(incidentKey({ kind: 'patrol-overdue' }));
  if (ctx.daemon.patrol === running) ctx.daemon.patrol = undefined;
  ctx.daemon.lastPatrolAt = ctx.clock.now();
  ctx.emit({ type: 'patrol.finished', moleculeId: molecule.id, digestBeadId: digest.id, summary });
}
