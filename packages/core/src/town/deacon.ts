import { fromPromise, setup } from 'xstate';
import { supervisor } from '../supervisorLogic';
import type { TownContext } from './context';
import { SYSTEM } from './names';
import { runPatrol } from './patrol';

/**
 * The patrol: a machine that runs a patrol when it starts (resuming an unfinished one), then on
 * each heartbeat or after `patrolIntervalMs`, whichever comes first. A patrol that fails makes
 * the machine fail, so the Deacon restarts it and the patrol resumes at its next step.
 */
export function patrolLogic(ctx: TownContext) {
  return setup({
    types: { events: {} as { type: 'HEARTBEAT' } },
    actors: {
      patrol: fromPromise<void, undefined>(({ system, signal }) => runPatrol(ctx, system, signal)),
    },
    delays: { interval: () => ctx.timings.patrolIntervalMs },
  }).createMachine({
    initial: 'patrolling',
    states: {
      patrolling: {
        invoke: {
          src: 'patrol',
          onDone: 'idle',
          onError: {
            actions: ({ event }) => {
              throw event.error;
            },
          },
        },
      },
      idle: {
        after: { interval: 'patrolling' },
        on: { HEARTBEAT: 'patrolling' },
      },
    },
  });
}

/** The Deacon: a supervisor of the patrol and of one Witness per rig (added by the patrol). */
export function deaconLogic(ctx: TownContext) {
  return supervisor({
    strategy: 'one_for_one',
    maxRestarts: 10,
    withinMs: 60_000,
    children: [
      { id: 'patrol', logic: patrolLogic(ctx), systemId: SYSTEM.patrol, shutdown: 'brutal' },
    ],
  });
}
