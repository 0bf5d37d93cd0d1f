import { ConfigError } from '../errors';
import type { LifecycleRequest, Rig } from '../model/types';
import type { JsonObject, JsonValue } from '../store/Store';
import { surveyRig, type TownSystem } from './actors';
import { describeValue } from './boundedWait';
import type { TownContext } from './context';
import { drainLifecycle } from './lifecycleQueue';
import { startWitness, stopWitness, syncWitness } from './patrolWitnesses';
import { inFlight, stopRigSessions } from './stopSession';

/* The patrol's `lifecycle` step: the operator's rig requests (park, unpark, dock, undock). */

const RIG_ACTIONS = ['park', 'unpark', 'dock', 'undock'] as const;

/** A dock request's `immediate` argument; anything else in its args is refused. */
function immediateOf(request: LifecycleRequest): boolean {
  const { immediate, ...rest } = request.args;
  const unknown = Object.keys(rest);
  if (unknown.length > 0)
    throw new ConfigError({
      code: 'UNKNOWN_OPTION',
      path: `args.${unknown[0]}`,
      message: `dock ${request.target}: args.${unknown[0]} is not an argument of dock; allowed: immediate`,
    });
  if (immediate !== undefined && typeof immediate !== 'boolean')
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: 'args.immediate',
      message: `dock ${request.target}: args.immediate must be true or false; got ${describeValue(immediate)}`,
    });
  return immediate === true;
}

/**
 * Carries out one rig request, quickly (it holds a short lease): the state changes, and the
 * Witness is started or stopped as the new state wants it. A dock with work in flight records
 * its drain deadline and keeps the Witness, which ends the drain in later surveys; an immediate
 * dock (or one with nothing in flight) stops the rig's sessions now. Hooks always stay.
 */
async function applyRigRequest(
  ctx: TownContext,
  system: TownSystem,
  request: LifecycleRequest,
): Promise<JsonValue> {
  const { model } = ctx;
  const rig = request.target;
  let record: Rig;
  switch (request.action) {
    case 'park':
      record = await model.rigs.park(rig);
      break;
    case 'unpark':
      record = await model.rigs.unpark(rig);
      break;
    case 'dock': {
      const immediate = immediateOf(request);
      const draining = immediate ? [] : await inFlight(ctx, rig);
      record = await model.rigs.dock(
        rig,
        draining.length === 0 ? {} : { drainUntil: ctx.clock.now() + ctx.timings.drainMs },
      );
      if (record.drainUntil === undefined) {
        await stopWitness(ctx, system, rig);
        const stopped = await stopRigSessions(
          ctx,
          rig,
          `rig ${rig} docked${immediate ? ' (immediate)' : ''}`,
        );
        return { state: record.state, stopped };
      }
      await startWitness(ctx, system, rig);
      surveyRig(system, rig);
      return { state: record.state, drainUntil: record.drainUntil, draining };
    }
    case 'undock':
      record = await model.rigs.undock(rig);
      break;
    default:
      throw new Error(`the deacon does not carry out ${request.action} requests`);
  }
  await syncWitness(ctx, system, record);
  surveyRig(system, rig);
  return { state: record.state };
}

/** The `lifecycle` step: carries out the queued rig requests, in the order they were made. */
export async function processRigRequests(
  ctx: TownContext,
  system: TownSystem,
): Promise<JsonObject> {
  return drainLifecycle(ctx, 'deacon', RIG_ACTIONS, (request) =>
    applyRigRequest(ctx, system, request),
  );
}
