import {
  type ChildSpec,
  type CreateSupervisorOptions,
  createSupervisor,
  heartbeat,
  SHUTDOWN_EVENT_TYPE,
  type Supervisor,
  shutdownExit,
} from '@belfry/core';
import { type EventRecorder, recordEvents, SimulatedClock } from '@belfry/testing';
import { type AnyActorRef, assign, fromCallback, setup } from 'xstate';

/**
 * A log shared by test children: `start:<id>` when an instance starts, `stop:<id>` when it is
 * stopped (callback cleanup) or finishes. Order in the log is the real order of lifecycle steps.
 */
export type Log = string[];

export interface ProbeChildInput {
  id: string;
  log: Log;
  /** Throw during start. */
  failStart?: boolean;
}

/**
 * A callback child: logs its start and its stop, throws when sent CRASH, and throws at start when
 * `failStart` is set. Its stop is immediate (xstate stop runs the cleanup).
 */
export const callbackChild = fromCallback<{ type: string }, ProbeChildInput>(
  ({ input, receive }) => {
    if (input.failStart) throw new Error(`${input.id} failed to start`);
    input.log.push(`start:${input.id}`);
    receive((event) => {
      if (event.type === 'CRASH') throw new Error(`${input.id} crashed`);
    });
    return () => {
      input.log.push(`stop:${input.id}`);
    };
  },
);

export interface WorkerInput {
  id: string;
  log?: Log;
  /** React to the shutdown request: finish after `drainMs` (0 = at once). Otherwise ignore it. */
  graceful?: boolean;
  drainMs?: number;
  /** Throw in the initial entry action. */
  failStart?: boolean;
}

interface WorkerContext {
  id: string;
  log: Log | undefined;
  graceful: boolean;
  drainMs: number;
  exitAs: 'normal' | 'shutdown';
}

/**
 * A machine child. Events:
 * - `CRASH`: an action throws (exit reason `error`);
 * - `EXIT_NORMAL`: reaches a final state (reason `normal`);
 * - `EXIT_SHUTDOWN`: reaches a final state with `shutdownExit()` output (reason `shutdown`);
 * - `BEAT`: sends a heartbeat to its supervisor;
 * - `belfry.shutdown`: finishes after `drainMs` when `graceful`, else is ignored.
 */
export const workerMachine = setup({
  types: {
    input: {} as WorkerInput,
    context: {} as WorkerContext,
  },
  delays: {
    drain: ({ context }) => context.drainMs,
  },
  actions: {
    logStart: ({ context }) => {
      context.log?.push(`start:${context.id}`);
    },
    logStop: ({ context }) => {
      context.log?.push(`stop:${context.id}`);
    },
  },
}).createMachine({
  id: 'worker',
  context: ({ input }) => {
    if (input.failStart) throw new Error(`${input.id} failed to start`);
    return {
      id: input.id,
      log: input.log,
      graceful: input.graceful ?? false,
      drainMs: input.drainMs ?? 0,
      exitAs: 'normal',
    };
  },
  entry: 'logStart',
  initial: 'running',
  states: {
    running: {
      on: {
        CRASH: {
          actions: () => {
            throw new Error('worker crashed');
          },
        },
        EXIT_NORMAL: { target: 'done' },
        EXIT_SHUTDOWN: { target: 'done', actions: assign({ exitAs: 'shutdown' }) },
        BEAT: { actions: heartbeat() },
        [SHUTDOWN_EVENT_TYPE]: { guard: ({ context }) => context.graceful, target: 'draining' },
      },
    },
    draining: {
      on: { BEAT: { actions: heartbeat() } },
      after: { drain: { target: 'done', actions: assign({ exitAs: 'shutdown' }) } },
    },
    done: { type: 'final', entry: 'logStop' },
  },
  output: ({ context }) => (context.exitAs === 'shutdown' ? shutdownExit() : 'finished'),
});

/** A test tree: a root supervisor on a simulated clock, with its events recorded. */
export interface Harness {
  clock: SimulatedClock;
  sup: Supervisor;
  rec: EventRecorder;
  log: Log;
  /** The running actor of child `id` (throws if there is none). */
  ref(id: string): AnyActorRef;
  /** The state of child `id`. */
  state(id: string): string | undefined;
  /** `id` → `state` of every child, in order. */
  states(): Record<string, string>;
}

export function harness(
  options: CreateSupervisorOptions & { clock?: SimulatedClock; log?: Log } = {},
): Harness {
  const clock = options.clock ?? new SimulatedClock();
  const log = options.log ?? [];
  const { log: _log, ...rest } = options;
  const sup = createSupervisor({ ...rest, clock });
  const rec = recordEvents(sup.events);
  sup.start();
  return {
    clock,
    sup,
    rec,
    log,
    ref(id) {
      const ref = sup.whichChildren().find((c) => c.id === id)?.ref;
      if (!ref) throw new Error(`child ${id} has no running actor`);
      return ref;
    },
    state: (id) => sup.whichChildren().find((c) => c.id === id)?.state,
    states: () => Object.fromEntries(sup.whichChildren().map((c) => [c.id, c.state])),
  };
}

/** A callback child spec that logs into `log`. */
export function cb(id: string, log: Log, extra: Partial<ChildSpec> = {}): ChildSpec {
  return { id, logic: callbackChild, input: { id, log }, ...extra };
}

/** A machine child spec. */
export function machine(
  id: string,
  input: Omit<WorkerInput, 'id'> = {},
  extra: Partial<ChildSpec> = {},
): ChildSpec {
  return { id, logic: workerMachine, input: { id, ...input }, ...extra };
}

/**
 * A callback child spec whose starts fail on demand: `failStarts(n)` makes its next `n` starts
 * throw (or every start, with `Infinity`).
 */
export function flaky(id: string, log: Log, extra: Partial<ChildSpec> = {}) {
  let failing = 0;
  const spec: ChildSpec = {
    id,
    logic: callbackChild,
    getInput: () => {
      const failStart = failing > 0;
      if (failStart) failing--;
      return { id, log, failStart };
    },
    ...extra,
  };
  return {
    spec,
    failStarts(n: number) {
      failing = n;
    },
  };
}
