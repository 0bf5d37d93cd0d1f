import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CONFIG_FILE, loadConfig } from '@belfry/cli';
import { afterEach, describe, expect, it } from 'vitest';
import {
  callDaemon,
  controlSocketProblem,
  DaemonFilesError,
  daemonPaths,
  ensureStateDir,
} from '../src/runtime';
import { belfry } from './bin';

const isRoot = process.getuid?.() === 0;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

/** A memory-driver town in `dir` (created). */
function town(dir = mkdtempSync(join(tmpdir(), 'belfry-sock-'))): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, CONFIG_FILE),
    'driver:\n  kind: memory\nrigs: [main]\nagent:\n  command: ["agent"]\ntimings:\n  heartbeatMs: 1000\n',
  );
  return dir;
}

function listen(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((s) => s.end('{"ok":true,"result":{"pid":1}}\n'));
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

describe('the control socket cannot be taken by another user', () => {
  it('a deep town listens in a private mkdtemp folder it records, never at a predictable path', async () => {
    const dir = town(join(mkdtempSync(join(tmpdir(), 'belfry-deep-')), 'd'.repeat(90)));
    const config = loadConfig(join(dir, CONFIG_FILE));
    // What the old code used: a name anyone could compute, and take first.
    const predictable = join(
      tmpdir(),
      `belfry-${createHash('sha256').update(config.stateDir).digest('hex').slice(0, 16)}.sock`,
    );
    const taken = await listen(predictable);
    cleanups.push(() => taken.close());
    if (isRoot) chownSync(predictable, 65534, 65534);

    const started = await belfry(dir, 'daemon', 'start', '--timeout', '45s');
    cleanups.push(() => belfry(dir, 'daemon', 'stop'));
    expect(started.err).toBe('');
    expect(started.code).toBe(0);
    const paths = daemonPaths(config);
    const recorded = readFileSync(paths.socketRecord, 'utf8').trim();
    expect(recorded).toBe(paths.socket);
    expect(recorded).not.toBe(predictable);
    expect(recorded).toMatch(/\/belfry-[A-Za-z0-9]{6}\/control\.sock$/);
    expect(statSync(dirname(recorded)).mode & 0o777).toBe(0o700);
    expect(controlSocketProblem(recorded)).toBeUndefined();

    const parked = await belfry(dir, 'rig', 'park', 'main');
    expect(parked.out).toContain('the daemon is carrying it out');
    expect(await belfry(dir, 'daemon', 'stop')).toMatchObject({ code: 0 });
    expect(existsSync(dirname(recorded))).toBe(false);
    expect(existsSync(paths.socketRecord)).toBe(false);
  }, 120_000);

  it('a socket open to others is not trusted: nothing is sent, the command fails with 1', async () => {
    const dir = town();
    const paths = daemonPaths(loadConfig(join(dir, CONFIG_FILE)));
    ensureStateDir(paths);
    const server = await listen(paths.socket);
    cleanups.push(() => server.close());
    chmodSync(paths.socket, 0o666);
    expect(controlSocketProblem(paths.socket)).toMatch(/mode 0666, open to other users/);
    await expect(callDaemon(paths.socket, 'POST', '/v1/wake')).rejects.toThrow(DaemonFilesError);
    const parked = await belfry(dir, 'rig', 'park', 'main');
    expect(parked.code).toBe(1);
    expect(parked.err).toMatch(/control socket .* open to other users; refusing to use it/);
  }, 60_000);

  it.runIf(isRoot)('a socket owned by another user is not trusted', async () => {
    const dir = town();
    const paths = daemonPaths(loadConfig(join(dir, CONFIG_FILE)));
    ensureStateDir(paths);
    const server = await listen(paths.socket);
    cleanups.push(() => server.close());
    chmodSync(paths.socket, 0o600);
    chownSync(paths.socket, 65534, 65534);
    expect(controlSocketProblem(paths.socket)).toMatch(/belongs to uid 65534/);
  });
});

describe('the state folder', () => {
  it('an existing 0777 .belfry of ours is tightened to 0700', () => {
    const dir = town();
    const paths = daemonPaths(loadConfig(join(dir, CONFIG_FILE)));
    mkdirSync(paths.dir);
    chmodSync(paths.dir, 0o777);
    ensureStateDir(paths);
    expect(statSync(paths.dir).mode & 0o777).toBe(0o700);
  });

  it('a .belfry that is a symbolic link is refused', () => {
    const dir = town();
    const paths = daemonPaths(loadConfig(join(dir, CONFIG_FILE)));
    symlinkSync(mkdtempSync(join(tmpdir(), 'belfry-elsewhere-')), paths.dir);
    expect(() => ensureStateDir(paths)).toThrow(/is not a folder \(a symbolic link\)/);
  });

  it.runIf(isRoot)('a .belfry owned by another user is refused, not used', () => {
    const dir = town();
    const paths = daemonPaths(loadConfig(join(dir, CONFIG_FILE)));
    mkdirSync(paths.dir, { mode: 0o700 });
    chownSync(paths.dir, 65534, 65534);
    expect(() => ensureStateDir(paths)).toThrow(DaemonFilesError);
    expect(() => ensureStateDir(paths)).toThrow(/belongs to uid 65534, not to you/);
  });

  it('a read-only state folder: daemon start fails with 1 and one clear line, no stack trace', async () => {
    const dir = town();
    const state = join(dir, '.belfry');
    mkdirSync(state, { mode: 0o700 });
    let expected: RegExp;
    if (isRoot) {
      // root writes through permissions: a read-only mount is what refuses it.
      execFileSync('mount', ['--bind', '-o', 'ro', state, state]);
      cleanups.push(() => execFileSync('umount', [state]));
      expected = /EROFS: a read-only file system/;
    } else {
      chmodSync(state, 0o500);
      cleanups.push(() => chmodSync(state, 0o700));
      expected = /EACCES/;
    }
    const r = await belfry(dir, 'daemon', 'start', '--timeout', '10s');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^belfry: the state folder ${state} is not writable`));
    expect(r.err).toMatch(expected);
    expect(r.err).toMatch(/move the town to a writable folder/);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  }, 60_000);
});

describe('a daemon that goes away mid-request', () => {
  it('a server process SIGKILLed while it handles the request: callDaemon says the daemon went away (DAEMON_GONE), not that none runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-gone-'));
    chmodSync(dir, 0o700);
    const socket = join(dir, 'control.sock');
    // A stand-in daemon in a process of its own: it takes the request, then never answers.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:http').createServer(() => process.stdout.write('got\\n'));
         const u = process.umask(0o177); s.listen(${JSON.stringify(socket)}, () => { process.umask(u); process.stdout.write('up\\n'); });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanups.push(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('got')) child.kill('SIGKILL');
    });
    for (let i = 0; i < 200 && !out.includes('up'); i++)
      await new Promise((r) => setTimeout(r, 10));
    const gone = await callDaemon(socket, 'POST', '/v1/sling', { bead: 'b', rig: 'r' }).catch(
      (e: unknown) => e,
    );
    expect(gone).toBeInstanceOf(DaemonFilesError);
    expect((gone as DaemonFilesError).code).toBe('DAEMON_GONE');
    expect((gone as Error).message).toContain(
      'the daemon went away while it handled POST /v1/sling',
    );
    expect((gone as Error).message).toContain('it may or may not have done it, never half of it');
  }, 30_000);
});
