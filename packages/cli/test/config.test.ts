import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_FILE, defaultConfigText, loadConfig, main } from '@belfry/cli';
import { ConfigError } from '@belfry/core';
import { DEFAULT_INHERITED_ENV } from '@belfry/driver-tmux';
import { SqliteStore } from '@belfry/store-sqlite';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runMain } from './folder';

const folder = () => mkdtempSync(join(tmpdir(), 'belfry-cli-'));

function configError(text: string): ConfigError {
  const dir = folder();
  const file = join(dir, CONFIG_FILE);
  writeFileSync(file, text);
  try {
    loadConfig(file);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain(file);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const base = defaultConfigText('town');

describe('the config', () => {
  it('what init writes loads, with paths resolved against its folder', () => {
    const dir = folder();
    writeFileSync(join(dir, CONFIG_FILE), base);
    const c = loadConfig(join(dir, CONFIG_FILE));
    expect(c).toMatchObject({
      home: dir,
      stateDir: join(dir, '.belfry'),
      store: { path: join(dir, '.belfry/town.db'), durability: 'full' },
      driver: {
        kind: 'tmux',
        stopGraceMs: 5_000,
        // Agents inherit the daemon's environment only by this list (issue 13, item 6).
        inheritEnv: [...DEFAULT_INHERITED_ENV],
      },
      gates: {
        timer: true,
        human: true,
        github: { tokenEnv: 'GITHUB_TOKEN', onFailure: 'escalate' },
      },
      rigs: ['main'],
      timings: { heartbeatMs: 60_000 },
    });
    // No socket named: the town's own tmux server in its state folder (issue 14 §3).
    expect(c.driver).not.toHaveProperty('socket');
    expect(base).toMatch(/^# belfry/);
    expect(base.split('\n').filter((l) => l.trim().startsWith('#')).length).toBeGreaterThan(10);
  });

  type Section = Record<string, unknown>;
  interface Raw {
    store: Section;
    driver: Section;
    gates: Section;
    agent: Section;
    timings: Section;
    [key: string]: unknown;
  }
  it.each<[string, (c: Raw) => void, RegExp]>([
    [
      'driver.kind',
      (c) => {
        c.driver.kind = 'docker';
      },
      /must be one of tmux, memory; got "docker"/,
    ],
    [
      'store.durability',
      (c) => {
        c.store.durability = 'fast';
      },
      /must be one of full, normal/,
    ],
    [
      'rigs.0',
      (c) => {
        c.rigs = ['Main'];
      },
      /must be a rig name/,
    ],
    [
      'agent.command',
      (c) => {
        c.agent.command = 'claude --resume';
      },
      /a list of strings .* not a shell string/,
    ],
    [
      'timings.heartbeatMs',
      (c) => {
        c.timings.heartbeatMs = -5;
      },
      /integer >= 1/,
    ],
    [
      'timings.heartbeat',
      (c) => {
        c.timings.heartbeat = 5;
      },
      /allowed: heartbeatMs/,
    ],
    [
      'colour',
      (c) => {
        c.colour = 'blue';
      },
      /allowed: store, driver/,
    ],
    [
      'driver.socket',
      (c) => {
        c.driver.socket = 'default';
      },
      /not 'default'/,
    ],
    [
      'driver.inheritEnv',
      (c) => {
        c.driver.inheritEnv = ['PATH', 'MY VAR'];
      },
      /must be variable names .*got "MY VAR"/,
    ],
    [
      'gates.github.onFailure',
      (c) => {
        (c.gates.github as Record<string, unknown>).onFailure = 'ignore';
      },
      /escalate, close/,
    ],
  ])('%s: a bad value is refused, naming the file, the line and the key', (key, spoil, what) => {
    const c = parse(base) as Raw;
    spoil(c);
    const error = configError(stringify(c));
    expect(error.path).toBe(key);
    expect(error.message).toMatch(what);
    expect(error.message).toMatch(
      new RegExp(`${CONFIG_FILE}:\\d+:\\d+: ${key.replaceAll('.', '\\.')}:`),
    );
  });

  it('a file that is not YAML, or misses the agent, says so with the line', () => {
    expect(configError('store: [unclosed\n').message).toMatch(/:\d+: not valid YAML/);
    expect(configError('rigs: [main]\n').message).toMatch(/agent: is missing/);
  });

  it('init writes the file once, and refuses to overwrite it without --force', async () => {
    const dir = folder();
    const out: string[] = [];
    const err: string[] = [];
    const run = (argv: string[]) =>
      main(argv, { cwd: dir, out: (t) => out.push(t), err: (t) => err.push(t), env: {} });
    expect(await run(['init', '--json'])).toBe(0);
    expect(readFileSync(join(dir, CONFIG_FILE), 'utf8')).toBe(defaultConfigText(dir));
    // The town is set up: its id is in its store, and init --force keeps it.
    const { townId } = JSON.parse(out.join('')) as { townId: string };
    expect(townId).toMatch(/^tw-[0-9a-f]{24}$/);
    const store = SqliteStore.open({ path: join(dir, '.belfry', 'town.db'), create: false });
    expect(await store.townId()).toBe(townId);
    await store.close();
    expect(await run(['init'])).toBe(1);
    expect(err.join('')).toContain('--force');
    out.length = 0;
    expect(await run(['init', '--force', '--json'])).toBe(0);
    expect((JSON.parse(out.join('')) as { townId: string }).townId).toBe(townId);
  });

  it('every command has --help; an unknown command or option is a usage error (2)', async () => {
    const dir = folder();
    for (const argv of [
      ['--help'],
      ['daemon', '--help'],
      ['daemon', 'status', '--help'],
      ['rig', 'park', '--help'],
      ['gate', 'approve', '--help'],
    ]) {
      const out: string[] = [];
      expect(await main(argv, { cwd: dir, out: (t) => out.push(t), err: () => {}, env: {} })).toBe(
        0,
      );
      expect(out.join('')).toMatch(/Usage: belfry/);
    }
    expect(await main(['frobnicate'], { cwd: dir, out: () => {}, err: () => {}, env: {} })).toBe(2);
    expect(
      await main(['daemon', 'status', '--bogus'], {
        cwd: dir,
        out: () => {},
        err: () => {},
        env: {},
      }),
    ).toBe(2);
    const err: string[] = [];
    expect(
      await main(['daemon', 'status'], {
        cwd: dir,
        out: () => {},
        err: (t) => err.push(t),
        env: {},
      }),
    ).toBe(2);
    expect(err.join('')).toContain('belfry init');
  });

  it('an unknown command with --help is a usage error (2) naming the commands, not the root help; --version prints the version', async () => {
    const dir = folder();
    for (const [argv, says] of [
      [['nosuch', '--help'], "unknown command 'nosuch' for belfry; commands: init, daemon"],
      [['rig', 'nosuch', '--help'], "unknown command 'nosuch' for belfry rig; commands: park"],
      [['-c', 'x.yaml', 'daemon', 'frob', '--help'], "unknown command 'frob' for belfry daemon"],
    ] as const) {
      const { code, out, err } = await runMain(dir, argv);
      expect(code).toBe(2);
      expect(out).toBe('');
      expect(err).toContain(says);
    }
    const out: string[] = [];
    expect(await main(['--version'], { cwd: dir, out: (t) => out.push(t), env: {} })).toBe(0);
    expect(out.join('')).toMatch(/^belfry \d+\.\d+\.\d+/);
  });

  it('daemon status exits 3 when no daemon runs (as systemctl is-active), still printing the state', async () => {
    const dir = folder();
    writeFileSync(
      join(dir, CONFIG_FILE),
      'driver: { kind: memory }\ngates: { github: false }\nrigs: [api]\nagent: { command: [cat] }\n',
    );
    const status = await runMain(dir, ['daemon', 'status', '--json']);
    expect(status.code).toBe(3);
    expect(JSON.parse(status.out).state).toBe('stopped');
  });
});
