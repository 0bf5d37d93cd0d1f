import type EventEmitter from 'eventemitter3';
import type { Clock } from '../Clock';
import type { SessionDriver, SessionStatus } from '../driver/SessionDriver';
import type { SupervisorEventBus } from '../events';
import type { GateEvaluator } from '../gate/GateEvaluator';
import type {
  Bead,
  Polecat,
  PolecatExit,
  Report,
  RigState,
  Severity,
  WarrantOutcome,
  WarrantRelease,
} from '../model/types';
import type { JsonObject, Store } from '../store/Store';

/** Every timing of the town, in ms on its clock. See docs/town.md for what each one does. */
export interface TownTimings {
  /** The Daemon's tick; it nudges the Deacon. @defaultValue 180_000 */
  heartbeatMs: number;
  /** A patrol also runs this long after the last one, without a heartbeat. @defaultValue 300_000 */
  patrolIntervalMs: number;
  /** A Witness must answer a ping within this. @defaultValue 5_000 */
  witnessPingTimeoutMs: number;
  /** A Witness reconciles its polecats and re-reads session status this often. @defaultValue 30_000 */
  surveyMs: number;
  /** A new session may show no activity this long. @defaultValue 300_000 */
  spawnGraceMs: number;
  /** A running session with no activity this long is hung and restarted. @defaultValue 1_800_000 */
  staleAfterMs: number;
  /** Respawns of one bead's polecat before the bead is escalated. @defaultValue 3 */
  maxRespawns: number;
  /** A pending gate is evaluated again after this (unless its evaluator says when). @defaultValue 60_000 */
  gateIntervalMs: number;
  /** The time limit of one evaluator call. @defaultValue 30_000 */
  gateTimeoutMs: number;
  /** An open convoy without progress this long is escalated. @defaultValue 3_600_000 */
  convoyStallMs: number;
  /** Boot's assessment time limit. @defaultValue 60_000 */
  bootTimeoutMs: number;
  /** A claimed lifecycle request's lease. @defaultValue 60_000 */
  leaseMs: number;
  /** The grace period when a session is stopped. @defaultValue 10_000 */
  stopGraceMs: number;
  /**
   * How long a dock lets the rig's in-flight work finish (each agent's `done`) before it stops
   * what is left; the deadline is stored on the rig, so a restarted daemon keeps it.
   * `town.rigs.dock(rig, { immediate: true })` does not wait. @defaultValue 1_800_000 (30 min)
   */
  drainMs: number;
  /**
   * How many patrol digests the store keeps (the newest); older ones are deleted after each
   * patrol. Not a time: a count. @defaultValue 480 (a day of patrols at the default heartbeat)
   */
  keepPatrolDigests: number;
  /**
   * The time limit of one driver call the town makes (a `stop` gets its grace period on top)
   * and of one call to a user hook without a limit of its own: the Mayor sink and the agent's
   * `launch` and `prime`. A call past it fails (a driver call with a `DriverError` coded
   * `TIMEOUT`); what follows is in docs/town.md. @defaultValue 60_000 (as long as Boot's
   * triage: a tmux call answers in milliseconds, so a minute only ever catches a hung one)
   */
  callTimeoutMs: number;
  /**
   * How long one patrol may run before the Daemon restarts the Deacon (it resumes the patrol at
   * the step it was on). Counted from the patrol's start, or from the current Deacon's start
   * when that is later. The Daemon looks once a heartbeat, so a stuck patrol is found within
   * this plus `heartbeatMs`. @defaultValue 600_000 (two patrol intervals: room for every
   * bounded call of a busy patrol, and a stuck one is found within a quarter of an hour)
   */
  patrolBudgetMs: number;
}

/** How to run an agent's session. */
export interface AgentLaunch {
  command: readonly string[];
  cwd?: string;
  env?: Readonly<Record<string, string>>;
}

/** What {@link TownOptions.agent} functions receive. */
export interface AgentContext {
  polecat: Polecat;
  bead: Bead;
  /** The session's name: `<rig>-<name>`. */
  session: string;
}

/**
 * An agent hook (`launch`, `prime`): it gets the agent and, as its second argument, a signal
 * aborted when the town gives up waiting for it (after `timings.callTimeoutMs`).
 */
export type AgentHook<T> = (
  context: AgentContext,
  options: { signal: AbortSignal },
) => T | Promise<T>;

/** A situation the Deacon cannot judge mechanically; Boot assesses it. */
export type Situation =
  /** A docked rig still has running sessions. */
  | { kind: 'docked-rig-with-sessions'; rig: string; sessions: readonly string[] }
  /** An operational rig has hooked work, but none of its sessions has been running for a while. */
  | { kind: 'hooks-without-sessions'; rig: string; agents: readonly string[] }
  /** The rig's Witness stopped answering pings and the Deacon restarted it (`error` says how). */
  | { kind: 'witness-restarted'; rig: string; error: string }
  /**
   * A pending warrant against `agent`, filed by `filedBy` for `reason`; `beadId` is the work it
   * was filed about (null: the agent held none), `release` what becomes of that bead. Answers:
   * `execute` executes it now; `none` holds it pending (Boot assesses it again at the next
   * patrol); `escalate` reports it to the Mayor and keeps it pending. Any other answer counts as
   * `escalate`.
   */
  | {
      kind: 'warrant';
      rig: string;
      agent: string;
      warrantId: string;
      reason: string;
      filedBy: string;
      beadId: string | null;
      release: WarrantRelease;
    };

/**
 * Boot's verdict; the Deacon acts on it. `execute` answers a `warrant` situation only; `stop-sessions`
 * and `restart-witness` answer the others only. An action that does not apply to the situation
 * counts as `escalate`.
 */
export interface Assessment {
  action: 'none' | 'stop-sessions' | 'restart-witness' | 'execute' | 'escalate';
  reason: string;
}

/** What the Mayor sink receives: routine patrol summaries and (new) reports. */
export type MayorMessage =
  | { kind: 'summary'; at: number; patrol: PatrolSummary }
  | { kind: 'report'; at: number; report: Report };

/** A patrol's summary: its steps' results and the town's health at its end. */
export interface PatrolSummary {
  moleculeId: string;
  startedAt: number;
  finishedAt: number;
  steps: JsonObject;
  /** The town's health as the report step read it (absent only on a patrol resumed from before it was kept). */
  health?: TownHealth;
}

/**
 * The town's health at the end of a patrol, for the Mayor: per rig, the agents with work on
 * their hook whose session is healthy (running, and active or within its spawn grace) or not
 * (hung, exited, missing); and the open incidents by severity.
 */
export interface TownHealth {
  healthy: number;
  unhealthy: number;
  /** Agents whose session the driver could not report on (a driver outage). */
  unknown: number;
  rigs: Array<{
    rig: string;
    state: RigState;
    healthy: number;
    unhealthy: number;
    unknown: number;
    /** The unhealthy agents (at most 20) with their session's state. */
    trouble: Array<{ agent: string; session: 'running' | 'exited' | 'missing' }>;
  }>;
  incidents: { open: number } & Record<Severity, number>;
}

/** A user poller: the Daemon runs it every `intervalMs`, once per operational rig if `perRig`. */
export interface Poller {
  /** Names its supervisor child and its incidents: letters, digits, `_`, `-`, `.`; unique. */
  name: string;
  intervalMs: number;
  /**
   * A run taking longer than this fails (reported) and its signal is aborted; a run also sees
   * its signal aborted when the town stops. @defaultValue intervalMs
   */
  timeoutMs?: number;
  /** Run once per operational rig (parked and docked rigs are skipped) instead of once. */
  perRig?: boolean;
  run(context: { now: number; rig?: string; signal: AbortSignal }): void | Promise<void>;
}

/** Options of `createTown`. */
export interface TownOptions {
  /**
   * The town's id: 1 to 64 letters, digits, `_` or `-`, starting with a letter or digit. Every
   * session the town starts carries it as its `town` label, and the town never stops, adopts,
   * nudges or counts a session labelled with another town's id, so towns can share a driver's
   * session space (one tmux server) without touching each other's agents. Keep it with the
   * town's records (the `belfry` daemon keeps it in the store): a town restarted with another id
   * no longer sees the sessions it started. Sessions without a `town` label (started before the
   * town had an id) are still adopted.
   * @defaultValue none: the town starts sessions without a `town` label and takes every session
   *   of the driver for its own (a driver of its own is then required)
   * @example
   * ```ts
   * createTown({ id: 'tw-9f2c', driver, store, rigs: ['api'] });
   * ```
   */
  id?: string;
  /** Where the town's records live. @defaultValue a new MemoryStore */
  store?: Store;
  /** Runs the agent sessions. */
  driver: SessionDriver;
  /** @defaultValue realClock */
  clock?: Clock;
  /** Gate evaluators; their types are registered in the model too. */
  gates?: readonly GateEvaluator[];
  /** Rigs to create at start if missing (letters, digits, `_`, `-`). */
  rigs?: readonly string[];
  timings?: Partial<TownTimings>;
  /**
   * Receives patrol summaries and new reports (one per incident). Each call is bounded by
   * `timings.callTimeoutMs`: a sink that throws or does not answer never stalls a patrol; its
   * failure is logged and filed as the `mayor-sink` incident (not sent to the sink itself).
   */
  mayor?: (message: MayorMessage) => void | Promise<void>;
  /** Boot's assessment of an ambiguous situation. @defaultValue a mechanical triage */
  triage?: (
    situation: Situation,
    context: { signal: AbortSignal },
  ) => Assessment | Promise<Assessment>;
  /**
   * How agents run. Each hook may answer with a promise; it is bounded by
   * `timings.callTimeoutMs` (its `signal` is then aborted), and one that throws or does not
   * answer counts as a failed start of the bead (past `maxRespawns` the bead is escalated).
   */
  agent?: {
    /** The session's command. @defaultValue `['agent']` (the memory driver's echoing agent) */
    launch?: AgentHook<AgentLaunch>;
    /** The initial nudge that primes a new session. @defaultValue a line naming the bead */
    prime?: AgentHook<string>;
  };
  pollers?: readonly Poller[];
  /** Names for new polecats, in order. */
  polecatNames?: readonly string[];
  /** Bead statuses, terminal statuses and id prefix of the model. */
  statuses?: readonly string[];
  terminalStatuses?: readonly string[];
  beadPrefix?: string;
  /**
   * The town's source of randomness: a function returning numbers uniform in [0, 1). It feeds the
   * backoff jitter of every supervisor in the tree, Boot's child ids, and the model's record ids
   * and claim tokens. Give a seeded one (`seededRandom(seed)` from `@belfry/testing`) and the same
   * scenario on simulated time gives the same events and ids on every run.
   * @defaultValue `Math.random` for jitter and Boot; cryptographically random record ids
   * @example
   * ```ts
   * const town = createTown({ driver, clock, random: seededRandom(42) });
   * ```
   */
  random?: () => number;
}

/** The town's events, by `type`. */
export type TownEvent = { at: number } & (
  | { type: 'heartbeat'; count: number }
  | { type: 'patrol.started'; moleculeId: string; resumedAt: number }
  | { type: 'patrol.step'; moleculeId: string; step: string; result: JsonObject }
  | { type: 'patrol.finished'; moleculeId: string; digestBeadId: string; summary: PatrolSummary }
  /**
   * A patrol ran past `patrolBudgetMs`, stuck on `step` for `runningMs`: the Daemon restarts the
   * Deacon, which resumes the patrol at that step.
   */
  | { type: 'patrol.overdue'; moleculeId: string; step: string; runningMs: number }
  /** The Mayor sink threw or did not answer within `callTimeoutMs` for a message of `kind`. */
  | { type: 'mayor.failed'; kind: MayorMessage['kind']; error: Error }
  | { type: 'gate.closed'; gateId: string; gateType: string; failure?: string }
  | { type: 'gate.escalated'; gateId: string; gateType: string; reason: string }
  | { type: 'gate.evaluatorFailed'; gateType: string; error: Error; gates: number }
  | { type: 'lifecycle.done'; requestId: string; action: string; target: string }
  | { type: 'lifecycle.failed'; requestId: string; action: string; target: string; error: string }
  | { type: 'molecule.dispatched'; moleculeId: string; step: number; beadId: string; rig: string }
  | { type: 'convoy.closed'; convoyId: string }
  | {
      type: 'warrant.filed';
      warrantId: string;
      agent: string;
      rig: string;
      reason: string;
      filedBy: string;
      release: WarrantRelease;
    }
  | {
      type: 'warrant.executed';
      warrantId: string;
      agent: string;
      rig: string;
      outcome: WarrantOutcome;
    }
  | { type: 'convoy.stalled'; convoyId: string; sinceMs: number }
  | {
      type: 'polecat.spawned';
      agent: string;
      rig: string;
      beadId: string;
      epoch: number;
      respawn: boolean;
    }
  | {
      type: 'polecat.adopted';
      agent: string;
      rig: string;
      beadId: string;
      epoch: number | undefined;
    }
  | { type: 'polecat.stopped'; agent: string; rig: string; reason: string }
  | {
      /**
       * A hooked polecat's session ended: once per epoch, recorded before anything restarts or
       * replaces it (see {@link PolecatExit}). `exitedAt` is when it ended per the driver.
       */
      type: 'polecat.exited';
      agent: string;
      rig: string;
      beadId: string;
      epoch: number;
      reason: PolecatExit['reason'];
      exitCode: number | null;
      signal: string | null;
      exitedAt: number;
      lastOutput: readonly string[];
    }
  | { type: 'polecat.escalated'; agent: string; rig: string; beadId: string; respawns: number }
  | { type: 'polecat.done'; agent: string; rig: string; beadId: string; status: string }
  | { type: 'witness.started'; rig: string }
  | { type: 'witness.restarted'; rig: string }
  | { type: 'witness.stopped'; rig: string }
  /** A docked rig's drain is over: its work finished, or `stopped` lists what the limit stopped. */
  | { type: 'rig.drained'; rig: string; stopped: readonly string[] }
  | { type: 'boot.assessed'; situation: Situation; assessment: Assessment }
  | { type: 'report'; report: Report; created: boolean }
  | { type: 'poller.failed'; poller: string; rig?: string; error: Error }
);

/** The town's event names: each `type`, plus `'*'` for all of them. */
export type TownEventMap = {
  [K in TownEvent['type']]: (event: Extract<TownEvent, { type: K }>) => void;
} & { '*': (event: TownEvent) => void };

/** The town's typed event bus. */
export type TownEventBus = EventEmitter<TownEventMap>;

/** One polecat in `town.status()`. */
export interface PolecatStatus {
  agent: string;
  name: string;
  beadId: string | undefined;
  /** The polecat actor's supervisor state (`running`, `backoff`, …), if it has one. */
  state: string | undefined;
  /** Times its supervisor (the rig's Witness) has restarted its actor. */
  restarts: number;
  /** In `backoff`: when its supervisor restarts it. */
  backoffUntil?: number;
  respawns: number;
  /**
   * Its session as the driver reports it, or `unknown` (with the reason) when the driver's
   * `list()` failed or did not settle within `callTimeoutMs`.
   */
  session: SessionStatus | UnknownSession;
  /**
   * How its last session ended (undefined: none has, since the polecat was created), with the
   * last 5 lines of its output (the polecat record in the store keeps up to 20).
   */
  lastExit: PolecatExit | undefined;
}

/** A session whose state could not be read: the driver failed or did not answer in time. */
export interface UnknownSession {
  name: string;
  state: 'unknown';
  /** Why it could not be read. */
  reason: string;
  /** Never known here; declared so code reading a session's activity needs no narrowing. */
  lastActivityAt?: undefined;
}

/** One rig in `town.status()`. */
export interface RigStatus {
  name: string;
  state: RigState;
  /** While a docked rig drains: when what is left of its in-flight work is stopped. */
  drainUntil?: number;
  /** The rig's Witness: its supervisor state, restarts, and when a pending backoff ends. */
  witness: { state: string; restarts: number; backoffUntil?: number } | undefined;
  polecats: PolecatStatus[];
}

/** The whole tree as data. */
export interface TownStatus {
  at: number;
  daemon: {
    running: boolean;
    startedAt: number | undefined;
    lastHeartbeat: number | undefined;
    heartbeatCount: number;
  };
  deacon: {
    state: string | undefined;
    restarts: number;
    /** In `backoff`: when the Daemon restarts it. */
    backoffUntil?: number;
    /**
     * In a crash loop: restarted 5 times within 15 min, and not yet 30 min without a restart.
     * The Deacon's restarts back off from 30 s doubling to 10 min, so in a crash loop they are
     * at (or near) the 10 min maximum.
     */
    crashLoop: boolean;
    lastPatrolAt: number | undefined;
    /**
     * The patrol that runs now: its step, and how long since it started (past
     * `patrolBudgetMs`, the Daemon restarts the Deacon). Absent between patrols.
     */
    patrol: { moleculeId: string; step: string; runningMs: number } | undefined;
  };
  /** Set when the driver's `list()` failed or did not settle: why the sessions are unknown. */
  sessionsUnread?: string;
  rigs: RigStatus[];
  gates: { open: number };
  convoys: { open: number };
  lifecycle: { pending: number };
}

/** The supervision bus of the town's tree, re-exported for typing. */
export type TownSupervisionBus = SupervisorEventBus;
