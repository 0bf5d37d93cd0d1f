import type { JsonObject, JsonValue } from '../store/Store';

// Every time below is absolute milliseconds from the model's Clock, so a deadline stored before a
// restart means the same instant after it.

/** A rig's operating state. `parked` and `docked` rigs are never restarted by any level. */
export type RigState = 'operational' | 'parked' | 'docked';

/** A project area with its own Witness and polecats. */
export interface Rig {
  /** The rig's name; also its id. */
  readonly id: string;
  readonly state: RigState;
  readonly createdAt: number;
  /** When the state last changed. */
  readonly stateChangedAt: number;
  /**
   * Set while a docked rig drains: until this time its in-flight sessions may finish their work;
   * then what is left is stopped (the hooks stay). Absent once drained, after an immediate dock,
   * and for operational and parked rigs. Stored, so a restarted daemon keeps the same deadline.
   */
  readonly drainUntil?: number;
}

/** A unit of work. */
export interface Bead {
  /** A prefixed id such as `bd-x7k2m9q4pa`. */
  readonly id: string;
  readonly title: string;
  /** One of the model's statuses; see `TownModelOptions.statuses`. */
  readonly status: string;
  /** Who holds it (a polecat's agent name), if anyone. */
  readonly assignee?: string;
  /** The rig it belongs to, if any. */
  readonly rig?: string;
  readonly labels: readonly string[];
  readonly metadata: JsonObject;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** When it last reached a terminal status (cleared when reopened). */
  readonly closedAt?: number;
}

/**
 * The work on a polecat: one bead per agent, one agent per bead. It survives sessions: a
 * restarted polecat gets the same hook. `epoch` grows with every attach, so actions keyed by it
 * (a spawn, a nudge) can tell a new assignment from an old one.
 */
export interface Hook {
  /** The agent's name (e.g. `api/toast`); also the hook's id. */
  readonly id: string;
  readonly beadId: string;
  readonly rig: string;
  readonly attachedAt: number;
  readonly epoch: number;
}

/** One escalation reason of a gate; a repeat of a recorded reason updates it instead of adding another. */
export interface GateEscalation {
  readonly reason: string;
  readonly firstAt: number;
  readonly lastAt: number;
  readonly count: number;
}

/** A wait on an external condition. */
export interface Gate {
  readonly id: string;
  /** `timer`, `human`, `gh:run`, or any registered type. */
  readonly type: string;
  /** The spec, as the gate type's `validate` returned it. */
  readonly spec: JsonObject;
  readonly status: 'open' | 'closed';
  readonly createdAt: number;
  /** When the gate should next be evaluated; absent: only on demand (e.g. a human's approval). */
  readonly dueAt?: number;
  /** When an open gate counts as overdue (createdAt + timeoutMs). */
  readonly timeoutAt?: number;
  /** Who waits for it: molecule ids (released when it closes) or free-form names. */
  readonly waiters: readonly string[];
  readonly result?: JsonValue;
  /** Set when the gate closed as failed (a failed CI run, a rejection): why. Its molecules failed. */
  readonly failure?: string;
  readonly closedAt?: number;
  readonly lastEvaluatedAt?: number;
  /**
   * What the gate's evaluator asked to keep between evaluations (a pinned run id, an ETag): it
   * is stored with the gate, so it survives restarts.
   */
  readonly memo?: JsonObject;
  readonly escalations: readonly GateEscalation[];
}

/** A step of a molecule; `gate` makes the molecule wait on a new gate when it reaches the step. */
export interface MoleculeStep {
  readonly name: string;
  readonly gate?: { readonly type: string; readonly spec: JsonObject; readonly timeoutMs?: number };
}

/** A completed step, as recorded. */
export interface CompletedStep {
  readonly step: number;
  readonly name: string;
  readonly at: number;
  readonly result?: JsonValue;
}

/**
 * A molecule's state:
 * - `ready`: its next step can run and nobody is running it (dispatchable);
 * - `running`: dispatched; the holder of `epoch` runs its steps;
 * - `waiting`: its next step waits on the gate `waitingOn`;
 * - `done` / `failed`: finished.
 */
export type MoleculeStatus = 'ready' | 'running' | 'waiting' | 'done' | 'failed';

/** A workflow of ordered steps. Each completed step is recorded, so a crash resumes at `cursor`. */
export interface Molecule {
  readonly id: string;
  readonly name: string;
  readonly steps: readonly MoleculeStep[];
  readonly status: MoleculeStatus;
  /** The resume point: the index of the next step to run (`steps.length` when done). */
  readonly cursor: number;
  readonly completed: readonly CompletedStep[];
  /** The gate the molecule waits on (status `waiting`). */
  readonly waitingOn?: string;
  /** The gate whose closing made it ready last; its dispatch passes on that gate's result. */
  readonly releasedBy?: string;
  /** Grows with every dispatch; a step completion must carry the current one. */
  readonly epoch: number;
  readonly dispatchedBy?: string;
  readonly dispatchedAt?: number;
  readonly rig?: string;
  readonly metadata: JsonObject;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly failure?: string;
}

/**
 * A group of beads (and workflows), possibly across rigs, tracked to completion. It closes once
 * every tracked bead is terminal and every tracked molecule is finished (done or failed): a
 * molecule waiting on a gate keeps its convoy open until the gate resolves and the workflow ends.
 */
export interface Convoy {
  readonly id: string;
  readonly title: string;
  readonly beadIds: readonly string[];
  /**
   * The molecules it tracks: named at creation, and the molecule of every tracked bead that is a
   * molecule's step (the work that leads to a gate). Absent on convoys stored before molecules
   * could be tracked (none).
   */
  readonly moleculeIds?: readonly string[];
  readonly status: 'open' | 'closed';
  /** How many tracked beads are not terminal. */
  readonly openCount: number;
  /** How many tracked molecules are not finished (done or failed). @defaultValue 0 when absent */
  readonly openMolecules?: number;
  readonly createdAt: number;
  readonly closedAt?: number;
  readonly reopenedAt?: number;
  /** When a tracked bead last changed status (or one was added). */
  readonly lastProgressAt: number;
}

/**
 * What becomes of the bead on a warranted agent's hook: `open` puts it back in the pool (no
 * assignee), `blocked` takes it off the hook as blocked, for a person to look at.
 */
export type WarrantRelease = 'open' | 'blocked';

/** What executing a warrant did, recorded on the warrant. */
export interface WarrantOutcome {
  /**
   * The target's session the executor stopped (or found already gone, on a run after a crash);
   * null when nothing was stopped because the target had moved on to other work.
   */
  readonly session: string | null;
  /** The bead taken off the target's hook and the status it went to; null when none was. */
  readonly released: { readonly beadId: string; readonly status: WarrantRelease } | null;
  /** What was done, or why nothing was needed, in one line. */
  readonly summary: string;
}

/**
 * An order to stop a stuck agent: filed by one role (or a person), executed by the Deacon at its
 * next patrol, recorded. At filing it records the work on the target's hook (`beadId`,
 * `hookEpoch`): executing releases that work and nothing else, so a target that moved on to
 * other work keeps it.
 */
export interface Warrant {
  readonly id: string;
  /** The agent to stop: an agent id `<rig>/<name>`. */
  readonly target: string;
  /** The target's rig. */
  readonly rig: string;
  readonly reason: string;
  readonly filedBy: string;
  readonly filedAt: number;
  /** What becomes of the target's bead. */
  readonly release: WarrantRelease;
  /** The bead on the target's hook when the warrant was filed, if any. */
  readonly beadId?: string;
  /** That hook's epoch: the assignment the warrant is about. */
  readonly hookEpoch?: number;
  readonly status: 'pending' | 'executed' | 'cancelled';
  /**
   * When the executor decided to execute it and began stopping the session: from then on no
   * spawn is made for the warranted work, and a run after a crash finishes it without asking again.
   */
  readonly stoppingAt?: number;
  readonly executedAt?: number;
  readonly executedBy?: string;
  readonly outcome?: WarrantOutcome;
  readonly cancelledAt?: number;
}

/** How loud a report is. */
export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

/** What goes to the Mayor: deduplicated per incident key while open. */
export interface Report {
  readonly id: string;
  readonly incidentKey: string;
  readonly severity: Severity;
  readonly title: string;
  readonly details?: JsonValue;
  readonly source: string;
  readonly status: 'open' | 'resolved';
  readonly firstAt: number;
  readonly lastAt: number;
  /** How many times the incident was reported while open. */
  readonly count: number;
  readonly resolvedAt?: number;
}

/** What a lifecycle request asks for. */
export type LifecycleAction = 'start' | 'stop' | 'restart' | 'park' | 'unpark' | 'dock' | 'undock';

/**
 * A claim on a lifecycle request. The holder of `token` may finish it as long as nobody else has
 * claimed it; after `expiresAt`, another claimer may take it over, and the old token is then
 * refused.
 */
export interface LifecycleClaim {
  readonly by: string;
  readonly at: number;
  readonly expiresAt: number;
  readonly token: string;
}

/**
 * A durable request (requested → claimed → done | failed). Claim, then act, then finish with the
 * claim's token; a claim whose lease ran out (its claimer crashed) can be claimed again.
 */
export interface LifecycleRequest {
  readonly id: string;
  /** Order of requests: lower first. */
  readonly seq: number;
  readonly action: LifecycleAction;
  /** A rig name or session/agent name. */
  readonly target: string;
  readonly args: JsonObject;
  readonly requestedBy: string;
  readonly requestedAt: number;
  readonly status: 'requested' | 'claimed' | 'done' | 'failed';
  readonly claim?: LifecycleClaim;
  /** How many times it was claimed. */
  readonly attempts: number;
  readonly finishedAt?: number;
  readonly result?: JsonValue;
  readonly error?: string;
}

/** How many times a bead's polecat was respawned. */
export interface RespawnCount {
  /** The bead's id. */
  readonly id: string;
  readonly count: number;
  readonly lastAt: number;
}

/**
 * A polecat: an agent name in a rig (`<rig>/<name>`), which keeps its name across beads and
 * sessions. Its last spawn is recorded so a spawn is claimed (a new epoch) before the session is
 * started: a crash in between retries the same epoch instead of starting a second session.
 */
export interface Polecat {
  /** `<rig>/<name>`. */
  readonly id: string;
  readonly rig: string;
  readonly name: string;
  readonly createdAt: number;
  /** The epoch of the last spawn claimed. */
  readonly spawnEpoch?: number;
  /** The bead the last spawn was for. */
  readonly spawnBeadId?: string;
  readonly spawnClaimedAt?: number;
  /** When the session of `spawnEpoch` was seen started. */
  readonly spawnStartedAt?: number;
  /** What ran the session of `spawnEpoch` when it was seen started (the driver's `host`). */
  readonly spawnHost?: string;
  /**
   * The epoch whose session the town stopped on purpose (a dock, a restart request, a warrant,
   * `done`): the next spawn of the same bead after it is not a respawn. A session that exits or
   * goes missing without such a record crashed, and its respawn counts.
   */
  readonly stoppedEpoch?: number;
  /** Why the town stopped the session of `stoppedEpoch`. */
  readonly stopReason?: string;
  /** When the town stopped the session of `stoppedEpoch`. */
  readonly stoppedAt?: number;
  /** How its last session ended (one record per epoch; see {@link PolecatExit}). */
  readonly lastExit?: PolecatExit;
}

/**
 * How a polecat's session ended, recorded once per epoch before anything restarts or replaces
 * it, and announced as `polecat.exited`.
 *
 * - `exited`: the session ended by itself; `exitCode` or `signal` says how (from the driver).
 * - `missing`: the session is gone without a trace, from the host that ran it: nobody can tell
 *   how it ended, so `exitCode` and `signal` are both null.
 * - `lost`: the session went with its host (the tmux server it ran in died, the machine
 *   rebooted): not the agent's fault, so its next spawn is not a respawn; `exitCode` and
 *   `signal` are null.
 * - `stopped`: the town stopped it on purpose while its work stayed on the hook (a `restart`
 *   request, a hung session, a dock); `exitCode` and `signal` are what the driver reported
 *   after the stop.
 */
export interface PolecatExit {
  /** The epoch of the session that ended. */
  readonly epoch: number;
  /** The bead the session worked on. */
  readonly beadId: string;
  readonly reason: 'exited' | 'missing' | 'lost' | 'stopped';
  /** The process's exit code; null when a signal ended it or nobody can tell. */
  readonly exitCode: number | null;
  /** The signal that ended it (e.g. `SIGKILL`); null when it exited with a code or nobody can tell. */
  readonly signal: string | null;
  /** When it ended, per the driver; when it was noticed, if the driver cannot tell. */
  readonly at: number;
  /**
   * Its last lines of output, oldest first, captured before anything replaced it: at most 20
   * lines of at most 200 characters each (a longer line is cut, marked `…`), 2,000 characters
   * in all (older lines are dropped first). Empty when the driver had nothing left to capture.
   */
  readonly lastOutput: readonly string[];
}
