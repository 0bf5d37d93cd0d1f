import type { Clock } from '../Clock';
import type { SessionDriver, SessionStatus } from '../driver/SessionDriver';
import type { GateEvaluator } from '../gate/GateEvaluator';
import type { FileReportInput } from '../model/Reports';
import type { TownModel } from '../model/TownModel';
import type { Report } from '../model/types';
import { clip, withDeadline } from './boundedWait';
import { incidentKey } from './incidents';
import { SessionSurvey } from './SessionSurvey';
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

/** Distributes a TownEvent without letting a listener's failure reach the caller. */
type TownEventInput = TownEvent extends infer E
  ? E extends TownEvent
    ? Omit<E, 'at'>
    : never
  : never;

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

/** Makes the context the roles of one town share, from the town's checked options. */
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
    await init.model.reports.resolve(incidentKey({ kind: 'mayor-sink' }));
  };
  const sinkFailed = async (kind: MayorMessage['kind'], cause: unknown) => {
    sinkState = 'failing';
    const error = cause instanceof Error ? cause : new Error(String(cause));
    console.error(`[belfry] the mayor sink failed on a ${kind}`, error);
    ctx.emit({ type: 'mayor.failed', kind, error });
    // Filed, never sent: a sink that fails must not be fed reports of its own failure.
    const { report, created } = await init.model.reports.file({
      incidentKey: incidentKey({ kind: 'mayor-sink' }),
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
