import type EventEmitter from 'eventemitter3';
import type { Clock } from '../Clock';
import type { SessionDriver, SessionStatus } from '../driver/SessionDriver';
import type { SupervisorEventBus } from '../events';
import type { GateEvaluator } from '../gate/GateEvaluator';
import type {
  Bead,
  Polecat,
  Report,
  RigState,
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
   * How many patrol digests the store keeps (the newest); older ones are deleted after each
   * patrol. Not a time: a count. @defaultValue 480 (a day of patrols at the default heartbeat)
   */
  keepPatrolDigests: number;
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

/** A patrol's summary (its steps' results). */
export interface PatrolSummary {
  moleculeId: string;
  startedAt: number;
  finishedAt: number;
  steps: JsonObject;
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
  /** Receives patrol summaries and new reports (one per incident). Its failures are logged. */
  mayor?: (message: MayorMessage) => void | Promise<void>;
  /** Boot's assessment of an ambiguous situation. @defaultValue a mechanical triage */
  triage?: (
    situation: Situation,
    context: { signal: AbortSignal },
  ) => Assessment | Promise<Assessment>;
  /** How agents run. */
  agent?: {
    /** The session's command. @defaultValue `['agent']` (the memory driver's echoing agent) */
    launch?: (context: AgentContext) => AgentLaunch;
    /** The initial nudge that primes a new session. @defaultValue a line naming the bead */
    prime?: (context: AgentContext) => string;
  };
  pollers?: readonly Poller[];
  /** Names for new polecats, in order. */
  polecatNames?: readonly string[];
  /** Bead statuses, terminal statuses and id prefix of the model. */
  statuses?: readonly string[];
  terminalStatuses?: readonly string[];
  beadPrefix?: string;
}

/** The town's events, by `type`. */
export type TownEvent = { at: number } & (
  | { type: 'heartbeat'; count: number }
  | { type: 'patrol.started'; moleculeId: string; resumedAt: number }
  | { type: 'patrol.step'; moleculeId: string; step: string; result: JsonObject }
  | { type: 'patrol.finished'; moleculeId: string; digestBeadId: string; summary: PatrolSummary }
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
  | { type: 'polecat.escalated'; agent: string; rig: string; beadId: string; respawns: number }
  | { type: 'polecat.done'; agent: string; rig: string; beadId: string; status: string }
  | { type: 'witness.started'; rig: string }
  | { type: 'witness.restarted'; rig: string }
  | { type: 'witness.stopped'; rig: string }
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
  restarts: number;
  respawns: number;
  session: SessionStatus;
}

/** One rig in `town.status()`. */
export interface RigStatus {
  name: string;
  state: RigState;
  witness: { state: string; restarts: number } | undefined;
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
    /**
     * In a crash loop: restarted 5 times within 15 min, and not yet 30 min without a restart.
     * The Deacon's restarts back off from 30 s doubling to 10 min, so in a crash loop they are
     * at (or near) the 10 min maximum.
     */
    crashLoop: boolean;
    lastPatrolAt: number | undefined;
  };
  rigs: RigStatus[];
  gates: { open: number };
  convoys: { open: number };
  lifecycle: { pending: number };
}

/** The supervision bus of the town's tree, re-exported for typing. */
export type TownSupervisionBus = SupervisorEventBus;
