import {
  type ChildInfo,
  type ChildSpec,
  type RestartType,
  type Strategy,
  SupervisorError,
  type SupervisorEvent,
} from '@belfry/core';
import { settle } from '@belfry/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sendTo, setup } from 'xstate';
import { callbackChild, harness, type Log } from './helpers';

// ---------------------------------------------------------------------------------------------
// Children. Every child logs `start:<id>` / `stop:<id>` through helpers' callbackChild, either
// directly (kind `callback`) or through a machine that invokes it (kind `machine`, which can also
// finish normally). The runner adds its own markers: `crash:<id>` before it makes a child throw
// (a crashed callback runs no cleanup, so it logs no `stop:`) and `exit:<id>` before it makes a
// machine child finish.
// ---------------------------------------------------------------------------------------------

interface ExitableInput {
  id: string;
  log: Log;
}

/** A machine child around callbackChild: CRASH makes the callback throw; EXIT_NORMAL finishes. */
const exitableChild = setup({
  types: { input: {} as ExitableInput, context: {} as ExitableInput },
  actors: { inner: callbackChild },
}).createMachine({
  context: ({ input }) => input,
  initial: 'running',
  states: {
    running: {
      invoke: {
        src: 'inner',
        id: 'inner',
        input: ({ context }) => ({ id: context.id, log: context.log }),
      },
      on: {
        CRASH: { actions: sendTo('inner', { type: 'CRASH' }) },
        EXIT_NORMAL: { target: 'done' },
      },
    },
    done: { type: 'final' },
  },
});

type Kind = 'callback' | 'machine';

interface ChildGen {
  restart: RestartType;
  kind: Kind;
}

type Op =
  | { op: 'crash'; i: number }
  | { op: 'exit'; i: number }
  | { op: 'advance'; ms: number }
  /** Advance by withinMs + delta: lands restarts right at the edges of the window. */
  | { op: 'advanceWindow'; delta: -1 | 0 | 1 }
  | { op: 'terminate'; i: number }
  | { op: 'restart'; i: number };

interface Scenario {
  strategy: Strategy;
  maxRestarts: number;
  withinMs: number;
  children: ChildGen[];
  ops: Op[];
}

const idOf = (i: number) => `c${i}`;
const indexOf = (id: string) => Number(id.slice(1));

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  strategy: fc.constantFrom<Strategy>('one_for_one', 'one_for_all', 'rest_for_one'),
  maxRestarts: fc.integer({ min: 0, max: 5 }),
  withinMs: fc.integer({ min: 100, max: 5_000 }),
  children: fc.array(
    fc.record({
      restart: fc.constantFrom<RestartType>('permanent', 'transient', 'temporary'),
      kind: fc.constantFrom<Kind>('callback', 'machine'),
    }),
    { minLength: 1, maxLength: 6, size: 'max' },
  ),
  ops: fc.array(
    fc.oneof(
      { weight: 4, arbitrary: fc.record({ op: fc.constant('crash' as const), i: fc.nat(5) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('exit' as const), i: fc.nat(5) }) },
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant('advance' as const),
          ms: fc.integer({ min: 0, max: 3_000 }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          op: fc.constant('advanceWindow' as const),
          delta: fc.constantFrom<-1 | 0 | 1>(-1, 0, 1),
        }),
      },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('terminate' as const), i: fc.nat(5) }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('restart' as const), i: fc.nat(5) }) },
    ),
    { minLength: 1, maxLength: 40, size: 'max' },
  ),
});

const NUM_RUNS = 150;

// ---------------------------------------------------------------------------------------------
// The runner: drives one scenario and records, for every step, what the log, the events and
// whichChildren() looked like right after it.
// ---------------------------------------------------------------------------------------------

interface ChildView {
  id: string;
  state: ChildInfo['state'];
  restarts: number;
  ref: ChildInfo['ref'];
  /** `ref.getSnapshot().status`, read right after the step. */
  refStatus: string | undefined;
}

interface Step {
  /** The operation, or `stop` for the final `sup.stop()`. */
  op: Op | { op: 'stop' };
  /** The child the operation targeted, if any. */
  id: string | undefined;
  now: number;
  /** Log entries written during the step (including the runner's marker, first). */
  logDelta: string[];
  /** The whole log up to the end of the step. */
  logUpTo: number;
  /** Events emitted during the step. */
  events: SupervisorEvent[];
  before: ChildView[];
  after: ChildView[];
  supStatusBefore: string;
  supStatusAfter: string;
  /** The rejection of the admin call made in the step, if it was rejected. */
  rejection: unknown;
  /** Whether an admin call was made and resolved. */
  resolved: boolean;
}

interface Trace {
  scenario: Scenario;
  log: Log;
  events: SupervisorEvent[];
  steps: Step[];
  /** What `whenStopped()` settled with. */
  outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
  finalStatus: string;
}

function view(children: ChildInfo[]): ChildView[] {
  return children.map((c) => ({
    id: c.id,
    state: c.state,
    restarts: c.restarts,
    ref: c.ref,
    refStatus: c.ref?.getSnapshot().status,
  }));
}

async function run(s: Scenario): Promise<Trace> {
  const log: Log = [];
  const specs: ChildSpec[] = s.children.map((c, i) => ({
    id: idOf(i),
    logic: c.kind === 'callback' ? callbackChild : exitableChild,
    input: { id: idOf(i), log },
    restart: c.restart,
    shutdown: 'brutal',
  }));
  const h = harness({
    log,
    strategy: s.strategy,
    maxRestarts: s.maxRestarts,
    withinMs: s.withinMs,
    children: specs,
  });
  const { sup, clock, rec } = h;
  let outcome: Trace['outcome'] | undefined;
  sup.whenStopped().then(
    (value) => {
      outcome = { ok: true, value };
    },
    (error: unknown) => {
      outcome = { ok: false, error };
    },
  );
  const steps: Step[] = [];
  const n = s.children.length;
  const runningRef = (id: string) => {
    const c = sup.whichChildren().find((x) => x.id === id);
    return c && (c.state === 'running' || c.state === 'starting') ? c.ref : undefined;
  };

  const step = async (op: Step['op'], id: string | undefined, body: () => Promise<void>) => {
    const logFrom = log.length;
    const evFrom = rec.events.length;
    const before = view(sup.whichChildren());
    const supStatusBefore = sup.actor.getSnapshot().status;
    const record: Step = {
      op,
      id,
      now: clock.now(),
      logDelta: [],
      logUpTo: 0,
      events: [],
      before,
      after: [],
      supStatusBefore,
      supStatusAfter: '',
      rejection: undefined,
      resolved: false,
    };
    try {
      await body();
      record.resolved = op.op === 'terminate' || op.op === 'restart';
    } catch (error) {
      record.rejection = error;
    }
    await settle();
    record.logDelta = log.slice(logFrom);
    record.logUpTo = log.length;
    record.events = rec.events.slice(evFrom);
    record.after = view(sup.whichChildren());
    record.supStatusAfter = sup.actor.getSnapshot().status;
    steps.push(record);
  };

  for (const op of s.ops) {
    if (op.op === 'advance' || op.op === 'advanceWindow') {
      const ms = op.op === 'advance' ? op.ms : s.withinMs + op.delta;
      await step(op, undefined, () => clock.advance(ms));
      continue;
    }
    const id = idOf(op.i % n);
    switch (op.op) {
      case 'crash':
        await step(op, id, async () => {
          const ref = runningRef(id);
          if (!ref) return;
          log.push(`crash:${id}`);
          ref.send({ type: 'CRASH' });
        });
        break;
      case 'exit':
        await step(op, id, async () => {
          if (s.children[op.i % n]?.kind !== 'machine') return;
          const ref = runningRef(id);
          if (!ref) return;
          log.push(`exit:${id}`);
          ref.send({ type: 'EXIT_NORMAL' });
        });
        break;
      case 'terminate':
        await step(op, id, () => sup.terminateChild(id));
        break;
      case 'restart':
        await step(op, id, async () => {
          await sup.restartChild(id);
        });
        break;
    }
  }
  await step({ op: 'stop' }, undefined, async () => {
    await sup.stop();
  });
  await settle();
  if (!outcome) throw new Error('whenStopped() did not settle after stop()');
  return {
    scenario: s,
    log,
    events: rec.events,
    steps,
    outcome,
    finalStatus: sup.actor.getSnapshot().status,
  };
}

function shouldRestart(type: RestartType, reason: string): boolean {
  return type === 'permanent' || (type === 'transient' && reason === 'error');
}

const isActive = (c: ChildView) => c.state === 'running' || c.state === 'starting';

/** The log entries a step wrote after its own marker (what the supervisor did in reaction). */
function reaction(st: Step): string[] {
  const d = st.logDelta;
  if (d[0]?.startsWith('crash:')) return d.slice(1);
  if (d[0]?.startsWith('exit:')) return d.slice(2); // marker, then the child's own stop
  return d;
}

const ids = (entries: string[], prefix: 'start' | 'stop') =>
  entries.filter((e) => e.startsWith(`${prefix}:`)).map((e) => e.slice(prefix.length + 1));

/** Fails with the scenario and step in the message, so a shrunk counterexample is readable. */
function where(t: Trace, st?: Step): string {
  const steps = st ? ` at step ${t.steps.indexOf(st)} ${JSON.stringify(st.op)}` : '';
  return `${JSON.stringify({ ...t.scenario, ops: undefined })}${steps}`;
}

// ---------------------------------------------------------------------------------------------
// (a) restart intensity
// ---------------------------------------------------------------------------------------------

function checkIntensity(t: Trace): void {
  const { maxRestarts, withinMs } = t.scenario;
  const decisions = t.events
    .filter((e) => e.type === 'child.restarting' && e.childId === e.cause)
    .map((e) => e.at);
  for (const at of decisions) {
    const inWindow = decisions.filter((x) => x >= at - withinMs && x <= at).length;
    expect(inWindow, `${where(t)}: restarts in [${at - withinMs}, ${at}]`).toBeLessThanOrEqual(
      maxRestarts,
    );
  }
  const gaveUp = t.events.filter((e) => e.type === 'supervisor.gaveUp');
  const failed = !t.outcome.ok;
  expect(failed, where(t)).toBe(t.finalStatus === 'error');
  expect(gaveUp.length, where(t)).toBe(failed ? 1 : 0);
  if (!t.outcome.ok) {
    const err = t.outcome.error;
    expect(err, where(t)).toBeInstanceOf(SupervisorError);
    expect((err as SupervisorError).code).toBe('MAX_RESTART_INTENSITY');
    const escalated = t.events.filter((e) => e.type === 'supervisor.escalated');
    expect(escalated.map((e) => e.error)).toEqual([err]);
  }
  // It gives up only when the window is really full: at the moment it gave up, exactly
  // maxRestarts earlier decisions lie in [t - withinMs, t] (OTP's window, both ends counted).
  for (const g of gaveUp) {
    const inWindow = decisions.filter((x) => x >= g.at - withinMs && x <= g.at).length;
    expect(inWindow, `${where(t)}: gave up at ${g.at}`).toBe(maxRestarts);
  }
  // Every exit that asked for a restart got a decision (or made the supervisor give up) at once.
  for (const st of t.steps) {
    for (const e of st.events) {
      if (e.type !== 'child.exited' || e.initiatedBy !== 'child' || !e.willRestart) continue;
      const decided = st.events.some(
        (x) =>
          (x.type === 'child.restarting' && x.childId === e.childId && x.cause === e.childId) ||
          (x.type === 'supervisor.gaveUp' && x.childId === e.childId),
      );
      expect(decided, `${where(t, st)}: ${e.childId} exited (${e.reason})`).toBe(true);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// (b) stop order
// ---------------------------------------------------------------------------------------------

function checkStopOrder(t: Trace): void {
  const { strategy } = t.scenario;
  const temporary = (id: string) =>
    t.scenario.children[indexOf(id)]?.restart === ('temporary' as RestartType);
  for (const st of t.steps) {
    const running = st.before.filter(isActive).map((c) => c.id);
    if (st.op.op === 'stop') {
      // The final graceful stop: every running child, in reverse spec order, and nothing else.
      if (st.supStatusBefore === 'active') {
        expect(st.logDelta, where(t, st)).toEqual(running.map((id) => `stop:${id}`).reverse());
      } else {
        expect(st.logDelta, where(t, st)).toEqual([]);
      }
      continue;
    }
    const failedId = st.id;
    if (!failedId || (st.op.op !== 'crash' && st.op.op !== 'exit') || st.logDelta.length === 0) {
      continue;
    }
    const after = reaction(st);
    const gaveUp = st.events.some((e) => e.type === 'supervisor.gaveUp');
    const others = running.filter((id) => id !== failedId);
    if (gaveUp) {
      // Giving up stops every other running child, in reverse spec order, and starts nothing.
      expect(after, where(t, st)).toEqual(others.map((id) => `stop:${id}`).reverse());
      continue;
    }
    const restarted = st.events.some(
      (e) => e.type === 'child.restarting' && e.childId === failedId && e.cause === failedId,
    );
    if (!restarted) {
      expect(after, where(t, st)).toEqual([]);
      continue;
    }
    // A restart decision: first the siblings the strategy takes down (reverse spec order), then
    // the group starts again (spec order), its temporary siblings left out.
    const fi = indexOf(failedId);
    const siblings =
      strategy === 'one_for_one'
        ? []
        : strategy === 'one_for_all'
          ? others
          : others.filter((id) => indexOf(id) > fi);
    const group = [...siblings, failedId].sort((a, b) => indexOf(a) - indexOf(b));
    const starts = group.filter((id) => id === failedId || !temporary(id));
    const stops = ids(after, 'stop');
    expect(stops, `${where(t, st)}: siblings stopped`).toEqual(
      [...siblings].sort((a, b) => indexOf(b) - indexOf(a)),
    );
    expect(ids(after, 'start'), `${where(t, st)}: group started`).toEqual(starts);
    // All stops come before the first start.
    expect(after, where(t, st)).toEqual([
      ...stops.map((id) => `stop:${id}`),
      ...starts.map((id) => `start:${id}`),
    ]);
  }
}

// ---------------------------------------------------------------------------------------------
// (c) temporary children
// ---------------------------------------------------------------------------------------------

function checkTemporary(t: Trace): void {
  const temps = t.scenario.children
    .map((c, i) => (c.restart === 'temporary' ? idOf(i) : undefined))
    .filter((id): id is string => id !== undefined);
  for (const id of temps) {
    const restarting = t.events.filter((e) => e.type === 'child.restarting' && e.childId === id);
    expect(restarting, `${where(t)}: ${id} restarting`).toEqual([]);
    const started = t.events.filter((e) => e.type === 'child.started' && e.childId === id);
    expect(started.length, `${where(t)}: ${id} started`).toBe(1);
    expect(
      t.log.filter((e) => e === `start:${id}`),
      where(t),
    ).toEqual([`start:${id}`]);
  }
  for (const st of t.steps) {
    if (st.supStatusAfter !== 'active') continue;
    for (const id of temps) {
      // Once it has stopped (crashed, finished, or was terminated), its spec is gone.
      const stopped = t.log
        .slice(0, st.logUpTo)
        .some((e) => e === `stop:${id}` || e === `crash:${id}`);
      const listed = st.after.find((c) => c.id === id);
      if (stopped) expect(listed, `${where(t, st)}: ${id} still listed`).toBeUndefined();
      else expect(listed?.state, `${where(t, st)}: ${id}`).toBe('running');
    }
  }
}

// ---------------------------------------------------------------------------------------------
// (d) whichChildren() matches reality
// ---------------------------------------------------------------------------------------------

function checkReality(t: Trace): void {
  const alive = new Set<string>();
  let pos = 0;
  for (const st of t.steps) {
    for (; pos < st.logUpTo; pos++) {
      const entry = t.log[pos] as string;
      const [what, id] = entry.split(':') as [string, string];
      if (what === 'start') {
        expect(alive.has(id), `${where(t, st)}: ${id} started twice without a stop`).toBe(false);
        alive.add(id);
      } else if (what === 'stop' || what === 'crash') {
        expect(alive.has(id), `${where(t, st)}: ${entry} of a child not alive`).toBe(true);
        alive.delete(id);
      }
    }
    const active = st.after.filter(isActive);
    expect(
      active.map((c) => c.id).sort(),
      `${where(t, st)}: whichChildren vs log; log so far ${JSON.stringify(t.log.slice(0, pos))}`,
    ).toEqual([...alive].sort());
    for (const c of active) expect(c.refStatus, `${where(t, st)}: ${c.id}`).toBe('active');
    for (const c of st.after.filter((x) => !isActive(x))) {
      expect(c.ref, `${where(t, st)}: ${c.id} (${c.state}) keeps a ref`).toBeUndefined();
    }
    expect(new Set(active.map((c) => c.ref)).size, where(t, st)).toBe(active.length);
    // Specs keep their order: ids are listed in spec order.
    const listed = st.after.map((c) => indexOf(c.id));
    expect(listed, where(t, st)).toEqual([...listed].sort((a, b) => a - b));
  }
  expect([...alive], `${where(t)}: alive after the final stop`).toEqual([]);
}

// ---------------------------------------------------------------------------------------------
// A reference model of the OTP rules, for everything at once: the log each step writes, admin
// call results, and which specs exist with which restart counts.
// ---------------------------------------------------------------------------------------------

interface ModelChild {
  id: string;
  restart: RestartType;
  present: boolean;
  running: boolean;
  restarts: number;
}

function checkModel(t: Trace): void {
  const s = t.scenario;
  const children: ModelChild[] = s.children.map((c, i) => ({
    id: idOf(i),
    restart: c.restart,
    present: true,
    running: true,
    restarts: 0,
  }));
  const decisions: number[] = [];
  let status: 'active' | 'error' | 'done' = 'active';
  const byId = (id: string) => children.find((c) => c.id === id) as ModelChild;

  const ended = (x: ModelChild, reason: 'error' | 'normal', now: number, out: string[]) => {
    x.running = false;
    if (!shouldRestart(x.restart, reason)) {
      if (x.restart === 'temporary') x.present = false;
      return;
    }
    const recent = decisions.filter((d) => d >= now - s.withinMs).length;
    if (recent + 1 > s.maxRestarts) {
      for (const c of [...children].reverse()) {
        if (c.present && c.running) {
          out.push(`stop:${c.id}`);
          c.running = false;
        }
      }
      status = 'error';
      return;
    }
    decisions.push(now);
    const xi = children.indexOf(x);
    const group = children.filter(
      (c, i) =>
        c.present &&
        (c === x ||
          (c.running &&
            (s.strategy === 'one_for_all' || (s.strategy === 'rest_for_one' && i > xi)))),
    );
    for (const c of group) if (c === x || c.restart !== 'temporary') c.restarts++;
    for (const c of [...group].reverse()) {
      if (c !== x && c.running) {
        out.push(`stop:${c.id}`);
        c.running = false;
      }
    }
    for (const c of group) if (c !== x && c.restart === 'temporary') c.present = false;
    for (const c of group) {
      if (!c.present) continue;
      out.push(`start:${c.id}`);
      c.running = true;
    }
  };

  const code = (e: unknown) => (e instanceof SupervisorError ? e.code : String(e));

  for (const st of t.steps) {
    const msg = where(t, st);
    const out: string[] = [];
    let expectRejection: string | undefined;
    const op = st.op;
    if (op.op === 'crash' || op.op === 'exit') {
      const x = byId(st.id as string);
      const eligible =
        status === 'active' &&
        x.present &&
        x.running &&
        (op.op === 'crash' || s.children[indexOf(x.id)]?.kind === 'machine');
      if (eligible) {
        out.push(`${op.op}:${x.id}`);
        if (op.op === 'exit') out.push(`stop:${x.id}`);
        ended(x, op.op === 'crash' ? 'error' : 'normal', st.now, out);
      }
    } else if (op.op === 'terminate') {
      const x = byId(st.id as string);
      if (status !== 'active') expectRejection = 'NOT_RUNNING';
      else if (!x.present) expectRejection = 'NOT_FOUND';
      else {
        if (x.running) out.push(`stop:${x.id}`);
        x.running = false;
        if (x.restart === 'temporary') x.present = false;
      }
    } else if (op.op === 'restart') {
      const x = byId(st.id as string);
      if (status !== 'active') expectRejection = 'NOT_RUNNING';
      else if (!x.present) expectRejection = 'NOT_FOUND';
      else if (x.running) expectRejection = 'RUNNING';
      else {
        out.push(`start:${x.id}`);
        x.running = true;
      }
    } else if (op.op === 'stop') {
      if (status === 'active') {
        for (const c of [...children].reverse()) {
          if (c.present && c.running) out.push(`stop:${c.id}`);
          c.running = false;
        }
        status = 'done';
      }
    }
    expect(st.logDelta, `${msg}: log`).toEqual(out);
    if (op.op === 'terminate' || op.op === 'restart') {
      expect(st.rejection === undefined ? 'resolved' : code(st.rejection), msg).toBe(
        expectRejection ?? 'resolved',
      );
    }
    expect(st.supStatusAfter, msg).toBe(status);
    if (status === 'active') {
      expect(
        st.after.map((c) => [c.id, c.state, c.restarts]),
        `${msg}: whichChildren`,
      ).toEqual(
        children
          .filter((c) => c.present)
          .map((c) => [c.id, c.running ? 'running' : 'stopped', c.restarts]),
      );
    }
  }
  expect(t.outcome.ok, where(t)).toBe(status === 'done');
}

// ---------------------------------------------------------------------------------------------

const property = (check: (t: Trace) => void) =>
  fc.assert(
    fc.asyncProperty(scenarioArb, async (s) => {
      check(await run(s));
    }),
    { numRuns: NUM_RUNS },
  );

describe('supervisor properties under random crashes, exits, admin calls and time', () => {
  it('never makes more than maxRestarts restart decisions within withinMs, and fails only with MAX_RESTART_INTENSITY', async () => {
    await property(checkIntensity);
  });

  it('stops children in reverse spec order on shutdown, and restarts groups stop-reversed then start-ordered', async () => {
    await property(checkStopOrder);
  });

  it('never restarts a temporary child and drops its spec once it stopped', async () => {
    await property(checkTemporary);
  });

  it('reports in whichChildren() exactly the children that are alive, each with its own active ref', async () => {
    await property(checkReality);
  });

  it('follows the OTP reference model step by step (log, admin results, specs and restart counts)', async () => {
    await property(checkModel);
  });

  it('countChildren() agrees with whichChildren() after every step, in every child state', async () => {
    // Here machine children keep their default 5 s shutdown budget (they ignore the request, so
    // they are killed when it runs out) and some children have backoff, so children pass through
    // `restarting` and `backoff` while admin calls wait; the clock moves only when an op says so.
    const countedArb = fc.record({
      scenario: scenarioArb,
      backoff: fc.array(fc.option(fc.integer({ min: 1, max: 2_000 })), {
        minLength: 6,
        maxLength: 6,
      }),
    });
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(countedArb, async ({ scenario: s, backoff }) => {
        const log: Log = [];
        const h = harness({
          log,
          strategy: s.strategy,
          maxRestarts: s.maxRestarts,
          withinMs: s.withinMs,
          children: s.children.map((c, i) => {
            const minMs = backoff[i];
            return {
              id: idOf(i),
              logic: c.kind === 'callback' ? callbackChild : exitableChild,
              input: { id: idOf(i), log },
              restart: c.restart,
              ...(minMs == null ? {} : { backoff: { minMs, jitter: 0 } }),
            };
          }),
        });
        h.sup.whenStopped().catch(() => {});
        const agree = () => {
          const list = h.sup.whichChildren();
          const counts = h.sup.countChildren();
          const byState = (st: ChildInfo['state']) => list.filter((c) => c.state === st).length;
          for (const c of list) seen.add(c.state);
          expect(counts).toEqual({
            specs: list.length,
            active: list.filter((c) => c.ref !== undefined).length,
            supervisors: list.filter((c) => c.type === 'supervisor').length,
            workers: list.filter((c) => c.type === 'worker').length,
            starting: byState('starting'),
            running: byState('running'),
            restarting: byState('restarting'),
            backoff: byState('backoff'),
            stopped: byState('stopped'),
          });
          // A child has a ref exactly while it is running (a stop in progress keeps it too).
          for (const c of list) {
            if (c.state === 'running' || c.state === 'starting') expect(c.ref).toBeDefined();
            if (c.state === 'backoff' || c.state === 'stopped') expect(c.ref).toBeUndefined();
          }
        };
        agree();
        const n = s.children.length;
        for (const op of s.ops) {
          if (op.op === 'advance') await h.clock.advance(op.ms);
          else if (op.op === 'advanceWindow') await h.clock.advance(s.withinMs + op.delta);
          else {
            const id = idOf(op.i % n);
            const ref = h.sup.whichChildren().find((c) => c.id === id)?.ref;
            if (op.op === 'crash') ref?.send({ type: 'CRASH' });
            else if (op.op === 'exit') ref?.send({ type: 'EXIT_NORMAL' });
            else if (op.op === 'terminate') h.sup.terminateChild(id).catch(() => {});
            else h.sup.restartChild(id).catch(() => {});
            await settle();
          }
          agree();
        }
        const stopped = h.sup.stop().catch(() => {});
        await h.clock.runAll();
        await stopped;
        agree();
        expect(h.sup.countChildren().active).toBe(0);
      }),
      { numRuns: NUM_RUNS },
    );
    // The generator really reaches every state this property is about.
    expect([...seen].sort()).toEqual(['backoff', 'restarting', 'running', 'stopped']);
  });
});
