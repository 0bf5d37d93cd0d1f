import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname } from 'node:path';
import {
  type Clock,
  check,
  checkFollowOptions,
  checkSessionName,
  checkSessionSpec,
  DriverError,
  type FollowedOutput,
  type FollowOptions,
  processAlive,
  realClock,
  type SessionDriver,
  type SessionSpec,
  type SessionStatus,
  type StopOptions,
} from '@belfry/core/driver';
import {
  hasProc,
  identify,
  isAlive,
  orphanProcesses,
  type PaneIdentity,
  sessionProcesses,
  signalAll,
} from './procs';
import { driverError, Tmux, TmuxCallError, type TmuxSocket } from './tmux';

/** Options of {@link createTmuxDriver}. */
export interface TmuxDriverOptions {
  /**
   * The private tmux server: a socket name (`-L`, under tmux's socket directory) or a path
   * (`-S`, at most about 100 bytes). Never the user's default server.
   * @defaultValue `{ name: 'belfry' }`
   */
  socket?: TmuxSocket;
  /** The tmux program. @defaultValue `'tmux'` */
  tmux?: string;
  /** The time limit of one tmux call. @defaultValue 5_000 */
  commandTimeoutMs?: number;
  /** The size of a new session's window. @defaultValue 200 × 50 */
  width?: number;
  height?: number;
  /** Lines of history a pane keeps (what `capture` can return). @defaultValue 10_000 */
  historyLimit?: number;
  /** How long a new session is watched: dying with an error within it is a failed start. @defaultValue 250 */
  startCheckMs?: number;
  /** How long `stop` waits after SIGTERM before SIGKILL, unless the call says. @defaultValue 5_000 */
  stopGraceMs?: number;
  /** How long a nudge waits for the pane to change before sending Enter again. @defaultValue 1_000 */
  nudgeVerifyMs?: number;
  /** How many times Enter is sent again when the pane did not change. @defaultValue 2 */
  nudgeRetries?: number;
  /**
   * How long a nudge waits for the session's nudge lock (held by another driver's nudge) before
   * taking it as left by a dead process and breaking it. @defaultValue 15_000
   */
  nudgeLockMs?: number;
  /** Nudges longer than this (bytes) or with several lines go through a paste buffer. @defaultValue 2_048 */
  pasteOverBytes?: number;
  /** For the waits of start, stop and nudge. @defaultValue the system clock */
  clock?: Clock;
  /**
   * The variables of this process's environment that reach the tmux server, and so every
   * session: names, or prefixes ending in `*` (`LC_*`). Nothing else passes: the daemon's own
   * secrets (a `GITHUB_TOKEN` for its gates, cloud credentials) never reach an agent unless
   * listed here. A session's own variables come from its spec's `env`. `TMUX_TMPDIR` is always
   * kept for tmux itself (it places the socket).
   * @defaultValue {@link DEFAULT_INHERITED_ENV}
   * @example
   * ```ts
   * createTmuxDriver({ inheritEnv: [...DEFAULT_INHERITED_ENV, 'ANTHROPIC_API_KEY'] });
   * ```
   */
  inheritEnv?: readonly string[];
}

/**
 * What a session inherits from the daemon's environment by default: where programs and home
 * are, who the user is, the locale and time zone, the temporary folder, the terminal.
 */
export const DEFAULT_INHERITED_ENV: readonly string[] = Object.freeze([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'LC_*',
  'TZ',
  'TMPDIR',
  'TERM',
  'COLORTERM',
]);

const ENV_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*\*?$/;

/**
 * What is wrong with a list of inherited variables ({@link TmuxDriverOptions.inheritEnv}), or
 * undefined when nothing is: the one check the driver and a config loader share.
 */
export function inheritEnvProblem(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'must be a list of variable names';
  const bad = value.find((p) => typeof p !== 'string' || !ENV_PATTERN.test(p));
  return bad === undefined
    ? undefined
    : `must be variable names (letters, digits, '_', not starting with a digit), each optionally ending in '*' for a prefix; got ${JSON.stringify(bad) ?? String(bad)}`;
}

/** The part of `env` that `patterns` let through (plus tmux's own `TMUX_TMPDIR`). */
export function inheritedEnv(
  env: NodeJS.ProcessEnv,
  patterns: readonly string[],
): Record<string, string> {
  const names = new Set(patterns.filter((p) => !p.endsWith('*')));
  const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (name === 'TMUX_TMPDIR' || names.has(name) || prefixes.some((p) => name.startsWith(p)))
      kept[name] = value;
  }
  return kept;
}

/** The tmux driver, with what a test or an operator needs beyond the SessionDriver contract. */
export interface TmuxDriver extends SessionDriver {
  readonly kind: 'tmux';
  /** The server's socket. */
  readonly socket: TmuxSocket;
  /**
   * The pane's finished rows (those above the cursor) after a place: a row's place is its index
   * from the top of the pane's history, which holds until tmux drops old history (past
   * `historyLimit`, a tenth at a time) or the history is cleared; the row before the place is
   * checked against `last` so a shift is noticed. Rows, not joined lines: a line wider than the
   * pane comes as the rows it fills. A full-screen program (the alternate screen) is never
   * continuous: it redraws, and its screen is given as it is.
   */
  follow(name: string, options?: FollowOptions): Promise<FollowedOutput>;
  /** Kills the whole tmux server with every session on it (tests, teardown). */
  killServer(): Promise<void>;
}

/** The fields read for every pane, tab-separated; the labels (JSON, no raw tabs) come last. */
const FIELDS = [
  'session_name',
  'window_index',
  'pane_index',
  '@belfry_epoch',
  '@belfry_started',
  'pane_id',
  'pane_pid',
  'pane_dead',
  'pane_dead_status',
  'pane_dead_signal',
  'pane_dead_time',
  'window_activity',
  'pane_in_mode',
  'pid',
  'start_time',
  'pane_tty',
  '@belfry_nudge',
  '@belfry_labels',
] as const;
const FORMAT = FIELDS.map((f) => `#{${f}}`).join('\t');

interface Pane {
  name: string;
  epoch: number;
  startedAt: number;
  paneId: string;
  pid: number;
  dead: boolean;
  deadStatus: string;
  deadSignal: string;
  deadTime: string;
  /** window_activity, in seconds. */
  activity: number;
  /** Whether a person left the pane in a mode (copy mode, say): keys go to the mode. */
  inMode: boolean;
  /** The tmux server's pid. */
  serverPid: number;
  /** The tmux server's start (seconds): with its pid, which server this is. */
  serverStart: string;
  /** The pane's terminal (`/dev/pts/N`). */
  tty: string;
  /** `before after hash` of the last nudge (see nudge). */
  nudge: string;
  labels: Record<string, string> | undefined;
}

/** The longest line a terminal in canonical mode takes (Linux's N_TTY: 4,096 with the newline). */
const CANONICAL_LINE_BYTES = 4_095;

const SIGNALS = new Map<number, string>(
  Object.entries(constants.signals).map(([name, n]) => [n as number, name]),
);

function parsePanes(out: string): Pane[] {
  const panes: Pane[] = [];
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const f = line.split('\t');
    const [name, windowIndex, paneIndex, epoch, started] = f;
    // Only belfry's sessions (they carry an epoch), and only their first pane.
    if (!epoch || !/^\d+$/.test(epoch) || windowIndex !== '0' || paneIndex !== '0') continue;
    let labels: Record<string, string> | undefined;
    try {
      labels = f[17] ? (JSON.parse(f.slice(17).join('\t')) as Record<string, string>) : undefined;
    } catch {
      labels = undefined;
    }
    panes.push({
      name: name as string,
      epoch: Number(epoch),
      startedAt: Number(started),
      paneId: f[5] as string,
      pid: Number(f[6]),
      dead: f[7] === '1',
      deadStatus: f[8] ?? '',
      deadSignal: f[9] ?? '',
      deadTime: f[10] ?? '',
      activity: Number(f[11]),
      inMode: f[12] === '1',
      serverPid: Number(f[13]),
      serverStart: f[14] ?? '',
      tty: f[15] ?? '',
      nudge: f[16] ?? '',
      labels,
    });
  }
  return panes;
}

/** Drops control characters a terminal would act on; keeps newlines and tabs. */
function sanitize(text: string): string {
  let out = '';
  for (const ch of text.replace(/\r\n?/g, '\n')) {
    const c = ch.codePointAt(0) as number;
    // C0 controls but tab and newline, DEL, and the C1 controls (ESC sequences start here).
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a) || (c >= 0x7f && c <= 0x9f)) continue;
    out += ch;
  }
  return out;
}

/**
 * An argv word as tmux must get it: tmux reads a word that ends in `;` as the end of a command,
 * so that `;` is escaped (`\;` is a literal `;`).
 */
function word(w: string): string {
  return w.endsWith(';') ? `${w.slice(0, -1)}\\;` : w;
}

/** A value tmux expands as a format (a start directory): `#` doubled, so nothing is expanded. */
function literal(w: string): string {
  return w.replaceAll('#', '##');
}

function hash(lines: readonly string[]): string {
  return createHash('sha1').update(lines.join('\n')).digest('hex').slice(0, 16);
}

/** How many rows before a follow cursor's place it checks (by hash) to know the place holds. */
const MARK_ROWS = 3;

/** A follow cursor: `<pane id>.<width>.<history size>.<place>.<hash of the rows before it>`. */
const FOLLOW_CURSOR = /^(%\d+)\.(\d+)\.(\d+)\.(\d+)\.([0-9a-f]{16})$/;

/** A pane's text as capture-pane gives it, without tmux's own "Pane is dead" line and trailing blank lines. */
function screenLines(out: string): string[] {
  const lines = out.split('\n');
  while (lines.length > 0 && (lines.at(-1) ?? '').trim() === '') lines.pop();
  if (/^Pane is dead \(/.test(lines.at(-1) ?? '')) lines.pop();
  while (lines.length > 0 && (lines.at(-1) ?? '').trim() === '') lines.pop();
  return lines;
}

/**
 * Agent sessions as tmux sessions on a private server (`-L`/`-S`, `-f /dev/null`), every call
 * through execFile with argv and a time limit. The agent runs as the pane's own command (no shell
 * in between) with `remain-on-exit`, so its exit code or signal is known. The epoch, labels and
 * start time are kept as session options on the server, so a new driver (a restarted daemon)
 * lists and re-attaches to the sessions it finds.
 *
 * - `nudge` strips control characters, sends short text with `send-keys -l --` (a trailing `;`
 *   escaped) and long or multi-line text through a paste buffer, then Enter on its own; it
 *   resolves once the pane changed, sending Enter again a bounded number of times. Nudges to one
 *   session never interleave. The echo of a nudge does not count as the session's activity.
 * - `stop` sends SIGTERM to the pane's process group and every process of the session (its
 *   descendants, and what carries the session's marker in its environment, like a grandchild
 *   started with `setsid`), waits the grace period, sends SIGKILL to what is left, then kills the
 *   tmux session.
 * - `status` and `list` read the panes with one `list-panes` call (never `display-message`).
 *
 * @example
 * ```ts
 * import { createTmuxDriver } from '@belfry/driver-tmux';
 *
 * const driver = createTmuxDriver({ socket: { name: 'my-town' } });
 * await driver.start({ name: 'api-toast', epoch: 1, command: ['claude', '--resume'], cwd: '/src/api' });
 * await driver.nudge('api-toast', 'check your hook');
 * console.log(await driver.capture('api-toast', { lines: 20 }));
 * await driver.stop('api-toast', { graceMs: 5_000 });
 * ```
 */
export function createTmuxDriver(options: TmuxDriverOptions = {}): TmuxDriver {
  const o = check.object(options, 'options');
  check.keys(
    o,
    [
      'socket',
      'tmux',
      'commandTimeoutMs',
      'width',
      'height',
      'historyLimit',
      'startCheckMs',
      'stopGraceMs',
      'nudgeVerifyMs',
      'nudgeRetries',
      'nudgeLockMs',
      'pasteOverBytes',
      'clock',
      'inheritEnv',
    ],
    'options',
  );
  const envProblem = o.inheritEnv === undefined ? undefined : inheritEnvProblem(o.inheritEnv);
  if (envProblem !== undefined) check.fail('INVALID_OPTION', 'options.inheritEnv', envProblem);
  const inherit = (o.inheritEnv as readonly string[] | undefined) ?? DEFAULT_INHERITED_ENV;
  const int = (key: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
    check.number(o[key], `options.${key}`, fallback, { integer: true, min, max });
  const socket = checkSocket(o.socket ?? { name: 'belfry' });
  const tmux = new Tmux(
    check.optionalString(o.tmux, 'options.tmux') ?? 'tmux',
    socket,
    int('commandTimeoutMs', 5_000, 1),
    // tmux runs with the allowed environment only: a server it starts has no other variables,
    // and so neither has any session on it.
    () => inheritedEnv(process.env, inherit),
  );
  const width = int('width', 200, 10, 10_000);
  const height = int('height', 50, 5, 10_000);
  const historyLimit = int('historyLimit', 10_000, 0, 10_000_000);
  const startCheckMs = int('startCheckMs', 250, 0);
  const stopGraceMs = int('stopGraceMs', 5_000, 0);
  const verifyMs = int('nudgeVerifyMs', 1_000, 1);
  const retries = int('nudgeRetries', 2, 0, 20);
  const lockMs = int('nudgeLockMs', 15_000, 1);
  const pasteOver = int('pasteOverBytes', 2_048, 1, 16_000);
  if (o.clock !== undefined && typeof (o.clock as Clock).setTimeout !== 'function')
    check.fail(
      'INVALID_OPTION',
      'options.clock',
      'must be a Clock (now, setTimeout, clearTimeout)',
    );
  const clock = (o.clock as Clock | undefined) ?? realClock;
  const socketId = 'path' in socket ? socket.path : socket.name;
  const marker = (name: string) => `BELFRY_SESSION=${socketId}/${name}`;

  const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
  const locks = new Map<string, Promise<unknown>>();
  /** Runs `job` after every earlier job on the same key. */
  function serial<T>(key: string, job: () => Promise<T>): Promise<T> {
    const before = locks.get(key) ?? Promise.resolve();
    const run = before.then(job, job);
    const tail = run.catch(() => undefined);
    locks.set(key, tail);
    void tail.then(() => {
      if (locks.get(key) === tail) locks.delete(key);
    });
    return run;
  }
  /** Per session: the activity second that was judged to be only a nudge's echo, and the verdict. */
  const echoVerdicts = new Map<string, { key: string; activity: number }>();

  /** The server this driver last saw its sessions on (`tmux:<pid>:<start>`); null: not looked yet. */
  let seenHost: string | undefined | null = null;
  /** Each session's pane as last seen: its process (it leads the pane's process session), its tty. */
  const seenPanes = new Map<string, PaneIdentity>();
  let reaping: Promise<void> = Promise.resolve();
  const hostOf = (p: Pane) => `tmux:${p.serverPid}:${p.serverStart}`;

  /** The server running now (`tmux:<pid>:<start>`), or undefined when none runs. */
  async function hostNow(): Promise<string | undefined> {
    const out = (await tmux.runIfThere(['display-message', '-p', '#{pid}:#{start_time}']))?.trim();
    return out ? `tmux:${out}` : undefined;
  }

  /**
   * Notes the server the sessions are on. When it is not the one seen before (it died, another
   * took its place, or this driver just began), what the sessions of the old one left running
   * is ended in the background (see {@link reapOrphans}).
   */
  function noticeHost(host: string | undefined, seen: readonly Pane[]): void {
    for (const p of seen) {
      if (p.dead || seenPanes.get(p.name)?.pid === p.pid) continue;
      const id = hasProc() ? identify(p.pid) : undefined;
      if (id) seenPanes.set(p.name, { ...id, ...(p.tty ? { tty: p.tty } : {}) });
    }
    if (host === seenHost) return;
    seenHost = host;
    if (!hasProc()) return;
    reaping = reaping.then(reapOrphans).catch(() => undefined);
  }

  /**
   * Ends what sessions that are gone left running: processes carrying this server's marker for
   * a session that is not on the server now (a \`setsid\` child outlives its server), and the
   * processes still in a lost pane's process session (a child that ignored the hangup). The
   * sessions are listed after the scan, so a session started meanwhile is never taken for lost.
   * SIGTERM, a short grace, then SIGKILL until a scan finds nothing.
   */
  async function reapOrphans(): Promise<void> {
    const prefix = `BELFRY_SESSION=${socketId}/`;
    const lost = [...seenPanes.values()];
    const find = async () => {
      const candidates = orphanProcesses(prefix, lost);
      if (candidates.length === 0) return [];
      const present = new Map((await panes()).map((p) => [p.name, p.pid]));
      // Every session on the server by name, also one being started (its epoch is set just after
      // tmux made it, so it is not among the panes yet): its processes are not a lost session's.
      const named = new Set(
        ((await tmux.runIfThere(['list-sessions', '-F', '#{session_name}'])) ?? '')
          .split('\n')
          .filter((n) => n !== ''),
      );
      const lostSids = new Set<number>();
      for (const [name, id] of [...seenPanes])
        if (present.get(name) !== id.pid) {
          lostSids.add(id.pid);
          seenPanes.delete(name);
        }
      for (const id of lost) if (![...present.values()].includes(id.pid)) lostSids.add(id.pid);
      return candidates
        .filter((c) =>
          c.session !== undefined
            ? !present.has(c.session) && !named.has(c.session)
            : c.tty !== undefined || lostSids.has(c.sid),
        )
        .map((c) => c.pid);
    };
    const orphans = await find();
    if (orphans.length === 0) return;
    signalAll(orphans, 'SIGTERM');
    const deadline = clock.now() + Math.min(stopGraceMs, 2_000);
    while (orphans.some(isAlive) && clock.now() < deadline) await sleep(25);
    // What is left, and whatever it spawned meanwhile, is killed until a scan finds nothing.
    for (let round = 0; round < 20; round++) {
      const left = (await find()).filter(isAlive);
      if (left.length === 0) break;
      signalAll(left, 'SIGKILL');
      for (let i = 0; i < 20 && left.some(isAlive); i++) await sleep(10);
    }
  }

  async function panes(name?: string): Promise<Pane[]> {
    const out = await tmux.runIfThere(
      name === undefined
        ? ['list-panes', '-a', '-F', FORMAT]
        : ['list-panes', '-s', '-t', `=${name}:`, '-F', FORMAT],
    );
    return out === undefined
      ? []
      : parsePanes(out).filter((p) => name === undefined || p.name === name);
  }

  async function captureLines(target: string, from?: number): Promise<string[]> {
    const out = await tmux.run([
      'capture-pane',
      '-p',
      '-J',
      '-t',
      target,
      '-S',
      from === undefined ? '-' : String(-from),
    ]);
    return screenLines(out);
  }

  /** When the session last wrote output of its own: tmux's window activity, less a nudge's echo. */
  async function activityOf(pane: Pane): Promise<number> {
    const seen = pane.activity * 1_000;
    const [before, after, screen] = pane.nudge.split(' ');
    // Activity up to a second after a nudge ended may be its echo (the Enter's echo can land in
    // the next second): if the pane still shows just what the nudge typed, it was, and the
    // session's own activity is what it was before the nudge.
    if (!screen || pane.activity > Number(after) + 1 || Number(before) >= pane.activity)
      return seen;
    const key = `${pane.paneId}|${pane.nudge}|${pane.activity}`;
    const cached = echoVerdicts.get(pane.name);
    if (cached?.key === key) return cached.activity;
    let activity = seen;
    try {
      if (hash(await captureLines(pane.paneId, 50)) === screen) activity = Number(before) * 1_000;
    } catch {
      // the pane went away meanwhile: its activity is what tmux said
    }
    // Output in the same second would not move tmux's activity: a verdict is kept only once
    // that second is over.
    if (Math.floor(Date.now() / 1_000) > pane.activity + 1)
      echoVerdicts.set(pane.name, { key, activity });
    return activity;
  }

  async function toStatus(pane: Pane): Promise<SessionStatus> {
    const base = {
      name: pane.name,
      epoch: pane.epoch,
      pid: pane.pid,
      host: hostOf(pane),
      startedAt: pane.startedAt,
      lastActivityAt: await activityOf(pane),
      ...(pane.labels ? { labels: pane.labels } : {}),
    };
    if (!pane.dead) return { ...base, state: 'running' };
    const signal =
      pane.deadSignal === ''
        ? null
        : (SIGNALS.get(Number(pane.deadSignal)) ?? `SIG${pane.deadSignal}`);
    return {
      ...base,
      state: 'exited',
      exitCode: pane.deadStatus === '' ? null : Number(pane.deadStatus),
      signal,
      ...(pane.deadTime ? { exitedAt: Number(pane.deadTime) * 1_000 } : {}),
    };
  }

  /**
   * Whether tmux knows how a dead pane's process ended. tmux 3.3a loses a SIGCHLD now and then
   * (measured here: the pane's process stays a zombie and `pane_dead_status` stays empty until
   * another child exits); a SIGCHLD sent to the server makes it reap, and the status appears.
   */
  const statusKnown = (p: Pane) => !p.dead || p.deadStatus !== '' || p.deadSignal !== '';
  function kick(p: Pane): void {
    try {
      if (p.serverPid > 0) process.kill(p.serverPid, 'SIGCHLD');
    } catch {
      // the server is gone: the next read says so
    }
  }

  /** The session's pane, once tmux knows how a dead one ended (up to about a second). */
  async function pane(name: string): Promise<Pane | undefined> {
    let found = (await panes(name))[0];
    for (let i = 0; i < 40 && found && !statusKnown(found); i++) {
      kick(found);
      await sleep(25);
      found = (await panes(name))[0];
    }
    return found;
  }

  async function status(name: string): Promise<SessionStatus> {
    checkSessionName(name);
    try {
      const found = await pane(name);
      if (found) {
        noticeHost(hostOf(found), [found]);
        return toStatus(found);
      }
      // Which server it is missing from: a session lost with its server is not its own fault.
      const host = await hostNow();
      noticeHost(host, []);
      return { name, state: 'missing', ...(host === undefined ? {} : { host }) };
    } catch (error) {
      throw driverError(error, `status of session ${name}`);
    }
  }

  async function create(spec: SessionSpec): Promise<void> {
    // One argv word would be run by tmux through `sh -c`: `env --` keeps it a program. tmux also
    // gives a new pane the PATH of whoever called it, so a PATH of the spec is set by `env` too.
    const path = spec.env?.PATH;
    const argv =
      path !== undefined
        ? ['env', '--', `PATH=${path}`, ...spec.command]
        : spec.command.length === 1
          ? ['env', '--', ...spec.command]
          : [...spec.command];
    const env = { ...(spec.env ?? {}), BELFRY_SESSION: `${socketId}/${spec.name}` };
    if ('path' in socket && !existsSync(dirname(socket.path)))
      throw new DriverError({
        code: 'UNAVAILABLE',
        message: `the folder of the tmux socket ${socket.path} does not exist`,
      });
    const target = `=${spec.name}:`;
    await tmux.run([
      'start-server',
      ';',
      'set-option',
      '-g',
      'remain-on-exit',
      'on',
      ';',
      'set-option',
      '-g',
      'history-limit',
      String(historyLimit),
      ';',
      // A new session copies nothing more from the client's environment.
      'set-option',
      '-g',
      'update-environment',
      '',
      ';',
      'new-session',
      '-d',
      '-s',
      spec.name,
      '-x',
      String(width),
      '-y',
      String(height),
      ...(spec.cwd ? ['-c', word(literal(spec.cwd))] : []),
      ...Object.entries(env).flatMap(([k, v]) => ['-e', word(`${k}=${v}`)]),
      '--',
      ...argv.map(word),
      ';',
      'set-option',
      '-t',
      target,
      '@belfry_epoch',
      String(spec.epoch),
      ';',
      'set-option',
      '-t',
      target,
      '@belfry_started',
      String(clock.now()),
      ';',
      'set-option',
      '-t',
      target,
      '@belfry_labels',
      word(JSON.stringify(spec.labels ?? {})),
    ]);
  }

  /**
   * Whether a session of that name exists that belfry did not start. One that another driver is
   * creating right now has no epoch for a moment: it is given a little time to get one.
   */
  async function foreign(name: string): Promise<boolean> {
    for (let i = 0; i < 10; i++) {
      if ((await tmux.runIfThere(['has-session', '-t', `=${name}:`])) === undefined) return false;
      if ((await panes(name)).length > 0) return false;
      await sleep(30);
    }
    return true;
  }

  async function start(input: SessionSpec): Promise<SessionStatus> {
    const spec = checkSessionSpec(input);
    if (spec.cwd !== undefined) {
      let isDir = false;
      try {
        isDir = statSync(spec.cwd).isDirectory();
      } catch {
        isDir = false;
      }
      if (!isDir)
        throw new DriverError({
          code: 'INVALID_SPEC',
          message: `session ${spec.name}: cwd ${JSON.stringify(spec.cwd)} is not a directory`,
        });
    }
    if (
      (spec.command.length === 1 || spec.env?.PATH !== undefined) &&
      (spec.command[0] as string).includes('=')
    )
      throw new DriverError({
        code: 'INVALID_SPEC',
        message: `session ${spec.name}: the program ${JSON.stringify(spec.command[0])} has '=' in its name, which env (how the driver runs it) would take for a variable`,
      });
    return serial(spec.name, async () => {
      try {
        for (let attempt = 0; ; attempt++) {
          const existing = await pane(spec.name);
          if (existing) {
            if (existing.epoch === spec.epoch) return toStatus(existing);
            if (!existing.dead)
              throw new DriverError({
                code: 'EXISTS',
                message: `session ${spec.name} is running with epoch ${existing.epoch}; stop it before starting epoch ${spec.epoch}`,
              });
            // A dead session of another epoch is replaced, after what its agent left running
            // (a background job of a killed shell) is ended: one epoch's processes at a time.
            await terminate(spec.name, existing, Math.min(stopGraceMs, 1_000));
            await tmux.runIfThere(['kill-session', '-t', `=${spec.name}:`]);
          } else if (await foreign(spec.name)) {
            throw new DriverError({
              code: 'EXISTS',
              message: `a tmux session named ${spec.name} exists on the socket that belfry did not start; it is left alone`,
            });
          }
          try {
            await create(spec);
            break;
          } catch (error) {
            // Another process created it between the look and the create, or the server was
            // exiting (its last session just stopped): look again.
            if (
              error instanceof TmuxCallError &&
              (error.failure === 'duplicate' || error.failure === 'no-server') &&
              attempt < 5
            ) {
              await sleep(20);
              continue;
            }
            throw error;
          }
        }
        if (startCheckMs > 0) await sleep(startCheckMs);
        const started = await pane(spec.name);
        if (!started) {
          // The whole server went (killed, crashed) while the session started: that is the
          // host's failure, not the agent's.
          if ((await hostNow()) === undefined)
            throw new DriverError({
              code: 'UNAVAILABLE',
              message: `the tmux server died while session ${spec.name} started`,
            });
          throw new DriverError({
            code: 'START_FAILED',
            message: `session ${spec.name} vanished right after it started`,
          });
        }
        const s = await toStatus(started);
        if (s.state === 'exited' && (s.signal !== null || s.exitCode !== 0)) {
          let last: string[] = [];
          for (let i = 0; i < 5 && last.length === 0; i++) {
            if (i > 0) await sleep(30);
            last = await captureLines(started.paneId, 5).catch(() => [] as string[]);
          }
          throw new DriverError({
            code: 'START_FAILED',
            message: `session ${spec.name} died while starting (${s.signal ? `signal ${s.signal}` : `exit code ${s.exitCode}`})${last.length ? `; its last output: ${last.join(' | ').slice(0, 500)}` : ''}`,
          });
        }
        return s;
      } catch (error) {
        throw driverError(error, `start of session ${spec.name}`);
      }
    });
  }

  async function list(): Promise<SessionStatus[]> {
    try {
      let all = await panes();
      for (let i = 0; i < 40 && all.some((p) => !statusKnown(p)); i++) {
        kick(all.find((p) => !statusKnown(p)) as Pane);
        await sleep(25);
        all = await panes();
      }
      noticeHost(all[0] === undefined ? undefined : hostOf(all[0]), all);
      return await Promise.all(all.map(toStatus));
    } catch (error) {
      throw driverError(error, 'list of sessions');
    }
  }

  /** Waits until the pane's text differs from `than`; false after `ms`. */
  async function changed(paneId: string, than: string, ms: number): Promise<string | undefined> {
    const deadline = clock.now() + ms;
    for (;;) {
      const now = hash(await captureLines(paneId, 50));
      if (now !== than) return now;
      if (clock.now() >= deadline) return undefined;
      await sleep(20);
    }
  }

  /**
   * Holds the session's nudge lock, so nudges from two drivers (or processes) never interleave
   * either. The lock is a session option on the tmux server naming its holder (`<pid>:<token>`),
   * taken and released by tmux itself in one step (`if-shell -F`): no waiting client is left on
   * the server. A lock whose holder process is gone (a daemon killed mid-nudge) is broken at
   * once; one held by a live process is waited for, and broken after `lockMs` (a holder that
   * hangs).
   */
  async function withNudgeLock<T>(name: string, job: () => Promise<T>): Promise<T> {
    const target = `=${name}:`;
    const token = `${process.pid}:${Math.floor(Math.random() * 1e12).toString(36)}`;
    const deadline = clock.now() + lockMs;
    for (;;) {
      const holder = (
        await tmux.run([
          'if-shell',
          '-F',
          '-t',
          target,
          '#{@belfry_nudge_lock}',
          `display-message -p -t ${target} '#{@belfry_nudge_lock}'`,
          `set-option -t ${target} @belfry_nudge_lock ${token} ; display-message -p ${token}`,
        ])
      ).trim();
      if (holder === token) break;
      const pid = Number(holder.split(':')[0]);
      const gone = !Number.isSafeInteger(pid) || pid <= 0 || !processAlive(pid);
      if (clock.now() >= deadline + lockMs)
        throw new DriverError({
          code: 'NUDGE_FAILED',
          message: `session ${name}: its nudge lock (held by ${JSON.stringify(holder)}) could not be taken within ${2 * lockMs} ms`,
        });
      // Broken only while it is still that holder's (or when it is no holder of ours at all).
      if (gone || clock.now() >= deadline) await releaseLock(target, holder);
      await sleep(25);
    }
    try {
      return await job();
    } finally {
      await releaseLock(target, token).catch(() => undefined);
    }
  }

  /** Clears the session's nudge lock if `holder` holds it (whatever holds it, for a malformed holder). */
  async function releaseLock(target: string, holder: string): Promise<void> {
    const clear = ['set-option', '-u', '-t', target, '@belfry_nudge_lock'];
    if (!/^\d+:[0-9a-z]+$/.test(holder)) {
      await tmux.run(clear);
      return;
    }
    await tmux.run([
      'if-shell',
      '-F',
      '-t',
      target,
      `#{==:#{@belfry_nudge_lock},${holder}}`,
      clear.join(' '),
    ]);
  }

  /**
   * Whether the pane's program reads its terminal in canonical mode (line by line), from the
   * terminal's settings (`stty -a`); undefined when they cannot be read.
   */
  async function canonical(paneId: string): Promise<boolean | undefined> {
    const tty = (await tmux.run(['display-message', '-p', '-t', paneId, '#{pane_tty}'])).trim();
    if (!tty.startsWith('/dev/')) return undefined;
    return new Promise((resolve) => {
      execFile('stty', ['-F', tty, '-a'], { timeout: 2_000 }, (error, stdout) => {
        if (error) return resolve(undefined);
        const words = String(stdout).split(/[\s;]+/);
        resolve(words.includes('icanon') ? true : words.includes('-icanon') ? false : undefined);
      });
    });
  }

  async function nudge(name: string, text: string): Promise<void> {
    checkSessionName(name);
    if (typeof text !== 'string')
      throw new DriverError({
        code: 'INVALID_SPEC',
        message: `nudge text must be a string; got ${typeof text}`,
      });
    const clean = sanitize(text);
    if (clean.trim() === '')
      throw new DriverError({
        code: 'INVALID_SPEC',
        message: `session ${name}: the nudge has no text (once control characters are removed)`,
      });
    return serial(`nudge:${name}`, async () => {
      try {
        const target = await pane(name);
        if (!target || target.dead)
          throw new DriverError({
            code: 'NOT_RUNNING',
            message: `session ${name} is ${target ? 'exited' : 'missing'}; nothing to nudge`,
          });
        await withNudgeLock(name, async () => {
          const id = target.paneId;
          // A person left the pane in copy mode: keys would go to the mode, not the program.
          if (target.inMode) await tmux.run(['send-keys', '-t', id, '-X', 'cancel']);
          // A program reading its terminal line by line (canonical mode) gets at most 4,095 bytes
          // of a line: a longer one would arrive cut, so it is refused rather than reported
          // delivered. A raw-mode program (an agent's TUI) takes it whole through a paste.
          const longest = Math.max(...clean.split('\n').map((l) => Buffer.byteLength(l)));
          if (longest > CANONICAL_LINE_BYTES && (await canonical(id)) !== false)
            throw new DriverError({
              code: 'NUDGE_FAILED',
              message: `session ${name}: a line of the nudge has ${longest} bytes, but the program reads its terminal line by line (canonical mode), which takes at most ${CANONICAL_LINE_BYTES} bytes a line; split the text into lines or have the program read raw input`,
            });
          const activityBefore = Math.floor((await activityOf(target)) / 1_000);
          const before = hash(await captureLines(id, 50));
          if (clean.includes('\n') || Buffer.byteLength(clean) > pasteOver) {
            const buffer = `belfry-${name}-${process.pid}-${Date.now()}`;
            await tmux.run(['load-buffer', '-b', buffer, '-'], clean);
            await tmux.run(['paste-buffer', '-d', '-p', '-b', buffer, '-t', id]);
          } else {
            // tmux eats a final ';' (its command separator) even with -l: escape it.
            await tmux.run(['send-keys', '-t', id, '-l', '--', word(clean)]);
          }
          // What the pane shows once the text is typed: its echo, not the session's reply.
          const typed = (await changed(id, before, Math.min(verifyMs, 500))) ?? before;
          for (let attempt = 0; ; attempt++) {
            await tmux.run(['send-keys', '-t', id, 'Enter']);
            // The text showed: it was delivered. Otherwise the Enter must change the pane.
            if (typed !== before || (await changed(id, typed, verifyMs)) !== undefined) break;
            if (attempt >= retries)
              throw new DriverError({
                code: 'NUDGE_FAILED',
                message: `session ${name}: the pane did not change after the nudge and ${retries + 1} Enter keys; it may not be reading its input`,
              });
          }
          // Remember the echo, so it is not taken for the session's own activity.
          const now = (await panes(name))[0];
          if (now)
            await tmux.run([
              'set-option',
              '-t',
              `=${name}:`,
              '@belfry_nudge',
              `${activityBefore} ${now.activity} ${typed}`,
            ]);
        });
      } catch (error) {
        // The session went away while it was being nudged (stopped, exited).
        if (
          error instanceof TmuxCallError &&
          (error.failure === 'not-found' || error.failure === 'no-server')
        )
          throw new DriverError({
            code: 'NOT_RUNNING',
            message: `session ${name} went away during the nudge`,
            cause: error,
          });
        throw driverError(error, `nudge of session ${name}`);
      }
    });
  }

  async function capture(name: string, opts: { lines?: number } = {}): Promise<string[]> {
    checkSessionName(name);
    const lines = opts.lines;
    if (lines !== undefined && (!Number.isSafeInteger(lines) || lines < 1))
      throw new DriverError({
        code: 'INVALID_SPEC',
        message: `capture lines must be an integer >= 1; got ${lines}`,
      });
    try {
      const target = await pane(name);
      if (!target)
        throw new DriverError({ code: 'NOT_RUNNING', message: `session ${name} is missing` });
      // Lines, not screen rows: a wrapped line spans several rows, so read the whole history
      // (joined) and keep the last `lines`.
      const all = await captureLines(target.paneId);
      return lines === undefined ? all : all.slice(-lines);
    } catch (error) {
      throw driverError(error, `capture of session ${name}`);
    }
  }

  async function follow(name: string, opts?: FollowOptions): Promise<FollowedOutput> {
    checkSessionName(name);
    const { after, lines } = checkFollowOptions(opts);
    const from = after === undefined ? undefined : FOLLOW_CURSOR.exec(after);
    if (after !== undefined && !from)
      throw new DriverError({
        code: 'INVALID_SPEC',
        message: `follow: after must be the end a previous call of the tmux driver gave; got ${JSON.stringify(after)}`,
      });
    try {
      const target = await pane(name);
      if (!target)
        throw new DriverError({ code: 'NOT_RUNNING', message: `session ${name} is missing` });
      // One tmux call, so the counts and the rows are of one moment: the pane, its width, history
      // size, cursor row, screen mode and whether its program ended; then its rows from
      // `lines + MARK_ROWS` rows of history down (rows, not joined lines: a row keeps its place
      // in the history until tmux drops old history or the pane is resized or cleared).
      const out = await tmux.run([
        'display-message',
        '-p',
        '-t',
        target.paneId,
        '#{pane_id} #{pane_width} #{history_size} #{cursor_y} #{alternate_on} #{pane_dead}',
        ';',
        'capture-pane',
        '-p',
        '-t',
        target.paneId,
        '-S',
        String(-(lines + MARK_ROWS)),
      ]);
      const [head = '', ...rows] = out.split('\n');
      const [paneId = '', w, h, y, alt, dead] = head.split(' ');
      const [width, history, cursor] = [Number(w), Number(h), Number(y)];
      // Row k of `rows` is row `k - kept` of the pane (negative: history), at place
      // `history + row`; the rows above the cursor are finished.
      const kept = Math.min(history, lines + MARK_ROWS);
      const top = history - kept;
      const at = (place: number) => rows[place - history + kept] ?? '';
      let end = history + cursor;
      // An ended program's pane gets tmux's own line and blank rows below its output: not its.
      if (dead === '1')
        while (end > top && (at(end - 1).trim() === '' || /^Pane is dead \(/.test(at(end - 1))))
          end--;
      const between = (a: number, b: number) => {
        const got: string[] = [];
        for (let p = Math.max(a, top); p < b; p++) got.push(at(p));
        return got;
      };
      /** The rows just before `place`, as a check that the place still holds. */
      const mark = (place: number) => hash(between(place - MARK_ROWS, place));
      const cursorAt = (place: number) => `${paneId}.${width}.${history}.${place}.${mark(place)}`;
      // A full-screen program (the alternate screen) redraws rather than scrolls: there are no
      // places to count on, only what it shows now; the cursor given stays the one it was, so
      // following goes on where it was once the program is done.
      if (alt === '1')
        return {
          lines: screenLines(rows.slice(kept).join('\n')).slice(-lines),
          end: after ?? cursorAt(end),
          continuous: false,
        };
      if (from && from[1] === paneId && Number(from[2]) === width) {
        const place = Number(from[4]);
        if (place <= end && end - place <= lines && mark(place) === from[5])
          return { lines: between(place, end), end: cursorAt(end), continuous: true };
        // Otherwise (the cursor moved up: a program redrawing its last rows, or a cleared
        // screen, which cannot be told apart) the latest lines, for the reader to compare.
      }
      return { lines: between(end - lines, end), end: cursorAt(end), continuous: false };
    } catch (error) {
      throw driverError(error, `follow of session ${name}`);
    }
  }

  /**
   * Ends every process of a session: SIGTERM to the pane's process group and to each process of
   * the session (its descendants, and whatever carries its marker), `graceMs` to go, then
   * SIGKILL to what is left (and to what was spawned meanwhile).
   */
  async function terminate(name: string, target: Pane | undefined, graceMs: number): Promise<void> {
    const root = target && !target.dead ? target.pid : undefined;
    const scan = () =>
      hasProc() ? sessionProcesses(root, marker(name), target?.tty) : root ? [root] : [];
    const procs = scan();
    if (procs.length === 0) return;
    signalAll(procs, 'SIGTERM', root);
    const deadline = clock.now() + graceMs;
    while (procs.some(isAlive) && clock.now() < deadline) await sleep(Math.min(25, graceMs));
    // What is left, and whatever it spawned meanwhile, is killed: scan and kill until a scan
    // finds nothing (a process forking as fast as it can is caught within a few rounds).
    for (let round = 0; round < 50; round++) {
      const left = scan().filter(isAlive);
      if (left.length === 0) break;
      signalAll(left, 'SIGKILL', root);
      for (let i = 0; i < 20 && left.some(isAlive); i++) await sleep(10);
    }
  }

  async function stop(name: string, opts: StopOptions = {}): Promise<void> {
    checkSessionName(name);
    const graceMs = opts.graceMs ?? stopGraceMs;
    if (!Number.isSafeInteger(graceMs) || graceMs < 0)
      throw new DriverError({
        code: 'INVALID_SPEC',
        message: `graceMs must be an integer >= 0; got ${graceMs}`,
      });
    return serial(name, async () => {
      try {
        const target = await panes(name).then((p) => p[0]);
        // Without a pane (the server died, or it was never ours) only processes carrying this
        // session's marker, which belfry alone sets, are ended; a foreign session is left alone.
        await terminate(name, target, graceMs);
        if (!target) return;
        await tmux.runIfThere(['kill-session', '-t', `=${name}:`]);
        echoVerdicts.delete(name);
      } catch (error) {
        throw driverError(error, `stop of session ${name}`);
      }
    });
  }

  return {
    kind: 'tmux',
    socket,
    start,
    status,
    list,
    nudge,
    capture,
    follow,
    stop,
    async close() {
      // Sessions keep running: a new driver on the same socket re-attaches to them. What a dead
      // server's sessions left is being ended: that finishes first.
      await reaping;
    },
    async killServer() {
      await tmux.runIfThere(['kill-server']);
    },
  };
}

function checkSocket(value: unknown): TmuxSocket {
  const s = check.object(value, 'options.socket');
  check.keys(s, ['name', 'path'], 'options.socket');
  if ((s.name === undefined) === (s.path === undefined))
    check.fail('INVALID_OPTION', 'options.socket', 'give exactly one of name (-L) or path (-S)');
  if (s.name !== undefined) {
    if (typeof s.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(s.name))
      check.fail(
        'INVALID_OPTION',
        'options.socket.name',
        `must be 1 to 64 letters, digits, '_' or '-'; got ${check.describe(s.name)}`,
      );
    if (s.name === 'default')
      check.fail(
        'INVALID_OPTION',
        'options.socket.name',
        "'default' is the user's own tmux server; belfry keeps to a server of its own",
      );
    return { name: s.name };
  }
  if (typeof s.path !== 'string' || !s.path.startsWith('/') || Buffer.byteLength(s.path) > 100)
    check.fail(
      'INVALID_OPTION',
      'options.socket.path',
      `must be an absolute path of at most 100 bytes (a Unix socket's limit); got ${check.describe(s.path)}`,
    );
  if (/\/tmux-\d+\/default$/.test(s.path))
    check.fail(
      'INVALID_OPTION',
      'options.socket.path',
      "that is the user's own tmux server; belfry keeps to a server of its own",
    );
  return { path: s.path };
}
