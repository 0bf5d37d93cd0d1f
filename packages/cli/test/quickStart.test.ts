/**
 * The bin's quick start (issue 14, the bench's `belfry status --json` ≤ 1.5× `node -e 0`): the
 * config checked once per build and kept with its exact text, and `belfry status` answered
 * without the full CLI when the daemon runs. In-process with a real API server on a socket, and
 * from outside with the built bin and a real daemon.
 */
import { execFile } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError } from '@belfry/core/config';
import { createTestTown, type TestTown } from '@belfry/testing';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServer, startApi } from '../src/api/server';
import { CONFIG_CACHE_FILE, cachedConfig, readConfig } from '../src/configFile';
import { quickCommand } from '../src/quick';
import { eventually, FAST_MEMORY_TOWN } from './bin';
import { runMain } from './folder';

/** A town folder with a config (and its state folder unless `state` is false). */
function town(state = true): { dir: string; file: string; cache: string } {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-quick-'));
  const file = join(dir, 'belfry.yaml');
  writeFileSync(file, FAST_MEMORY_TOWN);
  if (state) mkdirSync(join(dir, '.belfry'), { mode: 0o700 });
  return { dir, file, cache: join(dir, '.belfry', CONFIG_CACHE_FILE) };
}

/** Rewrites the cached config (same text, same build), to see whether a read takes it. */
function tamper(cache: string, rigs: string[]): void {
  const kept = JSON.parse(readFileSync(cache, 'utf8')) as { config: { rigs: string[] } };
  kept.config.rigs = rigs;
  writeFileSync(cache, JSON.stringify(kept));
}

describe('the config cache', () => {
  it('keeps a checked config with its exact text, private, and gives it back only for the same text and build', async () => {
    const { file, cache } = town();
    expect((await readConfig(file, 'b1')).rigs).toEqual(['api']);
    expect(statSync(cache).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(cache, 'utf8'))).toMatchObject({
      build: 'b1',
      file,
      text: FAST_MEMORY_TOWN,
    });
    // Taken as kept while the text is the same…
    tamper(cache, ['kept']);
    expect((await readConfig(file, 'b1')).rigs).toEqual(['kept']);
    expect(cachedConfig(file, 'b1')?.rigs).toEqual(['kept']);
    // …never by another build, which checks the file again and keeps its own.
    expect(cachedConfig(file, 'b2')).toBeUndefined();
    expect((await readConfig(file, 'b2')).rigs).toEqual(['api']);
    expect(JSON.parse(readFileSync(cache, 'utf8')).build).toBe('b2');
    // One byte more in the file (a comment) is read and checked again.
    tamper(cache, ['kept']);
    appendFileSync(file, '#\n');
    expect(cachedConfig(file, 'b2')).toBeUndefined();
    expect((await readConfig(file, 'b2')).rigs).toEqual(['api']);
    expect(cachedConfig(file, 'b2')?.rigs).toEqual(['api']);
  });

  it('a corrupt or foreign cache is only a slower start; a bad config is refused as ever and never kept', async () => {
    const { file, cache } = town();
    writeFileSync(cache, '{"build": "b1", "te');
    expect((await readConfig(file, 'b1')).rigs).toEqual(['api']);
    expect(cachedConfig(file, 'b1')?.rigs).toEqual(['api']);
    writeFileSync(
      cache,
      JSON.stringify({
        build: 'b1',
        file: '/elsewhere/belfry.yaml',
        text: FAST_MEMORY_TOWN,
        config: { rigs: ['x'] },
      }),
    );
    expect(cachedConfig(file, 'b1')).toBeUndefined();

    writeFileSync(cache, JSON.stringify({ build: 'b1', file, text: FAST_MEMORY_TOWN, config: {} }));
    expect(cachedConfig(file, 'b1')).toBeUndefined();
    expect(
      await quickCommand(['status'], { cwd: dirname(file), env: {}, build: 'b1' }),
    ).toBeUndefined();

    writeFileSync(file, FAST_MEMORY_TOWN.replace('rigs: [api]', 'rigs: [Bad_Name]'));
    await expect(readConfig(file, 'b1')).rejects.toBeInstanceOf(ConfigError);
    await expect(readConfig(file, 'b1')).rejects.toThrow(/rigs/);
    expect(cachedConfig(file, 'b1')).toBeUndefined();
  });

  it('is taken only from a private folder and file of this user, never through a link: it decides what the daemon runs', async () => {
    const { dir, file, cache } = town();
    await readConfig(file, 'b1');
    expect(cachedConfig(file, 'b1')).toBeDefined();
    // Readable by others: someone else may have written it.
    chmodSync(cache, 0o644);
    expect(cachedConfig(file, 'b1')).toBeUndefined();
    chmodSync(cache, 0o600);
    chmodSync(join(dir, '.belfry'), 0o775);
    expect(cachedConfig(file, 'b1')).toBeUndefined();
    // …and none is written there either.
    rmSync(cache);
    await readConfig(file, 'b1');
    expect(existsSync(cache)).toBe(false);
    chmodSync(join(dir, '.belfry'), 0o700);
    // A link to a file that would otherwise do.
    const elsewhere = join(mkdtempSync(join(tmpdir(), 'belfry-link-')), 'c.json');
    await readConfig(file, 'b1');
    renameSync(cache, elsewhere);
    symlinkSync(elsewhere, cache);
    expect(cachedConfig(file, 'b1')).toBeUndefined();
  });

  it('makes no state folder to keep it in, and keeps nothing when run from source (no build)', async () => {
    const bare = town(false);
    expect((await readConfig(bare.file, 'b1')).rigs).toEqual(['api']);
    expect(existsSync(join(bare.dir, '.belfry'))).toBe(false);

    const source = town();
    expect((await readConfig(source.file, undefined)).rigs).toEqual(['api']);
    expect(existsSync(source.cache)).toBe(false);
  });
});

describe('belfry status, answered before the full CLI loads', () => {
  const open: Array<{ api: ApiServer; t: TestTown }> = [];
  afterEach(async () => {
    for (const { api, t } of open.splice(0)) {
      await api.close();
      await t.stop();
    }
  });

  /** A town folder whose control socket a real API server (a test town behind it) listens on. */
  async function served() {
    const folder = town();
    const t = await createTestTown({ rigs: ['api'] });
    const api = await startApi(join(folder.dir, '.belfry', 'control.sock'), {
      town: t.town,
      daemon: () => ({
        pid: process.pid,
        version: 'test',
        townId: 'tw-q',
        startedAt: 1,
        faults: [],
      }),
      stop: () => {},
    });
    open.push({ api, t });
    await t.town.sling((await t.model.beads.create({ title: 'x', rig: 'api' })).id, 'api');
    return { ...folder, api };
  }

  async function quick(dir: string, argv: string[], build = 'q1') {
    const out: string[] = [];
    const code = await quickCommand(argv, { cwd: dir, env: {}, out: (t) => out.push(t), build });
    return { code, out: out.join('') };
  }

  const withoutTime = (text: string) => ({ ...JSON.parse(text), asOf: 0 });

  it('prints exactly what the full command prints, as JSON and as text', async () => {
    const { dir, file } = await served();
    await readConfig(file, 'q1');
    const fast = await quick(dir, ['status', '--json']);
    const full = await runMain(dir, ['status', '--json']);
    expect(fast.code).toBe(0);
    expect(full.code).toBe(0);
    expect(withoutTime(fast.out)).toEqual(withoutTime(full.out));
    expect(JSON.parse(fast.out)).toMatchObject({ daemonRunning: true, live: true });
    expect(withoutTime((await quick(dir, ['--json', 'status'])).out)).toEqual(
      withoutTime(full.out),
    );

    const text = await quick(dir, ['status']);
    expect(text.code).toBe(0);
    expect(text.out).toBe((await runMain(dir, ['status'])).out);
    expect(text.out).toMatch(/^daemon: running/);
  });

  it('leaves every other command, option, a changed config and a daemon that does not answer to the full CLI', async () => {
    const { dir, file, api } = await served();
    await readConfig(file, 'q1');
    for (const argv of [
      ['status', '--watch'],
      ['status', '-c', file],
      ['status', '--json', '--json'],
      ['bead', 'list'],
      ['--version'],
      [],
    ])
      expect((await quick(dir, argv)).code, argv.join(' ')).toBeUndefined();
    expect((await quick(dir, ['status'], 'another build')).code).toBeUndefined();
    appendFileSync(file, '# changed\n');
    expect((await quick(dir, ['status'])).code).toBeUndefined();
    await readConfig(file, 'q1');
    expect((await quick(dir, ['status'])).code).toBe(0);
    await api.close();
    expect((await quick(dir, ['status'])).code).toBeUndefined();
    expect(
      (await quick(mkdtempSync(join(tmpdir(), 'belfry-none-')), ['status'])).code,
    ).toBeUndefined();
  });
});

describe('the built bin', () => {
  const BUILT = join(import.meta.dirname, '..', 'dist', 'bin', 'bin.js');
  const run = promisify(execFile);
  beforeAll(() => {
    if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run \`npm run build\` first`);
  });

  /** Runs the built bin in `dir`; what it printed, and the modules Node loaded for it. */
  async function built(dir: string, ...args: string[]) {
    const r = await run(process.execPath, [BUILT, ...args], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', NODE_DEBUG: 'esm' },
      timeout: 60_000,
    }).then(
      ({ stdout, stderr }) => ({ code: 0, out: stdout, err: stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({
        code: e.code,
        out: e.stdout,
        err: e.stderr,
      }),
    );
    const loaded = [...r.err.matchAll(/Storing (file:\S+)/g)].map((m) =>
      (m[1] as string).replace(/.*\//, ''),
    );
    return { ...r, fullCli: loaded.includes('main.js') };
  }

  it('answers status from one file while the config is unchanged, and reads a changed or broken one again', async () => {
    const { dir, file } = town(false);
    expect((await built(dir, 'daemon', 'start')).code).toBe(0);
    try {
      await eventually(
        'the daemon answering',
        async () => (await built(dir, 'status', '--json')).code === 0,
      );
      const first = await built(dir, 'status', '--json');
      expect(first.fullCli).toBe(false);
      expect(JSON.parse(first.out)).toMatchObject({ daemonRunning: true, live: true });
      expect((await built(dir, 'status')).fullCli).toBe(false);

      appendFileSync(file, '# an operator was here\n');
      const changed = await built(dir, 'status', '--json');
      expect(changed.fullCli).toBe(true);
      expect(changed.code).toBe(0);
      expect((await built(dir, 'status', '--json')).fullCli).toBe(false);

      writeFileSync(file, `${FAST_MEMORY_TOWN}logs: { level: loud }\n`);
      const broken = await built(dir, 'status');
      expect(broken.code).toBe(2);
      expect(broken.err).toContain('logs.level');
      writeFileSync(file, FAST_MEMORY_TOWN);
    } finally {
      await built(dir, 'daemon', 'stop');
    }
    const stopped = await built(dir, 'status', '--json');
    expect(stopped.code).toBe(4);
    expect(stopped.fullCli).toBe(true);
    expect(JSON.parse(stopped.out)).toMatchObject({ daemonRunning: false, live: false });
  });
});
