/**
 * What to run in a session. Start is idempotent by `name` and `epoch`: starting the same pair
 * twice makes one session.
 */
export interface SessionSpec {
  /** Letters, digits, `_` and `-`, 1 to 64 characters; checked with {@link checkSessionName}. */
  name: string;
  /**
   * Which spawn of this name it is. A restart uses a new epoch; the driver records it so a
   * re-attaching daemon can tell instances apart.
   */
  epoch: number;
  /** The program and its arguments (argv; never a shell string). */
  command: readonly string[];
  /** The working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Readonly<Record<string, string>>;
  /** Free-form labels kept with the session and returned by `status` and `list` (rig, agent, bead). */
  labels?: Readonly<Record<string, string>>;
}

/** Where a session is. */
export type SessionState = 'running' | 'exited' | 'missing';

/** A session as the driver sees it now. */
export interface SessionStatus {
  name: string;
  state: SessionState;
  /** The epoch it was started with (absent for `missing`). */
  epoch?: number;
  /** The agent process id, when the driver knows it. */
  pid?: number;
  /** When it started (clock ms). */
  startedAt?: number;
  /**
   * What runs the session, as one identity (for tmux, its server: `tmux:<pid>:<start>`): for a
   * `missing` session, what runs sessions now (absent when nothing does). A session that goes
   * missing because what ran it is gone (the tmux server died, the machine rebooted) was lost
   * with it, which is not the agent's fault and not charged as its respawn. A driver that cannot
   * tell leaves it out; its missing sessions count as crashes.
   */
  host?: string;
  /**
   * When the session last showed activity of its own: output it wrote (clock ms). Input sent
   * to it, a nudge included, does not count: a hung agent must not look alive because the town
   * nudged it.
   */
  lastActivityAt?: number;
  /** For `exited`: the exit code, or null when a signal ended it. */
  exitCode?: number | null;
  /** For `exited`: the signal that ended it (e.g. `SIGKILL`), or null. */
  signal?: string | null;
  /** When it exited (clock ms), when known. */
  exitedAt?: number;
  labels?: Readonly<Record<string, string>>;
}

/** Options of {@link SessionDriver.stop}. */
export interface StopOptions {
  /**
   * How long the session may take to end after the polite request (SIGTERM or the driver's
   * equivalent) before it is killed, with its whole process tree.
   * @defaultValue the driver's default (5_000 ms for the drivers in this repository)
   */
  graceMs?: number;
}

/** Where to follow a session's output from: see {@link SessionDriver.follow}. */
export interface FollowOptions {
  /**
   * The `end` of the previous call (a cursor only the driver reads); left out, the latest
   * `lines` lines are given.
   */
  after?: string;
  /** At most this many lines (the latest). @defaultValue 200 */
  lines?: number;
}

/** A session's finished lines after a cursor: what {@link SessionDriver.follow} gives. */
export interface FollowedOutput {
  /** The lines, oldest first. */
  lines: string[];
  /** Where the next call continues: pass it back as `after`. */
  end: string;
  /**
   * Whether `lines` are exactly the lines after `after`, none missed and none repeated (however
   * alike they are). False when no `after` was given, or when the output the cursor counted on
   * is gone (another run of the session, a resized or cleared pane, history dropped, a
   * full-screen program, or more than `lines` came meanwhile): then `lines` are the latest
   * lines as the session shows them now.
   */
  continuous: boolean;
}

/**
 * Runs agent sessions: a tmux pane, an in-memory fake, a pod. belfry's roles never look inside a
 * session; they start it, ask how it is, nudge it, read its output and stop it. Every driver
 * passes `runDriverConformance` from `@belfry/testing`.
 *
 * Contract:
 * - `start` is idempotent by name + epoch. A running session of the same name with another
 *   epoch is never replaced (`EXISTS`); an exited one is.
 * - `status` of an unknown name is `missing`, not an error.
 * - `nudge` resolves only once delivery is verified, and fails with `NOT_RUNNING` or
 *   `NUDGE_FAILED` otherwise.
 * - `stop` asks, waits the grace period, then kills the whole process tree; stopping a missing
 *   session is not an error.
 * - `list` returns every session the driver owns (running and exited), for discovery after a
 *   restart.
 */
export interface SessionDriver {
  /** What kind of driver it is, e.g. `memory` or `tmux`. */
  readonly kind: string;
  start(spec: SessionSpec): Promise<SessionStatus>;
  status(name: string): Promise<SessionStatus>;
  list(): Promise<SessionStatus[]>;
  nudge(name: string, text: string): Promise<void>;
  /** The last `lines` lines of the session's output (all it keeps when left out). */
  capture(name: string, options?: { lines?: number }): Promise<string[]>;
  /**
   * Optional: the session's finished lines (those it has moved past) after a place the previous
   * call returned, so a reader can follow its output without missing or repeating a line, even
   * when lines repeat exactly. A driver without it is followed by comparing captures.
   */
  follow?(name: string, options?: FollowOptions): Promise<FollowedOutput>;
  stop(name: string, options?: StopOptions): Promise<void>;
  /** Releases the driver (its sessions keep running unless the driver says otherwise). */
  close?(): Promise<void>;
}
