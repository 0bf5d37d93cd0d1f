import { ConfigError } from '@belfry/core';
import {
  GATE_TYPE_NAME,
  type Gate,
  type GateEvaluator,
  isGateDecision,
  type JsonObject,
} from '@belfry/core/gate';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestTown, type TestTown } from './createTestTown';
import { SimulatedClock } from './SimulatedClock';

/** A gate the suite builds: its spec, and how old it is when evaluated. */
export interface GateConformanceCase {
  /** A spec `validate` accepts. */
  spec: unknown;
  /** How long after the gate's creation it is evaluated (ms). @defaultValue 0 */
  ageMs?: number;
}

/** Options of {@link runGateConformance}: the specs and situations of the evaluator under test. */
export interface GateConformanceOptions {
  /** A name for the describe block. @defaultValue 'GateEvaluator conformance' */
  name?: string;
  /** Specs `validate` must accept (at least one). */
  validSpecs: readonly unknown[];
  /** Specs `validate` must refuse with a ConfigError (besides non-objects, which the suite tries). */
  invalidSpecs: readonly unknown[];
  /** A gate the evaluator leaves open (`pending` or `escalate`). */
  staysOpen: GateConformanceCase;
  /**
   * A gate the evaluator closes by itself; `prepare` makes the world so (marks a run completed).
   * Omit it for an evaluator that never closes a gate by itself (a human gate).
   */
  closes?: GateConformanceCase & { prepare?: () => void | Promise<void> };
  /**
   * A gate whose evaluation waits on I/O that does not finish by itself, and a promise that
   * resolves once that I/O began: the suite aborts it midway.
   */
  blocks?: GateConformanceCase & { started: () => Promise<void> };
  /**
   * The spec of a damaged stored record (one that bypassed `validate`): the evaluator must decide
   * it alone, never close it, and still decide the rest of its batch.
   * @defaultValue `{}`
   */
  damagedSpec?: JsonObject;
  /** How long, in real time, an aborted evaluation may take to settle. @defaultValue 5_000 (ms) */
  abortWithinMs?: number;
  /** Called after each test. */
  cleanup?: () => void | Promise<void>;
}

const START = 1_700_000_000_000;
let serial = 0;

/** A gate record as the model would store it, created `ageMs` before `now`. */
function gateRecord(evaluator: GateEvaluator, spec: JsonObject, now: number, ageMs = 0): Gate {
  const createdAt = now - ageMs;
  const dueAt = evaluator.firstDueAt?.(spec, createdAt) ?? createdAt;
  return {
    id: `gt-conf${++serial}`,
    type: evaluator.type,
    spec,
    status: 'open',
    createdAt,
    dueAt,
    waiters: [],
    escalations: [],
  };
}

/** Settles with the promise, or fails once `ms` of real time passed. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Wraps a gate evaluator that does real I/O (an HTTP request) so a test on simulated time knows
 * when an evaluation is in flight: await `idle()` before moving the clock, or the town's own
 * evaluation time limit fires while the real reply is on its way.
 *
 * @example
 * ```ts
 * const gh = trackEvaluator(githubGate({ baseUrl }));
 * const t = await createTestTown({ gates: [gh.evaluator] });
 * for (let i = 0; i < 60; i++) {
 *   await gh.idle();
 *   await t.advance(1_000);
 * }
 * ```
 */
export function trackEvaluator(evaluator: GateEvaluator): {
  evaluator: GateEvaluator;
  idle(): Promise<void>;
} {
  const running = new Set<Promise<unknown>>();
  const wrapped: GateEvaluator = {
    type: evaluator.type,
    validate: (spec) => evaluator.validate(spec),
    ...(evaluator.firstDueAt
      ? { firstDueAt: (spec: JsonObject, at: number) => evaluator.firstDueAt?.(spec, at) }
      : {}),
    ...(evaluator.attach ? { attach: evaluator.attach.bind(evaluator) } : {}),
    evaluate(gates, context) {
      const p = evaluator.evaluate(gates, context);
      running.add(p);
      p.then(
        () => running.delete(p),
        () => running.delete(p),
      );
      return p;
    },
  };
  return {
    evaluator: wrapped,
    async idle() {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  };
}

/**
 * Registers a vitest suite that every {@link GateEvaluator} runs against itself: a valid type
 * name; `validate` accepts good specs (returning plain JSON it accepts again) and refuses bad
 * ones with a ConfigError naming the field; batch evaluation (one well-formed decision per gate
 * decided, none for other gates, the same decision alone or in company); a damaged record decided
 * alone; the abort signal honoured (an aborted evaluation rejects, in-flight I/O is cut short);
 * and, in a town, its gates closing through the patrol while an evaluator that throws next to it
 * affects only its own gates.
 *
 * @param makeEvaluator - makes the evaluator under test; called once per test.
 * @param options - its specs and situations; see {@link GateConformanceOptions}.
 * @example
 * ```ts
 * import { timerGate } from '@belfry/gate-timer';
 *
 * runGateConformance(() => timerGate(), {
 *   validSpecs: [{ durationMs: 1_000 }],
 *   invalidSpecs: [{ durationMs: -1 }, { durationMs: 1, extra: true }],
 *   staysOpen: { spec: { durationMs: 60_000 } },
 *   closes: { spec: { durationMs: 1_000 }, ageMs: 5_000 },
 * });
 * ```
 */
export function runGateConformance(
  makeEvaluator: () => GateEvaluator | Promise<GateEvaluator>,
  options: GateConformanceOptions,
): void {
  const abortWithinMs = options.abortWithinMs ?? 5_000;
  const towns: TestTown[] = [];

  const evaluate = (
    evaluator: GateEvaluator,
    gates: readonly Gate[],
    now: number,
    signal: AbortSignal = new AbortController().signal,
  ) => evaluator.evaluate(gates, { now, clock: new SimulatedClock(now), signal });

  const make = (evaluator: GateEvaluator, c: GateConformanceCase, now = START) =>
    gateRecord(evaluator, evaluator.validate(c.spec), now, c.ageMs);

  describe(options.name ?? 'GateEvaluator conformance', () => {
    afterEach(async () => {
      for (const t of towns.splice(0)) await t.stop();
      await options.cleanup?.();
    });

    it('has a gate type name and the functions of a GateEvaluator', async () => {
      const evaluator = await makeEvaluator();
      expect(evaluator.type).toMatch(GATE_TYPE_NAME);
      expect(typeof evaluator.validate).toBe('function');
      expect(typeof evaluator.evaluate).toBe('function');
      for (const key of ['firstDueAt', 'attach'] as const) {
        if (evaluator[key] !== undefined) expect(typeof evaluator[key]).toBe('function');
      }
    });

    it('validate accepts each valid spec and returns plain JSON that it accepts again unchanged', async () => {
      const evaluator = await makeEvaluator();
      expect(options.validSpecs.length).toBeGreaterThan(0);
      for (const spec of options.validSpecs) {
        const out = evaluator.validate(spec);
        expect(JSON.parse(JSON.stringify(out))).toEqual(out);
        expect(evaluator.validate(out)).toEqual(out);
        const due = evaluator.firstDueAt?.(out, START);
        if (due !== undefined) expect(Number.isFinite(due)).toBe(true);
      }
    });

    it('validate refuses each bad spec (and any non-object) with a ConfigError naming the field', async () => {
      const evaluator = await makeEvaluator();
      expect(options.invalidSpecs.length).toBeGreaterThan(0);
      for (const spec of [...options.invalidSpecs, 42, 'spec', [], true]) {
        let thrown: unknown;
        try {
          evaluator.validate(spec);
        } catch (error) {
          thrown = error;
        }
        expect(thrown, `validate(${JSON.stringify(spec)}) must throw`).toBeInstanceOf(ConfigError);
        const error = thrown as ConfigError;
        expect(error.path).toMatch(/^spec/);
        expect(error.message).toContain(error.path);
      }
    });

    it('an empty batch gets no decisions', async () => {
      const evaluator = await makeEvaluator();
      const decisions = await evaluate(evaluator, [], START);
      expect(decisions).toBeInstanceOf(Map);
      expect(decisions.size).toBe(0);
    });

    it('a batch gets well-formed decisions for its own gates only, open ones never closed', async () => {
      const evaluator = await makeEvaluator();
      await options.closes?.prepare?.();
      const open = [1, 2, 3].map(() => make(evaluator, options.staysOpen));
      const closes = options.closes;
      const closing = closes ? [1, 2].map(() => make(evaluator, closes)) : [];
      const batch = [...open, ...closing];
      const decisions = await evaluate(evaluator, batch, START);
      expect(decisions).toBeInstanceOf(Map);
      const ids = new Set(batch.map((g) => g.id));
      for (const [id, decision] of decisions) {
        expect(ids.has(id), `a decision for ${id}, which is not in the batch`).toBe(true);
        expect(
          isGateDecision(decision),
          `the decision for ${id}: ${JSON.stringify(decision)}`,
        ).toBe(true);
      }
      for (const g of open) expect(decisions.get(g.id)?.kind).not.toBe('close');
      for (const g of closing) expect(decisions.get(g.id)?.kind).toBe('close');
    });

    it('a gate gets the same decision alone as in company', async () => {
      const evaluator = await makeEvaluator();
      await options.closes?.prepare?.();
      const cases = [options.staysOpen, ...(options.closes ? [options.closes] : [])];
      for (const c of cases) {
        const alone = make(evaluator, c);
        const aloneKind = (await evaluate(evaluator, [alone], START)).get(alone.id)?.kind;
        const company = [make(evaluator, options.staysOpen), make(evaluator, c)];
        const decided = await evaluate(evaluator, company, START);
        expect(decided.get((company[1] as Gate).id)?.kind).toBe(aloneKind);
      }
    });

    it('a damaged record in a batch is decided alone, never closed, and the rest still decided', async () => {
      const evaluator = await makeEvaluator();
      await options.closes?.prepare?.();
      const damaged: Gate = {
        ...make(evaluator, options.staysOpen),
        spec: options.damagedSpec ?? {},
      };
      const good = make(evaluator, options.closes ?? options.staysOpen);
      const decisions = await evaluate(evaluator, [damaged, good], START);
      expect(decisions.get(damaged.id)?.kind).not.toBe('close');
      if (options.closes) expect(decisions.get(good.id)?.kind).toBe('close');
      else expect(['pending', 'escalate']).toContain(decisions.get(good.id)?.kind);
    });

    it('an evaluation whose signal is already aborted rejects', async () => {
      const evaluator = await makeEvaluator();
      const controller = new AbortController();
      controller.abort(new Error('the Deacon gave up'));
      const gates = [make(evaluator, options.staysOpen)];
      const outcome = await within(
        evaluate(evaluator, gates, START, controller.signal).then(
          () => 'resolved',
          () => 'rejected',
        ),
        abortWithinMs,
        'an evaluation with an aborted signal',
      );
      expect(outcome).toBe('rejected');
    });

    const blocks = options.blocks;
    if (blocks)
      it('aborting an evaluation midway cuts its I/O short: it rejects promptly', async () => {
        const evaluator = await makeEvaluator();
        const controller = new AbortController();
        const evaluation = evaluate(evaluator, [make(evaluator, blocks)], START, controller.signal);
        const outcome = evaluation.then(
          () => 'resolved',
          () => 'rejected',
        );
        await within(blocks.started(), abortWithinMs, 'the blocking I/O to begin');
        controller.abort(new Error('the Deacon gave up'));
        expect(await within(outcome, abortWithinMs, 'the aborted evaluation')).toBe('rejected');
      });

    it('in a town, next to an evaluator that throws, its gates are still decided and only the thrower is reported', async () => {
      const subject = trackEvaluator(await makeEvaluator());
      const thrower: GateEvaluator = {
        type: subject.evaluator.type === 'conf-thrower' ? 'conf-thrower2' : 'conf-thrower',
        validate: () => ({}),
        evaluate: async () => {
          throw new Error('the thrower always throws');
        },
      };
      const t = await createTestTown({
        gates: [subject.evaluator, thrower],
        timings: { heartbeatMs: 1_000, patrolIntervalMs: 1_000, gateIntervalMs: 1_000 },
      });
      towns.push(t);
      await options.closes?.prepare?.();
      const target = options.closes ?? options.staysOpen;
      const molecule = await t.model.molecules.create({
        name: 'conformance',
        rig: 'api',
        steps: [
          { name: 'wait', gate: { type: subject.evaluator.type, spec: target.spec as JsonObject } },
          { name: 'go' },
        ],
      });
      const gateId = molecule.waitingOn as string;
      const thrown = await t.town.gates.create({ type: thrower.type, spec: {} });
      const reported = () =>
        t.model.reports.byIncident(`gate-evaluator:${thrower.type}:EVALUATOR_FAILED`);
      // Move time (never while the subject's I/O is in flight) until both were evaluated.
      const limit = (target.ageMs ?? 0) + 120_000;
      for (let waited = 0; ; waited += 1_000) {
        await subject.idle();
        const gate = await t.model.gates.require(gateId);
        const evaluated = options.closes
          ? gate.status === 'closed'
          : gate.lastEvaluatedAt !== undefined;
        if (evaluated && (await reported())) break;
        if (waited > limit)
          throw new Error(`the gate was not decided within ${limit} ms: ${JSON.stringify(gate)}`);
        await t.advance(1_000);
      }
      await subject.idle();
      expect((await t.model.gates.require(thrown.id)).status).toBe('open');
      expect(
        await t.model.reports.byIncident(
          `gate-evaluator:${subject.evaluator.type}:EVALUATOR_FAILED`,
        ),
      ).toBeUndefined();
      if (options.closes) {
        expect((await t.model.gates.require(gateId)).status).toBe('closed');
        const released = await t.model.molecules.require(molecule.id);
        expect(['ready', 'running', 'failed']).toContain(released.status);
      } else {
        expect((await t.model.gates.require(gateId)).status).toBe('open');
      }
    });
  });
}
