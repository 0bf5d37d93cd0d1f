import type { MayorMessage, TownEvent, TownOptions } from '@belfry/core';
import type { SessionDriver, SessionSpec, SessionStatus, StopOptions } from '@belfry/core/driver';
import type { Gate, GateDecision, GateEvaluator } from '@belfry/core/gate';
import {
  createTestTown,
  SimulatedClock,
  type TestTown,
  type TestTownOptions,
} from '@belfry/testing';
import {
  BUSY_AGENT,
  CountingDriver,
  eventsOf,
  recordSupervision,
  TIMINGS,
  until,
} from './chainHelpers';

/*
 * A started test town on a driver that records each stop, with its Mayor sink and supervision
 * events, and the evaluators, pollers and drivers the town tests below build scenarios with.
 * Everything runs on simulated time.
 */

/** The simulated clock's start (ms). */
export const START = 1_700_000_000_000;
/** The town options every scenario here shares: the chain's timings and a busy agent. */
export const OPTIONS = { timings: TIMINGS, agent: BUSY_AGENT } satisfies Partial<TownOptions>;

/** A CountingDriver that also records each `stop` call with the clock time it was asked at. */
export class RecordingDriver extends CountingDriver {
  readonly stops: Array<{ name: string; at: number }> = [];

  constructor(private readonly simClock: SimulatedClock) {
    super({ clock: simClock });
  }

  override async stop(name: string, options?: StopOptions): Promise<void> {
    this.stops.push({ name, at: this.simClock.now() });
    return super.stop(name, options);
  }

  stopsOf(name: string): Array<{ name: string; at: number }> {
    return this.stops.filter((s) => s.name === name);
  }
}

/**
 * One daemon process's driver handle whose `stop` never answers (the process dies while it
 * waits): everything else goes to the shared driver.
 */
export class StopNeverAnswers implements SessionDriver {
  readonly kind: string;
  readonly stops: string[] = [];

  constructor(private readonly inner: SessionDriver) {
    this.kind = inner.kind;
  }

  start(spec: SessionSpec): Promise<SessionStatus> {
    return this.inner.start(spec);
  }
  status(name: string): Promise<SessionStatus> {
    return this.inner.status(name);
  }
  list(): Promise<SessionStatus[]> {
    return this.inner.list();
  }
  nudge(name: string, text: string): Promise<void> {
    return this.inner.nudge(name, text);
  }
  capture(name: string, options?: { lines?: number }): Promise<string[]> {
    return this.inner.capture(name, options);
  }
  stop(name: string): Promise<void> {
    this.stops.push(name);
    return new Promise<void>(() => {});
  }
}

/** Test town options beyond the clock and driver, which `town` makes. */
export type Extra = Omit<TestTownOptions, 'clock' | 'driver'>;

/** A started test town on a recording driver, with a Mayor sink and the supervision events. */
export async function town(extra: Extra = {}) {
  const clock = new SimulatedClock(START);
  const driver = new RecordingDriver(clock);
  const mayor: MayorMessage[] = [];
  const t = await createTestTown({
    ...OPTIONS,
    mayor: (m) => {
      mayor.push(m);
    },
    ...extra,
    clock,
    driver,
  });
  return Object.assign(t, { driver, mayor, seen: recordSupervision(t) });
}

/** Waits until the bead's session was spawned, and returns that event. */
export async function spawnOf(t: TestTown, beadId: string, from = 0) {
  await until(t, () => eventsOf(t, 'polecat.spawned', from).some((e) => e.beadId === beadId), {
    what: `the spawn for ${beadId}`,
  });
  return eventsOf(t, 'polecat.spawned', from).find((e) => e.beadId === beadId) as Extract<
    TownEvent,
    { type: 'polecat.spawned' }
  >;
}

/** The session name of an agent `<rig>/<name>`. */
export function sessionOf(agent: string): string {
  return agent.replace('/', '-');
}

/** A promise with its `resolve`, to release a waiting fake by hand. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** An evaluator of type `slow` that waits for `release()` before it answers `decision`. */
export function slowEvaluator(decision: unknown) {
  const evaluator = {
    type: 'slow',
    calls: 0,
    release: deferred(),
    validate: (spec: unknown) => ({ ...((spec ?? {}) as Record<string, never>) }),
    async evaluate(gates: readonly Gate[]): Promise<ReadonlyMap<string, GateDecision>> {
      evaluator.calls++;
      await evaluator.release.promise;
      return new Map(gates.map((g) => [g.id, decision as GateDecision]));
    },
  };
  return evaluator;
}

/** An evaluator of type `flip`: escalates with a new reason on each call, or answers pending. */
export function flipEvaluator() {
  const evaluator = {
    type: 'flip',
    mode: 'escalate' as 'escalate' | 'pending',
    calls: 0,
    escalations: 0,
    validate: (spec: unknown) => ({ ...((spec ?? {}) as Record<string, never>) }),
    async evaluate(gates: readonly Gate[]): Promise<ReadonlyMap<string, GateDecision>> {
      evaluator.calls++;
      const out = new Map<string, GateDecision>();
      for (const g of gates) {
        if (evaluator.mode === 'pending') out.set(g.id, { kind: 'pending' });
        else {
          evaluator.escalations++;
          out.set(g.id, { kind: 'escalate', reason: `attempt ${evaluator.calls}: the run failed` });
        }
      }
      return out;
    },
  };
  return evaluator satisfies GateEvaluator;
}

/** A poller whose runs never finish by themselves; each rejects once its signal is aborted. */
export function stuckPoller(options: { intervalMs: number; timeoutMs?: number }) {
  const runs: Array<{ at: number; signal: AbortSignal; abortedAt?: number }> = [];
  return {
    runs,
    poller: {
      name: 'inbox',
      ...options,
      run: ({ now, signal }: { now: number; signal: AbortSignal }) =>
        new Promise<void>((_, reject) => {
          const run: { at: number; signal: AbortSignal; abortedAt?: number } = { at: now, signal };
          runs.push(run);
          signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        }),
    },
  };
}

/** The Deacon's patrol child exits and restarts since `from`, with the error of each exit. */
export function patrolFailures(t: Awaited<ReturnType<typeof town>>, from: number): string[] {
  return t.seen
    .slice(from)
    .flatMap((e) =>
      (e.type === 'child.exited' || e.type === 'child.restarting') &&
      e.supervisor === 'town/deacon' &&
      e.childId === 'patrol'
        ? [
            e.type === 'child.exited'
              ? `exited: ${e.error instanceof Error ? e.error.message : e.reason}`
              : 'restarting',
          ]
        : [],
    );
}
