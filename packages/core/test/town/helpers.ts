import {
  ConfigError,
  githubRunGateType,
  type LifecycleAction,
  type MayorMessage,
  PATROL_STEPS,
  type Report,
  type Store,
  type StoreTx,
  type TownEvent,
  type TownTimings,
} from '@belfry/core';
import type { Gate, GateDecision, GateEvaluator } from '@belfry/core/gate';
import type { TestTown } from '@belfry/testing';

/** Small timings so a scenario covers many patrols and surveys in little simulated time. */
export const TIMINGS: Partial<TownTimings> = {
  heartbeatMs: 60_000,
  patrolIntervalMs: 120_000,
  surveyMs: 10_000,
  spawnGraceMs: 30_000,
};

/** The events of one type (matching `where`) seen by a test town so far. */
export function eventsOf<T extends TownEvent['type']>(
  t: { events: readonly TownEvent[] },
  type: T,
  where?: (event: Extract<TownEvent, { type: T }>) => boolean,
): Array<Extract<TownEvent, { type: T }>> {
  return t.events.filter(
    (e): e is Extract<TownEvent, { type: T }> =>
      e.type === type && (!where || where(e as Extract<TownEvent, { type: T }>)),
  );
}

/** The events of a test town from index `from` on, for {@link eventsOf}. */
export function since(t: { events: readonly TownEvent[] }, from: number): { events: TownEvent[] } {
  return { events: t.events.slice(from) };
}

/**
 * The first event of `type` (matching `where`) at index `since` or later of the town's history;
 * if there is none yet, waits for it like `t.next`.
 */
export async function waitFor<T extends TownEvent['type']>(
  t: TestTown,
  type: T,
  options: {
    where?: (event: Extract<TownEvent, { type: T }>) => boolean;
    withinMs?: number;
    since?: number;
  } = {},
): Promise<Extract<TownEvent, { type: T }>> {
  const { since = 0, ...rest } = options;
  const seen = eventsOf({ events: t.events.slice(since) }, type, rest.where)[0];
  return seen ?? t.next(type, rest);
}

/**
 * Moves simulated time in steps until `promise` settles, and returns its value (or throws its
 * error). Fails when it is still pending after `withinMs` of simulated time.
 */
export async function until<T>(
  t: TestTown,
  promise: Promise<T>,
  { withinMs = 600_000, stepMs = 1_000 }: { withinMs?: number; stepMs?: number } = {},
): Promise<T> {
  let settled = false;
  const watched = promise.finally(() => {
    settled = true;
  });
  // Keep an early rejection from being reported as unhandled while time moves.
  watched.catch(() => {});
  await t.advance(0);
  for (let waited = 0; !settled; waited += stepMs) {
    if (waited >= withinMs) throw new Error(`still pending after ${withinMs} ms of simulated time`);
    await t.advance(stepMs);
  }
  return watched;
}

/** A Mayor sink for `createTestTown({ mayor })` and views of what it received. */
export function mayorSink() {
  const messages: MayorMessage[] = [];
  return {
    messages,
    mayor: (message: MayorMessage) => {
      messages.push(message);
    },
    /** The reports it received (new incidents), optionally those whose key starts with `prefix`. */
    reports(prefix = ''): Report[] {
      return messages
        .filter((m): m is Extract<MayorMessage, { kind: 'report' }> => m.kind === 'report')
        .map((m) => m.report)
        .filter((r) => r.incidentKey.startsWith(prefix));
    },
    summaries() {
      return messages
        .filter((m): m is Extract<MayorMessage, { kind: 'summary' }> => m.kind === 'summary')
        .map((m) => m.patrol);
    },
  };
}

/** The `patrol.step` step names of one patrol molecule, in order. */
export function stepsOf(t: { events: readonly TownEvent[] }, moleculeId: string): string[] {
  return eventsOf(t, 'patrol.step', (e) => e.moleculeId === moleculeId).map((e) => e.step);
}

export const ALL_STEPS: readonly string[] = [...PATROL_STEPS];

function configError(message: string): ConfigError {
  return new ConfigError({ code: 'INVALID_OPTION', path: 'spec', message });
}

/**
 * A timer-like evaluator (type `timer`): a gate closes once `createdAt + durationMs <= now`;
 * until then it is pending, next looked at when it expires. Counts its calls.
 */
export function timerEvaluator(): GateEvaluator & { calls: number } {
  const evaluator = {
    type: 'timer',
    calls: 0,
    validate(spec: unknown) {
      const durationMs = (spec as { durationMs?: unknown } | undefined)?.durationMs;
      if (typeof durationMs !== 'number' || !Number.isSafeInteger(durationMs) || durationMs <= 0)
        throw configError('spec.durationMs: must be a positive integer');
      return { durationMs };
    },
    async evaluate(gates: readonly Gate[], { now }: { now: number }) {
      evaluator.calls++;
      const out = new Map<string, GateDecision>();
      for (const gate of gates) {
        const expiresAt = gate.createdAt + (gate.spec.durationMs as number);
        out.set(
          gate.id,
          expiresAt <= now
            ? { kind: 'close', result: { expiredAt: expiresAt } }
            : { kind: 'pending', nextCheckAt: expiresAt },
        );
      }
      return out;
    },
  };
  return evaluator;
}

export type RunState = 'pending' | 'success' | 'failure';

/**
 * A gh:run-like evaluator driven by `runs` (run id → state): pending stays pending, success
 * closes the gate with the conclusion, failure escalates (the gate stays open). A run the map
 * does not know is pending. Records the batches it was called with.
 */
export function ghRunEvaluator(
  runs: Map<number, RunState>,
): GateEvaluator & { batches: string[][] } {
  const evaluator = {
    ...githubRunGateType,
    batches: [] as string[][],
    async evaluate(gates: readonly Gate[]) {
      evaluator.batches.push(gates.map((g) => g.id));
      const out = new Map<string, GateDecision>();
      for (const gate of gates) {
        const runId = gate.spec.runId as number;
        const state = runs.get(runId) ?? 'pending';
        out.set(
          gate.id,
          state === 'success'
            ? { kind: 'close', result: { conclusion: 'success', runId } }
            : state === 'failure'
              ? { kind: 'escalate', reason: `run ${runId} failed` }
              : { kind: 'pending' },
        );
      }
      return out;
    },
  };
  return evaluator;
}

/** How a misbehaving evaluator misbehaves. */
export type Misbehaviour = 'throws' | 'non-map' | 'hangs';

/**
 * An evaluator of type `flaky` that always misbehaves: throws, resolves to something that is not
 * a Map, or never resolves (it keeps the abort signals it was given).
 */
export function badEvaluator(how: Misbehaviour): GateEvaluator & {
  calls: number;
  signals: AbortSignal[];
} {
  const evaluator = {
    type: 'flaky',
    calls: 0,
    signals: [] as AbortSignal[],
    validate: (spec: unknown) => ({ ...((spec ?? {}) as Record<string, never>) }),
    evaluate(gates: readonly Gate[], { signal }: { signal: AbortSignal }) {
      evaluator.calls++;
      evaluator.signals.push(signal);
      if (how === 'throws') throw new Error('the flaky API is down');
      if (how === 'non-map')
        return Promise.resolve(
          Object.fromEntries(gates.map((g) => [g.id, { kind: 'close' }])),
        ) as unknown as Promise<ReadonlyMap<string, GateDecision>>;
      return new Promise<ReadonlyMap<string, GateDecision>>(() => {});
    },
  };
  return evaluator;
}

/**
 * A store wrapper whose transactions fail, once per `failNext()`, when the patrol's convoys step
 * reads the finished convoys (the first thing that step does), as a Deacon crash mid-patrol.
 */
export function convoyStepFailingStore(inner: Store): Store & {
  failNext(): void;
  failures: number;
} {
  let armed = false;
  const wrapper = {
    failures: 0,
    get schema() {
      return inner.schema;
    },
    failNext() {
      armed = true;
    },
    transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
      return inner.transaction((tx) => {
        const wrapped: StoreTx = {
          get: (c, id) => tx.get(c, id),
          insert: (c, r) => tx.insert(c, r),
          update: (c, r) => tx.update(c, r),
          delete: (c, id) => tx.delete(c, id),
          count: (c, i, q) => tx.count(c, i, q),
          nextSequence: (n) => tx.nextSequence(n),
          find: (c, i, q) => {
            if (armed && c === 'convoys' && i === 'finished') {
              armed = false;
              wrapper.failures++;
              return Promise.reject(new Error('the store went away (simulated crash)'));
            }
            return tx.find(c, i, q);
          },
        };
        return fn(wrapped);
      });
    },
    schemaVersion: () => inner.schemaVersion(),
    close: () => inner.close(),
  };
  return wrapper;
}

/**
 * Queues a session request as the Mayor would, wakes the town (or calls `wake`), and waits for
 * its outcome; returns the outcome event and the request as stored after it.
 */
export async function sessionRequest(
  t: TestTown,
  action: LifecycleAction,
  target: string,
  wake: () => void = () => t.town.wake(),
) {
  const request = await t.model.lifecycle.request({ action, target, requestedBy: 'mayor' });
  const finished = new Promise<
    Extract<TownEvent, { type: 'lifecycle.done' } | { type: 'lifecycle.failed' }>
  >((resolve) => {
    const listener = (e: TownEvent) => {
      if (
        (e.type === 'lifecycle.done' || e.type === 'lifecycle.failed') &&
        e.requestId === request.id
      ) {
        t.town.events.off('*', listener);
        resolve(e);
      }
    };
    t.town.events.on('*', listener);
  });
  wake();
  const outcome = await until(t, finished, { withinMs: 120_000 });
  const stored = await t.model.lifecycle.get(request.id);
  if (!stored) throw new Error(`request ${request.id} is gone`);
  return { outcome, request: stored };
}
