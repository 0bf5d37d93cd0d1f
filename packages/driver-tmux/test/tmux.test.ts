import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DriverError } from '@belfry/core/driver';
import { createTmuxDriver, type TmuxDriver } from '@belfry/driver-tmux';
import { afterEach, describe, expect, it } from 'vitest';
import { Tmux, type TmuxCallError } from '../src/tmux';
import { eventually, killAll, NODE, sleep, tmuxDriver } from './helpers';

const run = promisify(execFile);
const FIXTURES = join(import.meta.dirname, 'fixtures');
const tmp = () => mkdtempSync(join(tmpdir(), 'belfry-tmux-'));

afterEach(killAll);

/** Raw tmux on the driver's socket, for what a test checks behind the driver's back. */
async function raw(driver: TmuxDriver, ...args: string[]): Promise<string> {
  const socket = 'name' in driver.socket ? ['-L', driver.socket.name] : ['-S', driver.socket.path];
  return (await run('tmux', [...socket, ...args])).stdout;
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

/** A raw-mode reader in a session, ready to read; returns the file its input goes to. */
async function rawReader(driver: TmuxDriver, name: string): Promise<string> {
  const file = join(tmp(), 'input');
  await driver.start({ name, epoch: 1, command: [NODE, join(FIXTURES, 'raw-reader.mjs'), file] });
  await eventually('the reader to be ready', async () =>
    (await driver.capture(name)).some((l) => l.includes('ready')),
  );
  return file;
}

const alive = (pid: number) => {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
};

describe('TmuxDriver: nudges', () => {
  it('a raw-mode program receives each nudge byte-exact: quotes, $, backticks, ;, a trailing ;, a leading -, unicode, emoji', async () => {
    const driver = tmuxDriver();
    const file = await rawReader(driver, 'reader');
    const texts = [
      `He said "hi" & 'bye'; echo $HOME \`id\` $(whoami) | > < * ? ~ # { } \\ 100%`,
      'ends with a semicolon;',
      ';',
      '-n looks like a flag',
      '--',
      'ünïcødé ✓ 日本語 🚀 👩‍👩‍👧',
      'Enter Space C-c',
    ];
    let expected = '';
    for (const text of texts) {
      await driver.nudge('reader', text);
      expected += `${text}\r`;
      await eventually('the bytes to arrive', async () => readFileSync(file, 'utf8') === expected);
    }
    expect(readFileSync(file)).toEqual(Buffer.from(expected, 'utf8'));
  });

  it('control characters are stripped, and a 100 KB nudge arrives whole through a paste buffer', async () => {
    const driver = tmuxDriver();
    const file = await rawReader(driver, 'big');
    await driver.nudge('big', 'a\u001b[31mred\u0007\u0008b');
    await eventually('the clean text', async () => readFileSync(file, 'utf8') === 'a[31mredb\r');
    const big = Array.from({ length: 10_000 }, (_, i) => `${String(i).padStart(5, '0')}-abc;`).join(
      '',
    );
    expect(Buffer.byteLength(big)).toBeGreaterThanOrEqual(100_000);
    await driver.nudge('big', big);
    await eventually(
      'the whole text',
      async () => readFileSync(file, 'utf8') === `a[31mredb\r${big}\r`,
      15_000,
    );
  }, 30_000);

  it('two nudges to one session at once never interleave', async () => {
    const driver = tmuxDriver();
    const file = await rawReader(driver, 'pair');
    const a = 'A'.repeat(5_000);
    const b = 'B'.repeat(5_000);
    await Promise.all([driver.nudge('pair', a), driver.nudge('pair', b)]);
    await eventually('both', async () => readFileSync(file, 'utf8').length === 10_002, 10_000);
    expect(readFileSync(file, 'utf8')).toBe(`${a}\r${b}\r`);
  }, 30_000);

  it('the echo of a nudge to a program that does not read is not the session’s activity', async () => {
    const driver = tmuxDriver();
    await driver.start({ name: 'deaf', epoch: 1, command: ['sleep', '1000'] });
    const before = (await driver.status('deaf')).lastActivityAt as number;
    await sleep(1_100); // tmux counts activity in whole seconds
    await driver.nudge('deaf', 'are you there?');
    expect((await driver.capture('deaf')).join('\n')).toContain('are you there?');
    expect((await driver.status('deaf')).lastActivityAt).toBe(before);
    expect((await driver.list()).find((s) => s.name === 'deaf')?.lastActivityAt).toBe(before);
    // A new driver (a restarted daemon) knows it too: it is kept on the server.
    const again = createTmuxDriver({ socket: driver.socket });
    expect((await again.status('deaf')).lastActivityAt).toBe(before);
  });

  it('a nudge to a program that reads counts its answer as activity', async () => {
    const driver = tmuxDriver();
    await driver.start({
      name: 'talker',
      epoch: 1,
      command: ['sh', '-c', 'while read -r line; do sleep 0.2; echo "answer: $line"; done'],
    });
    const before = (await driver.status('talker')).lastActivityAt as number;
    await sleep(1_100);
    await driver.nudge('talker', 'hello');
    await eventually('the answer', async () =>
      (await driver.capture('talker')).includes('answer: hello'),
    );
    await eventually(
      'the activity to move',
      async () => ((await driver.status('talker')).lastActivityAt as number) > before,
    );
  });
});

describe('TmuxDriver: lifecycle', () => {
  it('reports an exit code and a signal, with the time of death', async () => {
    const driver = tmuxDriver();
    await driver.start({ name: 'seven', epoch: 1, command: ['sh', '-c', 'sleep 0.4; exit 7'] });
    await driver.start({
      name: 'killed',
      epoch: 1,
      command: [NODE, '-e', 'setTimeout(() => process.kill(process.pid, "SIGKILL"), 400)'],
    });
    const seven = await eventually('exit 7', async () => {
      const s = await driver.status('seven');
      return s.state === 'exited' ? s : undefined;
    });
    expect(seven).toMatchObject({ exitCode: 7, signal: null, epoch: 1 });
    expect(Math.abs((seven.exitedAt as number) - Date.now())).toBeLessThan(5_000);
    const killed = await eventually('the kill', async () => {
      const s = await driver.status('killed');
      return s.state === 'exited' ? s : undefined;
    });
    expect(killed).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
  });

  it('a crash right at start is a failed start, with what it printed', async () => {
    const driver = tmuxDriver();
    const error = await failure(
      driver.start({
        name: 'boom',
        epoch: 1,
        command: ['sh', '-c', 'echo "no config found"; exit 2'],
      }),
    );
    expect(error.code).toBe('START_FAILED');
    expect(error.message).toContain('exit code 2');
    expect(error.message).toContain('no config found');
    expect(await driver.status('boom')).toMatchObject({ state: 'exited', exitCode: 2 });
  });

  it('runs the command as argv: one word is a program, never a shell line', async () => {
    const driver = tmuxDriver();
    const dir = tmp();
    const witness = join(dir, 'pwned');
    const error = await failure(
      driver.start({ name: 'argv', epoch: 1, command: [`true; touch ${witness}`] }),
    );
    expect(error.code).toBe('START_FAILED');
    expect(existsSync(witness)).toBe(false);
    // A program whose path has a space runs as itself.
    const prog = join(dir, 'my agent');
    writeFileSync(prog, '#!/bin/sh\necho "agent up in $(pwd) with $GREETING"\nsleep 100\n', {
      mode: 0o755,
    });
    await driver.start({
      name: 'spaced',
      epoch: 1,
      command: [prog],
      cwd: dir,
      env: { GREETING: 'a b $c `d`' },
    });
    await eventually('its greeting', async () =>
      (await driver.capture('spaced')).includes(`agent up in ${dir} with a b $c \`d\``),
    );
  });

  it('refuses a cwd that is not a directory', async () => {
    const driver = tmuxDriver();
    const error = await failure(
      driver.start({ name: 'nowhere', epoch: 1, command: ['cat'], cwd: '/no/such/dir' }),
    );
    expect(error.code).toBe('INVALID_SPEC');
    expect(error.message).toContain('/no/such/dir');
  });

  it('after stop, a child that ignores SIGHUP and a grandchild started with setsid are gone (/proc)', async () => {
    const driver = tmuxDriver();
    const file = join(tmp(), 'pids');
    await driver.start({
      name: 'spawner',
      epoch: 1,
      command: [NODE, join(FIXTURES, 'spawner.mjs'), file],
    });
    const pids = await eventually('the pids', async () =>
      existsSync(file)
        ? (JSON.parse(readFileSync(file, 'utf8')) as { child: number; grandchild: number })
        : undefined,
    );
    const status = await driver.status('spawner');
    expect(alive(pids.child)).toBe(true);
    expect(alive(pids.grandchild)).toBe(true);
    // The grandchild left the tree: another session, re-parented away from the pane.
    expect(
      readFileSync(`/proc/${pids.grandchild}/stat`, 'utf8').split(') ')[1]?.split(' ')[1],
    ).not.toBe(String(status.pid));
    await driver.stop('spawner', { graceMs: 300 });
    expect(alive(status.pid as number)).toBe(false);
    expect(alive(pids.child)).toBe(false);
    expect(alive(pids.grandchild)).toBe(false);
    expect((await driver.status('spawner')).state).toBe('missing');
    await driver.stop('spawner'); // idempotent
  });

  it('a new epoch replacing a dead session first ends what the old one left running', async () => {
    const driver = tmuxDriver();
    const file = join(tmp(), 'bg');
    await driver.start({
      name: 'leaky',
      epoch: 1,
      command: ['sh', '-c', `(trap '' HUP; while :; do sleep 1; done) & echo $! > ${file}; wait`],
    });
    const loop = await eventually('the loop pid', async () =>
      existsSync(file) && readFileSync(file, 'utf8').trim()
        ? Number(readFileSync(file, 'utf8'))
        : undefined,
    );
    process.kill((await driver.status('leaky')).pid as number, 'SIGKILL');
    await eventually(
      'the pane to die',
      async () => (await driver.status('leaky')).state === 'exited',
    );
    expect(alive(loop)).toBe(true); // the shell died; its background loop did not
    await driver.start({ name: 'leaky', epoch: 2, command: ['cat'] });
    expect(alive(loop)).toBe(false);
    expect(await driver.status('leaky')).toMatchObject({ state: 'running', epoch: 2 });
  });

  it('rejects names with . or : (tmux would rewrite them) and creates nothing', async () => {
    const driver = tmuxDriver();
    await driver.start({ name: 'keeper', epoch: 1, command: ['cat'] });
    for (const name of ['api.toast', 'api:toast', 'a.b:c']) {
      expect((await failure(driver.start({ name, epoch: 1, command: ['cat'] }))).code).toBe(
        'INVALID_NAME',
      );
      expect((await failure(driver.nudge(name, 'x'))).code).toBe('INVALID_NAME');
    }
    expect((await raw(driver, 'list-sessions', '-F', '#{session_name}')).trim()).toBe('keeper');
  });

  it('a new driver on the socket (a restarted daemon) lists and re-attaches to running sessions', async () => {
    const first = tmuxDriver();
    await first.start({
      name: 'api-toast',
      epoch: 3,
      command: ['cat'],
      labels: { rig: 'api', agent: 'api/toast' },
    });
    await first.start({ name: 'web-nux', epoch: 5, command: ['sh', '-c', 'sleep 0.4; exit 1'] });
    const pid = (await first.status('api-toast')).pid;
    await eventually(
      'web-nux to exit',
      async () => (await first.status('web-nux')).state === 'exited',
    );

    const second = createTmuxDriver({ socket: first.socket });
    const listed = new Map((await second.list()).map((s) => [s.name, s]));
    expect(listed.get('api-toast')).toMatchObject({
      state: 'running',
      epoch: 3,
      pid,
      labels: { rig: 'api', agent: 'api/toast' },
    });
    expect(listed.get('web-nux')).toMatchObject({ state: 'exited', epoch: 5, exitCode: 1 });
    // Starting the same epoch again adopts the running session; another epoch is refused.
    expect(await second.start({ name: 'api-toast', epoch: 3, command: ['cat'] })).toMatchObject({
      pid,
    });
    expect(
      (await failure(second.start({ name: 'api-toast', epoch: 4, command: ['cat'] }))).code,
    ).toBe('EXISTS');
    await second.nudge('api-toast', 'still there?');
    await eventually(
      'the nudge',
      async () =>
        (await second.capture('api-toast')).filter((l) => l === 'still there?').length === 2,
    );
  });

  it('leaves a session it did not start alone', async () => {
    const driver = tmuxDriver();
    await driver.start({ name: 'mine', epoch: 1, command: ['cat'] });
    await raw(driver, 'new-session', '-d', '-s', 'theirs', '--', 'sleep', '100');
    expect((await driver.list()).map((s) => s.name)).toEqual(['mine']);
    expect((await driver.status('theirs')).state).toBe('missing');
    expect((await failure(driver.start({ name: 'theirs', epoch: 1, command: ['cat'] }))).code).toBe(
      'EXISTS',
    );
    await driver.stop('theirs');
    expect((await raw(driver, 'list-sessions', '-F', '#{session_name}')).split('\n')).toContain(
      'theirs',
    );
  });
});

describe('TmuxDriver: calls and options', () => {
  it('classifies tmux failures: no server, duplicate session, can’t find, command too long, timeout, no tmux', async () => {
    const socket = { name: `belfry-calls-${process.pid}` };
    const tmux = new Tmux('tmux', socket, 5_000);
    const kind = async (args: string[]) => {
      try {
        await tmux.run(args);
        return 'ok';
      } catch (error) {
        return (error as TmuxCallError).failure;
      }
    };
    try {
      expect(await kind(['list-sessions'])).toBe('no-server');
      expect(await kind(['new-session', '-d', '-s', 'one', '--', 'cat'])).toBe('ok');
      expect(await kind(['new-session', '-d', '-s', 'one', '--', 'cat'])).toBe('duplicate');
      expect(await kind(['kill-session', '-t', '=nope'])).toBe('not-found');
      expect(await kind(['send-keys', '-t', '=one:', '-l', '--', 'x'.repeat(20_000)])).toBe(
        'too-long',
      );
    } finally {
      await tmux.run(['kill-server']).catch(() => undefined);
    }
    const dir = tmp();
    const slow = join(dir, 'slow-tmux');
    writeFileSync(slow, '#!/bin/sh\nexec sleep 5\n', { mode: 0o755 });
    expect(
      await new Tmux(slow, socket, 100)
        .run(['list-sessions'])
        .catch((e: TmuxCallError) => e.failure),
    ).toBe('timeout');
    const missing = createTmuxDriver({ tmux: join(dir, 'no-tmux-here'), socket });
    const error = await failure(missing.list());
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toContain('not found');
  });

  it('a driver with no server yet lists nothing and reports missing', async () => {
    const driver = tmuxDriver();
    expect(await driver.list()).toEqual([]);
    expect((await driver.status('anyone')).state).toBe('missing');
    await driver.stop('anyone');
  });

  it.each([
    [{ socket: { name: 'a b' } }, /options\.socket\.name/],
    [{ socket: { path: 'relative/sock' } }, /options\.socket\.path/],
    [{ socket: { path: `/${'x'.repeat(120)}` } }, /at most 100 bytes/],
    [{ socket: { name: 'a', path: '/tmp/s' } }, /exactly one of name/],
    [{ width: 2 }, /options\.width/],
    [{ stopGraceMs: -1 }, /options\.stopGraceMs/],
    [{ nudgeRetries: 1.5 }, /options\.nudgeRetries/],
    [{ sokcet: { name: 'x' } }, /options\.sokcet/],
  ])('refuses bad options %j', (options, message) => {
    expect(() => createTmuxDriver(options as never)).toThrow(message);
  });
});
