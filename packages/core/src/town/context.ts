import type { Clock } from '../Clock';
import type { SessionDriver, SessionStatus } from '../driver/SessionDriver';
import type { GateEvaluator } from '../gate/GateEvaluator';
import { describe, fail } from '../internal/validate';
import type { FileReportInput } from '../model/Reports';
import type { TownModel } from '../model/TownModel';
import type { LifecycleAction, LifecycleRequest, Report } from '../model/types';
import type { JsonValue } from '../store/Store';
import type {
  AgentHook,
  AgentLaunch,
  Assessment,
  MayorMessage,
  Poller,
  Situation,
  TownEvent,
  TownEventBus,
  TownTimings,
} from './types';

const RIG_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

/**
 * Checks a rig name for a town: it names sessions (`<rig>-<polecat>`), so it is 1 to 32 letters,
 * digits, `_` or `-`. With polecat names of at most 31 characters and no `-`, every session name
 * fits a driver's 64 characters and maps back to one agent.
 *
 * @throws ConfigError `INVALID_OPTION` at `path`.
 */
export function checkRigName(value: unknown, path: string): string {
  if (typeof value !== 'string' || !RIG_NAME.test(value))
    fail(
      'INVALID_OPTION',
      path,
      `a rig name must be 1 to 32 letters, digits, '_' or '-', starting with a letter or digit (it names sessions); got ${describe(value)}`,
    );
  return value;
}

/**
 * Races `work` with a timer on the clock: when `ms` pass first, `abort` is aborted and the
 * result rejects with `onTimeout()`. The timer is cleared either way.
 */
export function withDeadline<T>(
  clock: Clock,
  work: Promise<T>,
  ms: number,
  abort: AbortController,
  onTimeout: () => Error,
): Promise<T> {
  let timer: unknown;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = clock.setTimeout(() => {
        abort.abort();
        reject(onTimeout());
      }, ms);
    }),
  ]).finally(() => clock.clearTimeout(timer));
}

/**
 * Calls a user hook that has no time limit of its own (an agent's `launch` or `prime`) within
 * `timings.callTimeoutMs`: past it, the hook's signal is aborted and the call rejects, naming
 * `what`. A hook that throws rejects the same way.
 */
export function callHook<T>(
  ctx: Pick<TownContext, 'clock' | 'timings'>,
  what: string,
  hook: (signal: AbortSignal) => T | Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  const ms = ctx.timings.callTimeoutMs;
  return withDeadline(
    ctx.clock,
    Promise.resolve().then(() => hook(abort.signal)),
    ms,
    abort,
    () => new Error(`${what} did not answer within ${ms} ms`),
  );
}

/** Cuts `text` to at most `max` characters, marking the cut with `…`. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Thrown by a lifecycle request's action when the request cannot be carried out yet but will
 * be (the rig's Witness, which owns its sessions, is still starting): the claim is given back
 * and the request waits for the worker's next wake instead of failing.
 */
export class NotReadyYet extends Error {
  override readonly name = 'NotReadyYet';
}

/**
 * Carries out the queued lifecycle requests of `actions` until none is left: each is claimed
 * with a lease, acted on, then completed (or failed) with the claim's token, and announced.
 *
 * @returns the ids of the requests done and failed.
 */
export async function drainLifecycle(
  ctx: TownContext,
  claimer: string,
  actions: readonly LifecycleAction[],
  act: (request: LifecycleRequest) => Promise<JsonValue>,
): Promise<{ done: string[]; failed: string[] }> {
  const done: string[] = [];
  const failed: string[] = [];
  for (;;) {
    const request = await ctx.model.lifecycle.claimNext({
      claimer,
      leaseMs: ctx.timings.leaseMs,
      actions,
    });
    if (!request) return { done, failed };
    const token = request.claim?.token as string;
    const { id: requestId, action, target } = request;
    try {
      const result = await act(request);
      await ctx.model.lifecycle.complete(requestId, { token, result });
      done.push(requestId);
      ctx.emit({ type: 'lifecycle.done', requestId, action, target });
    } catch (error) {
      if (error instanceof NotReadyYet) {
        // It waits, first in line, for the next wake (the requests after it wait too: they are
        // carried out in the order they were made).
        await ctx.model.lifecycle.release(requestId, { token });
        return { done, failed };
      }
      await ctx.model.lifecycle.fail(requestId, { token, error: errorMessage(error) });
      failed.push(requestId);
      ctx.emit({ type: 'lifecycle.failed', requestId, action, target, error: errorMessage(error) });
    }
  }
}

/** A polecat's session name: `<rig>-<name>`. */
export function sessionName(rig: string, name: string): string {
  return `${rig}-${name}`;
}

/** The polecat name part of an agent id `<rig>/<name>`. */
export function polecatName(agent: string): string {
  return agent.slice(agent.indexOf('/') + 1);
}

/** Distributes a TownEvent without letting a listener's failure reach the caller. */
type TownEventInput = TownEvent extends infer E
  ? E extends TownEvent
    ? Omit<E, 'at'>
    : never
  : never;

/**
 * One reading of the driver's sessions, shared by the whole town: one `driver.list()` per
 * interval, whatever the number of rigs and polecats ("discover, don't track", and cheap on a
 * driver where each call is a process). A session the town just acted on (started, stopped) is
 * `forget`-ten: its next status comes from `driver.status(name)`, so one spawn never costs a
 * reading of every session.
 */
export class SessionSurvey {
  private reading: Promise<Map<string, SessionStatus>> | undefined;
  /** The reading's sessions grouped by their `rig` label, built on first use. */
  private byRig:
    | { of: Promise<Map<string, SessionStatus>>; rigs: Map<string, SessionStatus[]> }
    | undefined;
  private readAt = Number.NEGATIVE_INFINITY;
  /** Sessions changed since the reading began, each with the token of its latest change. */
  private readonly stale = new Map<string, number>();
  private changes = 0;

  constructor(
    private readonly driver: SessionDriver,
    private readonly clock: Clock,
    private readonly maxAgeMs: number,
  ) {}

  /**
   * The sessions labelled with this rig, from the current reading (at most `maxAgeMs` old; those
   * the town changed since are left out, their state being unknown until asked).
   */
  async sessionsOf(rig: string): Promise<SessionStatus[]> {
    const reading = this.current();
    const sessions = await reading;
    if (this.byRig?.of !== reading) {
      const rigs = new Map<string, SessionStatus[]>();
      for (const s of sessions.values()) {
        const label = s.labels?.rig;
        if (label === undefined) continue;
        const list = rigs.get(label);
        if (list) list.push(s);
        else rigs.set(label, [s]);
      }
      this.byRig = { of: reading, rigs };
    }
    return (this.byRig.rigs.get(rig) ?? []).filter((s) => !this.stale.has(s.name));
  }

  /** The session's status from a reading at most `maxAgeMs` old (or fresh, if forgotten). */
  async status(name: string): Promise<SessionStatus> {
    const reading = this.current();
    const sessions = await reading;
    const token = this.stale.get(name);
    if (token === undefined) return sessions.get(name) ?? { name, state: 'missing' };
    const fresh = await this.driver.status(name);
    // Keep it only if nothing changed the session (or the reading) while we asked.
    if (this.reading === reading && this.stale.get(name) === token) {
      sessions.set(name, fresh);
      this.stale.delete(name);
      this.byRig = undefined;
    }
    return fresh;
  }

  private current(): Promise<Map<string, SessionStatus>> {
    const now = this.clock.now();
    if (!this.reading || now - this.readAt >= this.maxAgeMs) {
      this.readAt = now;
      this.stale.clear();
      const reading = this.driver.list().then((all) => new Map(all.map((s) => [s.name, s])));
      this.reading = reading;
      // A failed reading is not kept: the next call reads again.
      reading.catch(() => {
        if (this.reading === reading) this.reading = undefined;
      });
    }
    return this.reading;
  }

  /** The town changed this session: its next status is asked of the driver. */
  forget(name: string): void {
    this.stale.set(name, ++this.changes);
  }

  /** Forgets the whole reading, so the next call reads every session again. */
  invalidate(): void {
    this.reading = undefined;
    this.stale.clear();
  }
}

/** Everything the roles share. */
export interface TownContext {
  readonly model: TownModel;
  readonly driver: SessionDriver;
  readonly clock: Clock;
  readonly events: TownEventBus;
  readonly timings: TownTimings;
  readonly evaluators: ReadonlyMap<string, GateEvaluator>;
  readonly pollers: readonly Poller[];
  readonly polecatNames: readonly string[] | undefined;
  readonly launch: AgentHook<AgentLaunch>;
  readonly prime: AgentHook<string>;
  readonly triage: (
    situation: Situation,
    context: { signal: AbortSignal },
  ) => Assessment | Promise<Assessment>;
  /** The Daemon's own state, read by `status()`. */
  readonly daemon: {
    startedAt: number | undefined;
    lastHeartbeat: number | undefined;
    heartbeatCount: number;
    lastPatrolAt: number | undefined;
    /** The patrol that runs now (set when it starts or resumes, cleared when it finishes). */
    patrol: RunningPatrol | undefined;
  };
  emit(event: TownEventInput): void;
  /** Files a report; the Mayor hears of it only when the incident is new. */
  report(input: FileReportInput): Promise<{ report: Report; created: boolean }>;
  /** Witnesses the Deacon restarted (rig → why), waiting for Boot's assessment at the next patrol. */
  readonly witnessRestarts: Map<string, string>;
  /**
   * Sends a message to the Mayor sink, bounded by `callTimeoutMs`; never throws. A failure is
   * logged, emitted (`mayor.failed`) and filed as the `mayor-sink` incident, which is not sent
   * to the sink; the incident is resolved when the sink answers again. While a call is past its
   * limit and still unanswered, later messages are handed to the sink without waiting for it.
   */
  tellMayor(message: MayorMessage): Promise<void>;
  /** The town's session survey. */
  readonly sessions: SessionSurvey;
  /** Whether a session counts as healthy now: running, and active or still within its spawn grace. */
  healthy(status: SessionStatus): boolean;
  /** The town's source of randomness (`TownOptions.random`, checked), e.g. for Boot's child ids. */
  readonly random: () => number;
}

/** The patrol that runs now, as the Daemon watches it. */
export interface RunningPatrol {
  moleculeId: string;
  /** The step it is on. */
  step: string;
  /** When the patrol molecule was dispatched (a resumed patrol keeps its first start). */
  startedAt: number;
}

export function createContext(init: {
  model: TownModel;
  driver: SessionDriver;
  clock: Clock;
  events: TownEventBus;
  timings: TownTimings;
  evaluators: ReadonlyMap<string, GateEvaluator>;
  pollers: readonly Poller[];
  polecatNames: readonly string[] | undefined;
  launch: AgentHook<AgentLaunch>;
  prime: AgentHook<string>;
  triage: TownContext['triage'];
  mayor: ((message: MayorMessage) => void | Promise<void>) | undefined;
  random: () => number;
}): TownContext {
  const { clock, events, timings } = init;
  /** The Mayor sink's health: `unknown` until its first answer since the town was made. */
  let sinkState: 'unknown' | 'ok' | 'failing' = 'unknown';
  /** A call to the sink is past its limit and has not settled yet. */
  let sinkStuck = false;
  const sinkAnswered = async () => {
    sinkStuck = false;
    if (sinkState === 'ok') return;
    sinkState = 'ok';
    await init.model.reports.resolve('mayor-sink');
  };
  const sinkFailed = async (kind: MayorMessage['kind'], cause: unknown) => {
    sinkState = 'failing';
    const error = cause instanceof Error ? cause : new Error(String(cause));
    console.error(`[belfry] the mayor sink failed on a ${kind}`, error);
    ctx.emit({ type: 'mayor.failed', kind, error });
    // Filed, never sent: a sink that fails must not be fed reports of its own failure.
    const { report, created } = await init.model.reports.file({
      incidentKey: 'mayor-sink',
      severity: 'medium',
      title: clip(`the mayor sink failed on a ${kind}: ${error.message}`, 500),
      source: 'daemon',
    });
    ctx.emit({ type: 'report', report, created });
  };
  const ctx: TownContext = {
    ...init,
    daemon: {
      startedAt: undefined,
      lastHeartbeat: undefined,
      heartbeatCount: 0,
      lastPatrolAt: undefined,
      patrol: undefined,
    },
    emit(event) {
      const full = { ...event, at: clock.now() } as TownEvent;
      try {
        events.emit(full.type, full as never);
        events.emit('*', full);
      } catch (error) {
        console.error(`[belfry] a listener for ${full.type} threw`, error);
      }
    },
    async report(input) {
      // Titles are built from text the town does not control (an evaluator's reason, an error
      // message, a convoy's title): clip it rather than lose the report.
      const { report, created } = await init.model.reports.file({
        ...input,
        title: clip(input.title, 500),
      });
      ctx.emit({ type: 'report', report, created });
      if (created) await ctx.tellMayor({ kind: 'report', at: clock.now(), report });
      return { report, created };
    },
    witnessRestarts: new Map(),
    async tellMayor(message) {
      const sink = init.mayor;
      if (!sink) return;
      const call = Promise.resolve().then(() => sink(message));
      const settle = (outcome: Promise<void>) =>
        outcome.catch((error) => console.error('[belfry] could not record the mayor sink', error));
      if (sinkStuck) {
        // It has not answered an earlier message yet: it gets this one, nobody waits for it.
        void call.then(
          () => settle(sinkAnswered()),
          (error) => settle(sinkFailed(message.kind, error)),
        );
        return;
      }
      const ms = timings.callTimeoutMs;
      try {
        await withDeadline(clock, call, ms, new AbortController(), () => {
          sinkStuck = true;
          const over = () => {
            sinkStuck = false;
          };
          call.then(over, over);
          return new Error(`the mayor sink did not answer within ${ms} ms`);
        });
      } catch (error) {
        await settle(sinkFailed(message.kind, error));
        return;
      }
      await settle(sinkAnswered());
    },
    sessions: new SessionSurvey(init.driver, clock, Math.max(1, Math.floor(timings.surveyMs / 2))),
    healthy(status) {
      if (status.state !== 'running') return false;
      const now = clock.now();
      const startedAt = status.startedAt ?? now;
      // A new session is judged from its own start, never by an older session's activity.
      if (now - startedAt < timings.spawnGraceMs) return true;
      return now - Math.max(startedAt, status.lastActivityAt ?? startedAt) < timings.staleAfterMs;
    },
  };
  return ctx;
}
