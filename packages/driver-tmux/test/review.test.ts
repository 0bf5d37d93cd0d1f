/**
 * Review tests for the tmux driver: adversarial cases the tests leave out. Tests named
 * `BUG:` assert the correct behaviour and fail on the driver as written.
 */
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DriverError } from '@belfry/core/driver';
import { createTmuxDriver, type TmuxDriver } from '@belfry/driver-tmux';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, killAll, NODE, sleep, tmuxDriver } from './helpers';

const run = promisify(execFile);
const FIXTURES = join(import.meta.dirname, 'fixtures');
const ROOT = resolve(import.meta.dirname, '../../..');
const tmp = () => mkdtempSync(join(tmpdir(), 'belfry-review-'));

/** Processes a test left behind on purpose (stubborn ones), killed after each test. */
const leftovers = new Set<number>();

afterEach(async () => {
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  leftovers.clear();
  await killAll();
});

const socketArgs = (driver: TmuxDriver) =>
  'name' in driver.socket ? ['-L', driver.socket.name] : ['-S', driver.socket.path];
const socketId = (driver: TmuxDriver) =>
  'name' in driver.socket ? driver.socket.name : driver.socket.path;

/** Raw tmux on the driver's socket, behind the driver's back. */
async function raw(driver: TmuxDriver, ...args: string[]): Promise<string> {
  return (await run('tmux', ['-u', ...socketArgs(driver), '-f', '/dev/null', ...args])).stdout;
}

async function failure(p: Promise<unknown>): Promise<DriverError> {
  try {
    await p;
  } catch (error) {
    expect(error).toBeInstanceOf(DriverError);
    return error as DriverError;
  }
  throw new Error('expected a DriverError');
}

/** Whether a process is alive (a zombie is not). */
function alive(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}

/** Live processes whose environment carries the driver's marker for session `name`. */
function marked(driver: TmuxDriver, name: string): number[] {
  const marker = `BELFRY_SESSION=${socketId(driver)}/${name}`;
  const found: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker) && alive(pid))
        found.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** A raw-mode reader in a session, ready to read; returns the file its input goes to. */
async function rawReader(driver: TmuxDriver, name: string): Promise<string> {
  const file = join(tmp(), 'input');
  await driver.start({ name, epoch: 1, command: [NODE, join(FIXTURES, 'raw-reader.mjs'), file] });
  await eventually('the reader to be ready', async () =>
    (await driver.capture(name)).some((l) => l.includes('ready')),
  );
  return file;
}

/** A program that writes what it got (argv, cwd, env) as JSON to $PROBE_OUT, then waits. */
const PROBE = `require('node:fs').writeFileSync(process.env.PROBE_OUT, JSON.stringify({ argv: process.argv.slice(1), cwd: process.cwd(), env: process.env })); setInterval(() => {}, 1e9);`;
interface Probed {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}
async function probe(
  driver: TmuxDriver,
  name: string,
  opts: { args?: string[]; cwd?: string; env?: Record<string, string> } = {},
): Promise<Probed> {
  const out = join(tmp(), 'probe.json');
  await driver.start({
    name,
    epoch: 1,
    command: [NODE, '-e', PROBE, '--', ...(opts.args ?? [])],
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    env: { ...opts.env, PROBE_OUT: out },
  });
  return eventually('the probe to report', async () =>
    existsSync(out) && readFileSync(out, 'utf8') !== ''
      ? (JSON.parse(readFileSync(out, 'utf8')) as Probed)
      : undefined,
  );
}

/** A tmux that records each call's argv (one file per call) before running the real one. */
function recordingTmux(): { tmux: string; calls: () => string[][] } {
  const dir = tmp();
  const log = join(dir, 'calls');
  mkdirSync(log);
  const tmux = join(dir, 'tmux');
  writeFileSync(
    tmux,
    `#!/bin/sh\nf=$(mktemp -p '${log}' call.XXXXXXXX)\nfor a in "$@"; do printf '%s\\037' "$a"; done > "$f"\nexec tmux "$@"\n`,
    { mode: 0o755 },
  );
  return {
    tmux,
    calls: () =>
      readdirSync(log).map((f) =>
        readFileSync(join(log, f), 'utf8').split('\u001f').slice(0, -1),
      ),
  };
}

/** Waits until the wall clock is early in a second (tmux counts activity in whole seconds). */
async function earlyInASecond(): Promise<void> {
  while (Date.now() % 1_000 > 100) await sleep(10);
}

describe('review: sockets', () => {
  it('a socket given by path (-S) is used for every call: start, list, nudge, capture, stop', async () => {
    const path = join(tmp(), 'town.sock');
    const driver = tmuxDriver({ socket: { path } });
    await driver.start({ name: 'by-path', epoch: 2, command: ['cat'] });
    expect(existsSync(path)).toBe(true);
    expect((await raw(driver, 'list-sessions', '-F', '#{session_name}')).trim()).toBe('by-path');
    expect((await driver.list()).map((s) => [s.name, s.epoch])).toEqual([['by-path', 2]]);
    await driver.nudge('by-path', 'over the path');
    await eventually('the echo', async () =>
      (await driver.capture('by-path')).includes('over the path'),
    );
    await driver.stop('by-path', { graceMs: 0 });
    expect((await driver.status('by-path')).state).toBe('missing');
  });

  it('a socket path in a directory that does not exist: list is empty, status missing, start fails clearly', async () => {
    const dir = join(tmp(), 'no', 'such');
    const path = join(dir, 'sock');
    const driver = tmuxDriver({ socket: { path } });
    expect(await driver.list()).toEqual([]);
    expect((await driver.status('x')).state).toBe('missing');
    await driver.stop('x');
    const error = await failure(driver.start({ name: 'x', epoch: 1, command: ['cat'] }));
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toContain(path);
    expect(existsSync(dir)).toBe(false);
  });

  it('every tmux call is argv on the private socket with -f /dev/null, and status never uses display-message', async () => {
    const { tmux, calls } = recordingTmux();
    const driver = tmuxDriver({ tmux });
    await driver.start({ name: 'calls', epoch: 1, command: ['cat'] });
    await driver.status('calls');
    await driver.list();
    await driver.nudge('calls', 'hi;');
    await driver.capture('calls', { lines: 3 });
    await driver.stop('calls', { graceMs: 0 });
    const all = calls();
    expect(all.length).toBeGreaterThan(5);
    for (const argv of all) {
      expect(argv.slice(0, 5)).toEqual(['-u', ...socketArgs(driver), '-f', '/dev/null']);
      expect(argv).not.toContain('display-message');
      expect(argv).not.toContain('display');
    }
  });

  it('a hung tmux is a TIMEOUT for each operation, within the call limit', async () => {
    const dir = tmp();
    const slow = join(dir, 'tmux');
    writeFileSync(slow, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
    const driver = createTmuxDriver({
      tmux: slow,
      socket: { name: `belfry-review-hung-${process.pid}` },
      commandTimeoutMs: 200,
    });
    const t0 = Date.now();
    expect((await failure(driver.list())).code).toBe('TIMEOUT');
    expect((await failure(driver.status('x'))).code).toBe('TIMEOUT');
    expect((await failure(driver.start({ name: 'x', epoch: 1, command: ['cat'] }))).code).toBe(
      'TIMEOUT',
    );
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});

describe('review: the command, env and cwd reach the program unchanged', () => {
  it('argv words that are empty, start with -, look like tmux flags, formats or shell reach the program exactly', async () => {
    const driver = tmuxDriver();
    const args = [
      '',
      '-e',
      '--',
      '-t',
      '=x:',
      '#{session_name}',
      '##',
      '#(true)',
      '$HOME',
      '`id`',
      'a b',
      'mid;dle',
      'new\nline',
      'tab\there',
      'ünï 🚀',
      '{',
      '}',
      '\\',
    ];
    const got = await probe(driver, 'args', { args });
    expect(got.argv).toEqual(args);
  });

  it('BUG: argv words ending with ";" (find -exec … ;) reach the program unchanged', async () => {
    const driver = tmuxDriver();
    const args = ['-exec', 'echo', '{}', ';', 'ends;', 'esc\\;', ';;'];
    const got = await probe(driver, 'semi', { args });
    expect(got.argv).toEqual(args);
  });

  it('a program whose argv[0] starts with "-" runs as itself, with one word or several', async () => {
    const dir = tmp();
    writeFileSync(join(dir, '-agent'), '#!/bin/sh\necho "dash agent up: $*"\nexec sleep 1000\n', {
      mode: 0o755,
    });
    const driver = tmuxDriver();
    const env = { PATH: `${dir}:${process.env.PATH ?? '/usr/bin:/bin'}` };
    await driver.start({ name: 'dash-one', epoch: 1, command: ['-agent'], env });
    await driver.start({ name: 'dash-many', epoch: 1, command: ['-agent', '-x', 'y'], env });
    await eventually('both to say they are up', async () => {
      const one = await driver.capture('dash-one');
      const many = await driver.capture('dash-many');
      return one.includes('dash agent up: ') && many.includes('dash agent up: -x y');
    });
    expect((await driver.status('dash-one')).state).toBe('running');
  });

  it('env values with newlines, "=", formats, quotes and unicode arrive exactly', async () => {
    const driver = tmuxDriver();
    const env = {
      NEWLINES: 'one\ntwo\n',
      EQUALS: 'a=b==c=',
      FORMAT: '#{session_name} #S ## #(true)',
      SHELLY: `$HOME \`id\` "q" 'q' \\`,
      UNI: 'ünïcødé ✓ 日本語 🚀',
      LEADING: '-e X=1',
      EMPTY: '',
      MIDSEMI: 'a;b',
    };
    const got = await probe(driver, 'envy', { env });
    for (const [k, v] of Object.entries(env)) expect(got.env[k], k).toBe(v);
    expect(got.env.BELFRY_SESSION).toBe(`${socketId(driver)}/envy`);
  });

  it('BUG: an env value ending with ";" arrives exactly (and does not break the start)', async () => {
    const driver = tmuxDriver();
    const env = { LIST: 'a;b;', ONLY: ';' };
    const got = await probe(driver, 'env-semi', { env });
    expect(got.env.LIST).toBe('a;b;');
    expect(got.env.ONLY).toBe(';');
  });

  it('BUG: a cwd with "#" in it (a valid directory name) is used as given, not expanded as a tmux format', async () => {
    const base = realpathSync(tmp());
    const cwd = join(base, 'issue##42 #{session_name} #S');
    mkdirSync(cwd);
    const driver = tmuxDriver();
    const got = await probe(driver, 'hashdir', { cwd });
    expect(got.cwd).toBe(cwd);
  });

  it('BUG: a cwd holding "#(…)" never runs a shell command (tmux format jobs)', async () => {
    const base = realpathSync(tmp());
    const witness = join(base, 'PWNED');
    // A directory whose path spells a tmux format job; it exists, so the driver accepts it.
    const cwd = join(base, `x#(touch ${witness})`);
    mkdirSync(cwd, { recursive: true });
    const driver = tmuxDriver();
    await probe(driver, 'jobdir', { cwd });
    await sleep(500); // a format job runs in the background: give it time to show
    expect(existsSync(witness)).toBe(false);
  });

  it('BUG: a relative cwd is the directory the driver checked (not one relative to the tmux server)', async () => {
    // The server was started by someone else from another directory (a daemon restarted
    // elsewhere): a relative -c is resolved by tmux against the server's cwd, not ours.
    const target = realpathSync(tmp());
    const elsewhere = join(realpathSync(tmp()), 'deep', 'er');
    mkdirSync(elsewhere, { recursive: true });
    const driver = tmuxDriver();
    await run('tmux', [...socketArgs(driver), '-f', '/dev/null', 'new-session', '-d', '-s', 'keep', '--', 'sleep', '1000'], {
      cwd: elsewhere,
    });
    const rel = relative(process.cwd(), target);
    expect(rel.startsWith('/')).toBe(false);
    let got: Probed | undefined;
    try {
      got = await probe(driver, 'reldir', { cwd: rel });
    } catch (error) {
      // Refusing a relative cwd is as good as resolving it.
      expect((error as DriverError).code).toBe('INVALID_SPEC');
      return;
    }
    expect(got.cwd).toBe(target);
    expect(got.cwd).not.toBe(homedir());
  });
});
