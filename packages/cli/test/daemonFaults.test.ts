/**
 * Faults of the daemon's own files and of its start, each with real processes (issue 13, items
 * 3, 7, 9 and 18).
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CONFIG_FILE } from '@belfry/cli';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, BIN, belfry, daemonState, eventually, FAST_MEMORY_TOWN, NODE_ARGS } from './bin';

const run = promisify(execFile);
const towns: string[] = [];

/** A memory-driver town with fast heartbeats. */
function town(): string {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-faults-'));
  writeFileSync(join(dir, CONFIG_FILE), FAST_MEMORY_TOWN);
  towns.push(dir);
  return dir;
}

afterEach(async () => {
  for (const dir of towns.splice(0)) {
    const pid = daemonState(dir)?.pid;
    await belfry(dir, 'daemon', 'stop', '--timeout', '10000');
    if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
  }
});

const beads = (dir: string) => belfry(dir, '--json', 'daemon', 'status');

describe('daemon start, three at once (item 9)', () => {
  it('one daemon runs; its starter prints its pid and exits 0; the others exit 3 naming it; three rounds', async () => {
    const dir = town();
    for (let round = 0; round < 3; round++) {
      const starts = await Promise.all([0, 1, 2].map(() => belfry(dir, 'daemon', 'start')));
      const pid = daemonState(dir)?.pid as number;
      expect(alive(pid)).toBe(true);
      const winners = starts.filter((s) => s.code === 0);
      expect(winners).toHaveLength(1);
      expect(winners[0]?.out.trim()).toBe(`daemon started (pid ${pid})`);
      for (const loser of starts.filter((s) => s.code !== 0)) {
        expect(loser.code).toBe(3);
        expect(loser.err).toContain(`a daemon already runs for ${dir} (pid ${pid})`);
      }
      expect((await belfry(dir, 'daemon', 'stop')).code).toBe(0);
      await eventually('the daemon to exit', () => !alive(pid));
    }
  }, 120_000);

  it('asking whether a daemon runs never makes a start (or another asker) see a lock nobody holds', async () => {
    const dir = town();
    const asks = Array.from({ length: 6 }, () => beads(dir));
    const start = belfry(dir, 'daemon', 'start');
    const answers = await Promise.all(asks);
    for (const a of answers) expect(['stopped', 'running']).toContain(JSON.parse(a.out).state);
    expect((await start).code).toBe(0);
  }, 60_000);
});

describe('the store file’s identity (item 7)', () => {
  it('rm of the store under a running daemon: commands refuse to make a new one, the daemon stops saying why, a start is refused until the store is back, and nothing was lost', async () => {
    const dir = town();
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const first = (await belfry(dir, 'bead', 'create', 'kept', '--rig', 'api')).out.trim();
    await belfry(dir, 'daemon', 'stop');
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const pid = daemonState(dir)?.pid as number;
    const state = join(dir, '.belfry');
    const backup = mkdtempSync(join(tmpdir(), 'belfry-backup-'));
    for (const name of readdirSync(state).filter((n) => n.startsWith('town.db')))
      renameSync(join(state, name), join(backup, name));

    const refused = await belfry(dir, 'bead', 'create', 'lost?', '--rig', 'api');
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(`the store ${join(state, 'town.db')} is missing`);
    expect(refused.err).toContain('belfry never makes a new, empty store for a town that has one');
    expect(existsSync(join(state, 'town.db'))).toBe(false);

    await eventually('the daemon to stop itself', () => !alive(pid));
    expect(readFileSync(join(state, 'daemon.log'), 'utf8')).toMatch(
      /stopping: .*town\.db was removed while it was open/,
    );
    const restart = await belfry(dir, 'daemon', 'start');
    expect(restart.code).toBe(1);
    expect(restart.err).toContain('is missing');
    expect(restart.err).not.toContain('was removed while it was open'); // not the last run's words

    for (const name of readdirSync(backup)) renameSync(join(backup, name), join(state, name));
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const list = await run(
      process.execPath,
      [...NODE_ARGS, BIN, 'bead', 'create', 'after', '--rig', 'api'],
      { cwd: dir },
    );
    expect(list.stdout.trim()).toMatch(/^bd-/);
    expect(first).toMatch(/^bd-/);
  }, 120_000);

  it('another town’s store put in place is refused; so is an empty file, even in a town that never ran', async () => {
    const dir = town();
    const other = town();
    expect((await belfry(dir, 'bead', 'create', 'mine', '--rig', 'api')).code).toBe(0);
    expect((await belfry(other, 'bead', 'create', 'theirs', '--rig', 'api')).code).toBe(0);
    renameSync(join(other, '.belfry', 'town.db'), join(dir, '.belfry', 'town.db'));
    const swapped = await belfry(dir, 'bead', 'create', 'x', '--rig', 'api');
    expect(swapped.code).toBe(1);
    expect(swapped.err).toMatch(/is another store \(st-[0-9a-f]+\), not this town's/);
    const started = await belfry(dir, 'daemon', 'start');
    expect(started.code).toBe(1);

    const fresh = town();
    mkdirSync(join(fresh, '.belfry'), { mode: 0o700 });
    writeFileSync(join(fresh, '.belfry', 'town.db'), '');
    const empty = await belfry(fresh, 'daemon', 'start');
    expect(empty.code).toBe(1);
    expect(empty.err).toContain('is an empty file');
    expect(readFileSync(join(fresh, '.belfry', 'town.db'))).toHaveLength(0);
  }, 120_000);
});

describe('what a stopped daemon leaves, and a config broken under a running one', () => {
  it('status after the daemon stopped says so, with the time of its tree, and exits 4; a running one exits 0', async () => {
    const dir = town();
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    await eventually('heartbeats', () => (daemonState(dir)?.heartbeatCount ?? 0) >= 3);
    const live = await belfry(dir, '--json', 'status');
    expect(live.code).toBe(0);
    expect(JSON.parse(live.out)).toMatchObject({ daemonRunning: true, stale: false });
    await belfry(dir, 'daemon', 'stop');
    const text = await belfry(dir, 'status');
    expect(text.code).toBe(4);
    expect(text.out).toMatch(
      /^daemon stopped; the tree as of \d{4}-\d\d-\d\dT[\d:.]+Z, when it last beat:/,
    );
    const json = await belfry(dir, '--json', 'status');
    expect(json.code).toBe(4);
    expect(JSON.parse(json.out)).toMatchObject({
      daemonRunning: false,
      asOf: expect.any(Number),
      daemon: { running: false },
    });
    // Every state of the old tree says it was.
    expect(text.out).toMatch(/^deacon: was running/m);
    const daemonStatus = await belfry(dir, 'daemon', 'status');
    expect(daemonStatus.code).toBe(3);
    expect(daemonStatus.out).toMatch(/^stopped \(last run: pid \d+/);
  }, 60_000);

  it('a config broken while the daemon runs: the refusal says a daemon still runs, with its pid and how to stop it', async () => {
    const dir = town();
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const pid = daemonState(dir)?.pid as number;
    const config = join(dir, CONFIG_FILE);
    const good = readFileSync(config, 'utf8');
    writeFileSync(config, `${good}bogus: [\n`);
    const stop = await belfry(dir, 'daemon', 'stop');
    expect(stop.code).toBe(2);
    expect(stop.err).toContain(`a daemon still runs for this town (pid ${pid})`);
    expect(stop.err).toContain(`kill -TERM ${pid}`);
    writeFileSync(config, good);
    expect((await belfry(dir, 'daemon', 'stop')).code).toBe(0);
  }, 60_000);
});

describe('commands through the running daemon, and without one', () => {
  it('the same refusals and answers either way: an unknown rig, bead list and show; what needs the town says no daemon runs', async () => {
    const dir = town();
    const run = async () => {
      const park = await belfry(dir, 'rig', 'park', 'nosuch');
      expect(park.code).toBe(1);
      expect(park.err).toContain('unknown rig "nosuch"; known: api');
      const created = await belfry(dir, 'bead', 'create', 'a job', '--rig', 'api', '--json');
      const id = (JSON.parse(created.out) as { id: string }).id;
      const listed = await belfry(dir, 'bead', 'list', '--rig', 'api', '--json');
      expect((JSON.parse(listed.out) as Array<{ id: string }>).map((b) => b.id)).toContain(id);
      const shown = await belfry(dir, 'bead', 'show', id);
      expect(shown.out).toContain(`${id} open: a job`);
      expect((await belfry(dir, 'bead', 'show', 'bd-nosuch')).code).toBe(1);
      const convoy = JSON.parse(
        (await belfry(dir, '--json', 'convoy', 'create', 'release', id)).out,
      ) as { id: string };
      const status = await belfry(dir, 'convoy', 'status', convoy.id);
      expect(status.out).toContain(`${convoy.id} open: release; 1 of 1 beads open`);
      expect((await belfry(dir, 'bead', 'list')).code).toBe(2);
      // A value the town refuses is bad usage (2) either way, naming the field once.
      const badSpec = await belfry(dir, 'gate', 'create', 'timer', '--spec', '{"durationMs": -5}');
      expect(badSpec.code).toBe(2);
      expect(badSpec.err.split('spec.durationMs').length - 1).toBe(1);
      const badRelease = await belfry(
        dir,
        'warrant',
        'file',
        'api/x',
        '--reason',
        'r',
        '--release',
        'maybe',
      );
      expect(badRelease.code).toBe(2);
      expect(badRelease.err).toMatch(/open.*blocked/);
    };
    await run();
    for (const args of [
      ['nudge', 'api/x', 'hi'],
      ['agent', 'logs', 'api/x'],
      ['events'],
      ['done', 'bd-1', '--agent', 'api/x'],
    ]) {
      const answer = await belfry(dir, ...args);
      expect(answer.code).toBe(4);
      expect(answer.err).toContain('no daemon runs');
    }
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    await run();
    const park = await belfry(dir, '--json', 'rig', 'park', 'api');
    expect(JSON.parse(park.out)).toMatchObject({ daemon: 'woken', request: { action: 'park' } });
  }, 90_000);
});

describe('a daemon that cannot take its socket (item 18)', () => {
  it('starts no town, says why, releases its lock; a killed writer’s state.json.<pid>.tmp is removed by the next daemon', async () => {
    const dir = town();
    const state = join(dir, '.belfry');
    mkdirSync(join(state, 'control.sock', 'occupied'), { recursive: true, mode: 0o700 });
    const started = await belfry(dir, 'daemon', 'start');
    expect(started.code).toBe(1);
    expect(started.err).toContain(
      `cannot listen on the control socket ${join(state, 'control.sock')}`,
    );
    const log = readFileSync(join(state, 'daemon.log'), 'utf8');
    expect(log).toContain('could not start: cannot listen on the control socket');
    expect(log).not.toMatch(/witness\.started|deacon|patrol/);
    expect(JSON.parse((await belfry(dir, 'daemon', 'status', '--json')).out).state).toBe('stopped');

    execFileSync('rm', ['-r', join(state, 'control.sock')]);
    writeFileSync(join(state, 'state.json.99999999.tmp'), '{"pid": 1');
    writeFileSync(join(state, 'status.json.99999999.tmp'), '');
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    // The killed writer's files are gone (the running daemon's own, mid-write, may come and go).
    expect(readdirSync(state).filter((n) => n.includes('.99999999.'))).toEqual([]);
  }, 60_000);
});

/** Root, or a user namespace where this process may mount: how the full disk is made. */
function mountPrefix(): string[] | undefined {
  if (process.getuid?.() === 0) return [];
  try {
    execFileSync('unshare', ['-rm', 'true'], { stdio: 'ignore' });
    return ['unshare', '-rm'];
  } catch {
    return undefined;
  }
}

describe('a full disk under a backgrounded daemon (item 3)', () => {
  it('it keeps running, says which files it cannot write and since when, and writes them again once there is room', async () => {
    const prefix = mountPrefix();
    if (prefix === undefined)
      throw new Error(
        'this test makes a small file system (tmpfs): it needs root or `unshare -rm` (user namespaces)',
      );
    const dir = mkdtempSync(join(tmpdir(), 'belfry-full-'));
    const script = join(import.meta.dirname, 'faults', 'fullDisk.ts');
    const argv = [...prefix, process.execPath, ...NODE_ARGS, script, dir];
    const { stdout } = await run(argv[0] as string, argv.slice(1), { timeout: 90_000 });
    const seen = JSON.parse(stdout.trim().split('\n').at(-1) as string) as {
      start: { code: number };
      filled: number;
      full: { state: string; faults: Array<{ file: string; error: string }> };
      later: { faults: Array<{ file: string; failures: number }> };
      aliveWhileFull: boolean;
      recovered: { state: string; faults: unknown[] };
      stop: { code: number };
      log: string;
      leftovers: string;
    };
    expect(seen.start.code).toBe(0);
    expect(seen.filled).toBeGreaterThan(1_000_000);
    expect(seen.full.faults.find((f) => f.file === 'state.json')?.error).toContain('ENOSPC');
    expect(seen.aliveWhileFull).toBe(true);
    expect(seen.recovered).toMatchObject({ state: 'running', faults: [] });
    expect(seen.stop.code).toBe(0);
    expect(seen.log).toMatch(/cannot write state\.json: ENOSPC/);
    expect(seen.log).toMatch(/state\.json is written again \(it failed \d+ times/);
    expect(seen.leftovers).not.toMatch(/\.tmp/);
  }, 120_000);
});

describe('the daemon SIGKILLed mid-request', () => {
  /** Connections made to the daemon's control socket, accepted or still queued (/proc/net/unix). */
  const accepted = (socket: string) =>
    readFileSync('/proc/net/unix', 'utf8')
      .split('\n')
      .filter((line) => {
        const f = line.trim().split(/\s+/);
        return f[7] === socket && f[5] !== '01';
      }).length;

  it('commands waiting on it say it went away (exit 1, whole or not at all); every bead it acknowledged is stored whole, none twice; it starts again on the same store', async () => {
    const dir = town();
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const socket = join(dir, '.belfry', 'control.sock');
    const pid = daemonState(dir)?.pid as number;
    // A storm of creates on four connections keeps requests inside the daemon at every moment.
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const acknowledged: Array<{ title: string; id: string }> = [];
    let sent = 0;
    let frozen = false;
    const create = (title: string) =>
      new Promise<void>((resolve) => {
        const req = httpRequest(
          {
            socketPath: socket,
            method: 'POST',
            path: '/v1/beads',
            agent,
            headers: { 'content-type': 'application/json' },
          },
          (res) => {
            let text = '';
            res.on('data', (c) => {
              text += c;
            });
            res.on('end', () => {
              if (res.statusCode === 201)
                acknowledged.push({ title, id: (JSON.parse(text) as { id: string }).id });
              resolve();
            });
            res.on('error', () => resolve());
          },
        );
        req.on('error', () => resolve());
        req.end(JSON.stringify({ title, rig: 'api' }));
      });
    const lanes = Array.from({ length: 4 }, async () => {
      while (!frozen) await create(`storm-${sent++}`);
    });
    await eventually('200 creates acknowledged', () => acknowledged.length >= 200, 30_000);
    // Frozen mid-storm (SIGSTOP): the commands connect and send, and wait; then it is killed.
    process.kill(pid, 'SIGSTOP');
    frozen = true;
    const commands = Array.from({ length: 6 }, (_, i) =>
      belfry(dir, '--json', 'bead', 'create', `cli-${i}`, '--rig', 'api'),
    );
    await eventually('the commands waiting on the daemon', () => accepted(socket) >= 4 + 6, 30_000);
    process.kill(pid, 'SIGKILL');
    const results = await Promise.all(commands);
    await Promise.all(lanes);
    agent.destroy();
    console.log(
      `killed with ${acknowledged.length} of ${sent} storm creates acknowledged; commands exited ${results.map((r) => r.code).join(' ')}`,
    );
    const gone = results.filter((r) => r.code !== 0);
    expect(gone).toHaveLength(6);
    for (const r of gone) {
      expect(r.code).toBe(1);
      expect(r.err).toContain('went away');
      expect(r.err).toContain('never half of it');
    }
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const stored = JSON.parse(
      (await belfry(dir, '--json', 'bead', 'list', '--rig', 'api')).out,
    ) as Array<{ id: string; title: string; status: string }>;
    const byTitle = new Map<string, number>();
    for (const b of stored) byTitle.set(b.title, (byTitle.get(b.title) ?? 0) + 1);
    expect([...byTitle.values()].every((n) => n === 1)).toBe(true);
    const ids = new Set(stored.map((b) => b.id));
    for (const a of acknowledged) expect(ids.has(a.id)).toBe(true);
    for (const r of results.filter((x) => x.code === 0))
      expect(ids.has((JSON.parse(r.out) as { id: string }).id)).toBe(true);
    for (const b of stored) expect(b).toMatchObject({ status: 'open', title: expect.any(String) });
  }, 120_000);
});
