import { type Clock, ConfigError, realClock } from '@belfry/core';
import {
  checkFollowOptions,
  checkSessionName,
  checkSessionSpec,
  DriverError,
  type FollowedOutput,
  type FollowOptions,
  type SessionDriver,
  type SessionSpec,
  type SessionStatus,
  type StopOptions,
} from '@belfry/core/driver';

/** What a program running in a memory session can do. */
export interface MemorySession {
  readonly name: string;
  readonly epoch: number;
  readonly spec: SessionSpec;
  /** Prints a line of output (counts as activity). */
  write(line: string): void;
  /** Ends the session by itself with an exit code. */
  exit(code?: number): void;
  /** Ends the session by a signal, as a crash. */
  crash(signal?: string): void;
  /** Called with each nudge delivered to the session. */
  onNudge(handler: (text: string) => void): void;
  /**
   * Called when the session is asked to stop. By default the session ends at once with
   * SIGTERM; a handler decides instead (end later, or never, and be killed after the grace).
   */
  onStop(handler: () => void): void;
  /** Runs `fn` after `ms` on the driver's clock, unless the session has ended by then. */
  after(ms: number, fn: () => void): void;
}

/**
 * A program for memory sessions: it scripts what the session does. The session runs the program
 * named by its command's first element.
 */
export type MemoryProgram = (session: MemorySession) => void;

/** How a session behaves at start, per program. */
export interface MemoryProgramOptions {
  /** The start takes this long (clock ms) before it resolves. @defaultValue 0 */
  startDelayMs?: number;
  /** The start fails (the session dies while starting) with this message. */
  failStart?: string;
}

/** Options of {@link createMemoryDriver}. */
export interface MemoryDriverOptions {
  /**
   * Times for activity, starts, exits and stop grace periods.
   * @defaultValue realClock
   */
  clock?: Clock;
  /** Programs by name, added to (or replacing) the built-in ones. */
  programs?: Readonly<
    Record<string, MemoryProgram | { run: MemoryProgram; options: MemoryProgramOptions }>
  >;
  /**
   * The program for commands whose first element names no program.
   * @defaultValue 'agent'
   */
  defaultProgram?: string;
  /**
   * Grace period of `stop` when the call gives none.
   * @defaultValue 5_000 (ms)
   */
  defaultGraceMs?: number;
  /**
   * Output lines kept per session (older ones are dropped); the nudges a session keeps for
   * `nudgesOf` are bounded the same way.
   * @defaultValue 1_000
   */
  maxOutputLines?: number;
}

const OPTION_KEYS = ['clock', 'programs', 'defaultProgram', 'defaultGraceMs', 'maxOutputLines'];

function bad(
  path: string,
  message: string,
  code: 'INVALID_OPTION' | 'UNKNOWN_OPTION' = 'INVALID_OPTION',
): never {
  throw new ConfigError({ code, path, message: `${path}: ${message}` });
}

/** Shows a bad value in a message; never throws (a BigInt, a cycle or a throwing getter included). */
function show(value: unknown): string {
  if (typeof value === 'number' || value === undefined || value === null) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value !== 'object') return String(value);
  return Array.isArray(value) ? `an array of ${value.length}` : 'an object';
}

function integerAtLeast(value: unknown, min: number, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min)
    bad(path, `must be an integer >= ${min}; got ${show(value)}`);
  return value;
}

function checkProgramOptions(options: unknown, path: string): MemoryProgramOptions {
  if (typeof options !== 'object' || options === null) bad(path, 'must be an object');
  const { startDelayMs, failStart, ...rest } = options as MemoryProgramOptions;
  const unknown = Object.keys(rest);
  if (unknown.length > 0)
    bad(
      `${path}.${unknown[0]}`,
      'is not a program option; allowed: startDelayMs, failStart',
      'UNKNOWN_OPTION',
    );
  if (startDelayMs !== undefined) integerAtLeast(startDelayMs, 0, `${path}.startDelayMs`);
  if (failStart !== undefined && (typeof failStart !== 'string' || failStart.length === 0))
    bad(`${path}.failStart`, `must be a non-empty message; got ${show(failStart)}`);
  return {
    ...(startDelayMs === undefined ? {} : { startDelayMs }),
    ...(failStart === undefined ? {} : { failStart }),
  };
}

interface Session {
  spec: SessionSpec;
  state: 'running' | 'exited';
  startedAt: number;
  lastActivityAt: number;
  exitCode: number | null;
  signal: string | null;
  exitedAt: number | undefined;
  output: string[];
  /** How many lines of output were dropped from the front (past maxOutputLines). */
  dropped: number;
  /** This run's number in the driver (a follow cursor names the run it counts in). */
  run: number;
  nudges: string[];
  hung: boolean;
  nudgeHandlers: Array<(text: string) => void>;
  stopHandler: (() => void) | undefined;
  timers: Set<unknown>;
  exited: Array<() => void>;
}

/**
 * The built-in programs:
 * - `agent`: echoes each nudge as an output line (`> text`) and runs until stopped;
 * - `silent`: runs until stopped, never writes;
 * - `exit`: exits right after start with the code in its second argument (default 0);
 * - `stubborn`: ignores stop requests, so a stop has to kill it after the grace period;
 * - `chatty`: writes a line every N ms (second argument, default 1000), like a busy agent.
 */
export const builtinPrograms: Readonly<Record<string, MemoryProgram>> = {
  agent: (s) => s.onNudge((text) => s.write(`> ${text}`)),
  silent: () => {},
  exit: (s) => s.after(0, () => s.exit(Number(s.spec.command[1] ?? 0))),
  stubborn: (s) => {
    s.onNudge((text) => s.write(`> ${text}`));
    s.onStop(() => {});
  },
  chatty: (s) => {
    const every = Number(s.spec.command[1] ?? 1_000);
    let n = 0;
    const tick = () => {
      s.write(`working ${++n}`);
      s.after(every, tick);
    };
    s.after(every, tick);
  },
};

/**
 * Sessions inside the process, scripted by programs, on an injected clock. For tests and for
 * embedding a whole town without tmux. Besides the {@link SessionDriver} contract it has
 * controls a test drives: crash a session, make it exit, hang it (alive, no activity), write
 * output, and read the nudges it got.
 *
 * @example
 * ```ts
 * const driver = createMemoryDriver({ clock });
 * await driver.start({ name: 'api-toast', epoch: 1, command: ['agent'] });
 * await driver.nudge('api-toast', 'check your hook');
 * driver.crash('api-toast'); // now it is exited with SIGKILL
 * ```
 */
export class MemoryDriver implements SessionDriver {
  readonly kind = 'memory';
  private readonly clock: Clock;
  private readonly programs = new Map<
    string,
    { run: MemoryProgram; options: MemoryProgramOptions }
  >();
  private readonly defaultProgram: string;
  private readonly defaultGraceMs: number;
  private readonly maxOutputLines: number;
  /** How many sessions were started (each run's number). */
  private runs = 0;
  private readonly sessions = new Map<string, Session>();
  private closed = false;
  /** Which "host" runs the sessions: a new one after {@link MemoryDriver.loseHost}. */
  private hostGeneration = 1;

  /** @param options - see {@link MemoryDriverOptions}. */
  constructor(options: MemoryDriverOptions = {}) {
    if (typeof options !== 'object' || options === null) bad('options', 'must be an object');
    for (const key of Object.keys(options))
      if (!OPTION_KEYS.includes(key))
        bad(
          `options.${key}`,
          `is not an option; allowed: ${OPTION_KEYS.join(', ')}`,
          'UNKNOWN_OPTION',
        );
    const clock = options.clock ?? realClock;
    if (
      typeof clock?.now !== 'function' ||
      typeof clock.setTimeout !== 'function' ||
      typeof clock.clearTimeout !== 'function'
    )
      bad('options.clock', 'must be a Clock (now, setTimeout, clearTimeout)');
    this.clock = clock;
    for (const [name, run] of Object.entries(builtinPrograms))
      this.programs.set(name, { run, options: {} });
    const programs = options.programs === undefined ? {} : options.programs;
    if (typeof programs !== 'object' || programs === null || Array.isArray(programs))
      bad('options.programs', `must be an object of programs by name; got ${show(programs)}`);
    for (const [name, program] of Object.entries(programs)) {
      const path = `options.programs.${name}`;
      if (typeof program === 'function') this.programs.set(name, { run: program, options: {} });
      else if (typeof program?.run === 'function')
        this.programs.set(name, {
          run: program.run,
          options: checkProgramOptions(program.options ?? {}, `${path}.options`),
        });
      else bad(path, 'must be a program function or { run, options }');
    }
    this.defaultProgram = options.defaultProgram ?? 'agent';
    if (!this.programs.has(this.defaultProgram))
      bad(
        'options.defaultProgram',
        `${show(this.defaultProgram)} is not a program; known: ${[...this.programs.keys()].join(', ')}`,
      );
    this.defaultGraceMs = integerAtLeast(
      options.defaultGraceMs ?? 5_000,
      0,
      'options.defaultGraceMs',
    );
    this.maxOutputLines = integerAtLeast(
      options.maxOutputLines ?? 1_000,
      1,
      'options.maxOutputLines',
    );
  }

  async start(input: SessionSpec): Promise<SessionStatus> {
    this.assertOpen();
    const spec = checkSessionSpec(input);
    const existing = this.sessions.get(spec.name);
    if (existing) {
      if (existing.spec.epoch === spec.epoch) return this.statusOf(spec.name, existing);
      if (existing.state === 'running') {
        throw new DriverError({
          code: 'EXISTS',
          message: `session ${spec.name} is running with epoch ${existing.spec.epoch}; stop it before starting epoch ${spec.epoch}`,
        });
      }
      this.sessions.delete(spec.name); // a dead session of an older epoch is replaced
    }
    const program =
      this.programs.get(spec.command[0] as string) ??
      (this.programs.get(this.defaultProgram) as {
        run: MemoryProgram;
        options: MemoryProgramOptions;
      });
    const now = this.clock.now();
    const session: Session = {
      spec,
      state: 'running',
      startedAt: now,
      lastActivityAt: now,
      exitCode: null,
      signal: null,
      exitedAt: undefined,
      output: [],
      dropped: 0,
      run: ++this.runs,
      nudges: [],
      hung: false,
      nudgeHandlers: [],
      stopHandler: undefined,
      timers: new Set(),
      exited: [],
    };
    this.sessions.set(spec.name, session);
    if (program.options.failStart !== undefined) {
      this.end(session, null, 'SIGABRT');
      throw new DriverError({
        code: 'START_FAILED',
        message: `session ${spec.name} died while starting: ${program.options.failStart}`,
      });
    }
    try {
      program.run(this.controller(session));
    } catch (error) {
      this.end(session, 1, null);
      throw new DriverError({
        code: 'START_FAILED',
        message: `session ${spec.name} died while starting: ${error instanceof Error ? error.message : String(error)}`,
        cause: error,
      });
    }
    const delay = program.options.startDelayMs ?? 0;
    if (delay > 0) await new Promise<void>((resolve) => this.clock.setTimeout(resolve, delay));
    return this.statusOf(spec.name, session);
  }

  async status(name: string): Promise<SessionStatus> {
    checkSessionName(name);
    const session = this.sessions.get(name);
    return session ? this.statusOf(name, session) : { name, state: 'missing', host: this.host };
  }

  /** What runs the sessions now (see {@link SessionStatus.host}). */
  get host(): string {
    return `memory:${this.hostGeneration}`;
  }

  async list(): Promise<SessionStatus[]> {
    this.assertOpen();
    return [...this.sessions.entries()].map(([name, s]) => this.statusOf(name, s));
  }

  async nudge(name: string, text: string): Promise<void> {
    const session = this.running(name, 'nudge');
    if (typeof text !== 'string' || text.length === 0) {
      throw new DriverError({
        code: 'NUDGE_FAILED',
        message: `nudge for ${name}: the text must be a non-empty string`,
      });
    }
    session.nudges.push(text);
    if (session.nudges.length > this.maxOutputLines) session.nudges.shift();
    if (session.hung) return; // delivered to a pane nobody reads: no reaction, no activity
    for (const handler of session.nudgeHandlers) handler(text);
  }

  async capture(name: string, options: { lines?: number } = {}): Promise<string[]> {
    checkSessionName(name);
    const session = this.sessions.get(name);
    if (!session)
      throw new DriverError({
        code: 'NOT_RUNNING',
        message: `session ${name} is missing; nothing to capture`,
      });
    const lines = options.lines ?? session.output.length;
    if (!Number.isSafeInteger(lines) || lines < 0) {
      throw new DriverError({
        code: 'INVALID_SPEC',
        message: `capture of ${name}: lines must be an integer >= 0`,
      });
    }
    return lines === 0 ? [] : session.output.slice(-lines);
  }

  /**
   * The session's lines after a cursor a previous call returned (every line of a memory session
   * is finished). The cursor is `<run>.<place>`: line `i` of what the run kept is at place
   * `dropped + i`; another run of the session never continues one.
   */
  async follow(name: string, options?: FollowOptions): Promise<FollowedOutput> {
    checkSessionName(name);
    const { after, lines } = checkFollowOptions(options);
    const session = this.sessions.get(name);
    if (!session)
      throw new DriverError({
        code: 'NOT_RUNNING',
        message: `session ${name} is missing; nothing to follow`,
      });
    const { output, dropped, run } = session;
    const end = dropped + output.length;
    const cursor = after === undefined ? undefined : /^(\d+)\.(\d+)$/.exec(after);
    if (after !== undefined && !cursor)
      throw new DriverError({
        code: 'INVALID_SPEC',
        message: `follow: after must be the end a previous call of this driver gave; got ${JSON.stringify(after)}`,
      });
    const place = Number(cursor?.[2]);
    const continuous =
      cursor !== null &&
      cursor !== undefined &&
      Number(cursor[1]) === run &&
      place >= dropped &&
      place <= end &&
      end - place <= lines;
    return {
      lines: continuous ? output.slice(place - dropped) : output.slice(-lines),
      end: `${run}.${end}`,
      continuous,
    };
  }

  async stop(name: string, options: StopOptions = {}): Promise<void> {
    checkSessionName(name);
    const session = this.sessions.get(name);
    if (!session || session.state === 'exited') return;
    const graceMs = options.graceMs ?? this.defaultGraceMs;
    if (!Number.isFinite(graceMs) || graceMs < 0) {
      throw new DriverError({
        code: 'INVALID_SPEC',
        message: `stop of ${name}: graceMs must be a number >= 0`,
      });
    }
    const gone = new Promise<void>((resolve) => session.exited.push(resolve));
    if (session.stopHandler) session.stopHandler();
    else this.end(session, null, 'SIGTERM');
    if (session.state === 'running') {
      const timer = this.clock.setTimeout(() => {
        if (session.state === 'running') this.end(session, null, 'SIGKILL');
      }, graceMs);
      gone.then(() => this.clock.clearTimeout(timer));
    }
    await gone;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  // ------------------------------------------------------------------ test controls

  /** Kills a running session now, as a crash (`SIGKILL` by default). */
  crash(name: string, signal = 'SIGKILL'): void {
    this.end(this.running(name, 'crash'), null, signal);
  }

  /**
   * Takes the whole host down, as a tmux server's death: every session ends and is gone
   * (`missing`, not `exited`), and what starts from now runs on a new host (another
   * {@link MemoryDriver.host}).
   */
  loseHost(): void {
    for (const session of this.sessions.values()) this.end(session, null, 'SIGHUP');
    this.sessions.clear();
    this.hostGeneration++;
  }

  /** Makes a running session exit by itself with a code. */
  exit(name: string, code = 0): void {
    this.end(this.running(name, 'exit'), code, null);
  }

  /** Hangs a session: it stays running but shows no activity and ignores nudges. */
  hang(name: string): void {
    this.running(name, 'hang').hung = true;
  }

  /** Undoes {@link MemoryDriver.hang}. */
  unhang(name: string): void {
    this.running(name, 'unhang').hung = false;
  }

  /** Writes a line of output from a running session (activity now). */
  write(name: string, line: string): void {
    this.emit(this.running(name, 'write'), line);
  }

  /** The nudges delivered to a session, in order (also those a hung session ignored). */
  nudgesOf(name: string): readonly string[] {
    return this.sessions.get(name)?.nudges ?? [];
  }

  /** Registers (or replaces) a program. @throws ConfigError for a bad name, program or options. */
  program(name: string, run: MemoryProgram, options: MemoryProgramOptions = {}): void {
    if (typeof name !== 'string' || name.length === 0)
      bad('name', `must be a non-empty string; got ${show(name)}`);
    if (typeof run !== 'function') bad('run', 'must be a program function');
    this.programs.set(name, { run, options: checkProgramOptions(options, 'options') });
  }

  // ------------------------------------------------------------------ internals

  private controller(session: Session): MemorySession {
    const alive = () =>
      session.state === 'running' && this.sessions.get(session.spec.name) === session;
    return {
      name: session.spec.name,
      epoch: session.spec.epoch,
      spec: session.spec,
      write: (line) => {
        if (alive() && !session.hung) this.emit(session, line);
      },
      exit: (code = 0) => {
        if (alive()) this.end(session, code, null);
      },
      crash: (signal = 'SIGSEGV') => {
        if (alive()) this.end(session, null, signal);
      },
      onNudge: (handler) => {
        session.nudgeHandlers.push(handler);
      },
      onStop: (handler) => {
        session.stopHandler = handler;
      },
      after: (ms, fn) => {
        const handle = this.clock.setTimeout(() => {
          session.timers.delete(handle);
          if (alive() && !session.hung) fn();
        }, ms);
        session.timers.add(handle);
      },
    };
  }

  private emit(session: Session, line: string): void {
    session.output.push(line);
    if (session.output.length > this.maxOutputLines) {
      const over = session.output.length - this.maxOutputLines;
      session.output.splice(0, over);
      session.dropped += over;
    }
    session.lastActivityAt = this.clock.now();
  }

  private end(session: Session, code: number | null, signal: string | null): void {
    if (session.state === 'exited') return;
    session.state = 'exited';
    session.exitCode = code;
    session.signal = signal;
    session.exitedAt = this.clock.now();
    for (const timer of session.timers) this.clock.clearTimeout(timer);
    session.timers.clear();
    for (const resolve of session.exited.splice(0)) resolve();
  }

  private running(name: string, what: string): Session {
    checkSessionName(name);
    const session = this.sessions.get(name);
    if (session?.state !== 'running') {
      throw new DriverError({
        code: 'NOT_RUNNING',
        message: `cannot ${what} session ${name}: it is ${session ? 'exited' : 'missing'}`,
      });
    }
    return session;
  }

  private statusOf(name: string, s: Session): SessionStatus {
    const base = {
      name,
      epoch: s.spec.epoch,
      host: this.host,
      startedAt: s.startedAt,
      lastActivityAt: s.lastActivityAt,
      ...(s.spec.labels === undefined ? {} : { labels: s.spec.labels }),
    };
    return s.state === 'running'
      ? { ...base, state: 'running' }
      : {
          ...base,
          state: 'exited',
          exitCode: s.exitCode,
          signal: s.signal,
          ...(s.exitedAt === undefined ? {} : { exitedAt: s.exitedAt }),
        };
  }

  private assertOpen(): void {
    if (this.closed)
      throw new DriverError({ code: 'UNAVAILABLE', message: 'the memory driver is closed' });
  }
}

/**
 * Creates a {@link MemoryDriver}.
 *
 * @param options - see {@link MemoryDriverOptions}.
 * @returns the driver.
 * @example
 * ```ts
 * const driver = createMemoryDriver({ clock, programs: { flaky: (s) => s.after(500, () => s.crash()) } });
 * ```
 */
export function createMemoryDriver(options: MemoryDriverOptions = {}): MemoryDriver {
  return new MemoryDriver(options);
}
