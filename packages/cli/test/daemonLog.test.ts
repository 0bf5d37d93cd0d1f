/**
 * The daemon's log (issue 14, §4): JSON lines through pino with levels, `--log-level` and
 * `logs.level`, secrets redacted, and `belfry daemon logs` printing them readable (or, with
 * `--json`, as they are). The daemon runs as a real process of the `belfry` command.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_FILE, loadConfig } from '@belfry/cli';
import { ConfigError, type TownEvent } from '@belfry/core';
import { createTmuxDriver } from '@belfry/driver-tmux';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonLogger, eventLevel, REDACTED } from '../src/DaemonLogger';
import { formatLogLine } from '../src/logFormat';
import { BIN, belfry, eventually, FAST_MEMORY_TOWN, NODE_ARGS, runBelfry } from './bin';

const dirs: string[] = [];
const tmuxSockets: string[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) await belfry(dir, 'daemon', 'stop', '--timeout', '10000');
  for (const name of tmuxSockets.splice(0))
    await createTmuxDriver({ socket: { name } }).killServer();
});

/** A town folder with `config` as its belfry.yaml. */
function town(config = FAST_MEMORY_TOWN): string {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-log-'));
  writeFileSync(join(dir, CONFIG_FILE), config);
  dirs.push(dir);
  return dir;
}

const logOf = (dir: string) => readFileSync(join(dir, '.belfry', 'daemon.log'), 'utf8');
/** The log's entries (its JSON lines). */
const entries = (dir: string) =>
  logOf(dir)
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** A logger writing into an array, for the unit tests. */
function memoryLogger(options: { level?: 'trace' | 'debug' | 'info'; secrets?: string[] } = {}) {
  const lines: string[] = [];
  const log = new DaemonLogger({ ...options, write: (line) => lines.push(line) });
  return { log, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const at = 1_700_000_000_000;

describe('the daemon logger', () => {
  it('writes one JSON object per line with level, time, msg and the event’s fields', () => {
    const { log, lines, parsed } = memoryLogger();
    log.event({
      type: 'lifecycle.done',
      requestId: 'lc-1',
      action: 'park',
      target: 'api',
      at,
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith('}\n')).toBe(true);
    expect(parsed()[0]).toMatchObject({
      level: 'info',
      event: 'lifecycle.done',
      requestId: 'lc-1',
      action: 'park',
      target: 'api',
      msg: 'lifecycle.done requestId=lc-1 action=park target=api',
    });
    expect(typeof parsed()[0]?.time).toBe('string');
  });

  it('routine events are debug (absent at info), failures warn or error, an error as its message', () => {
    const heartbeat: TownEvent = { type: 'heartbeat', count: 1, at };
    const info = memoryLogger({ level: 'info' });
    info.log.event(heartbeat);
    info.log.event({ type: 'patrol.started', moleculeId: 'm', resumedAt: 0, at });
    expect(info.lines).toEqual([]);
    const debug = memoryLogger({ level: 'debug' });
    debug.log.event(heartbeat);
    expect(debug.parsed()[0]).toMatchObject({ level: 'debug', event: 'heartbeat', count: 1 });

    expect(eventLevel({ type: 'patrol.step', moleculeId: 'm', step: 's', result: {}, at })).toBe(
      'trace',
    );
    expect(
      eventLevel({ type: 'polecat.escalated', agent: 'a', rig: 'r', beadId: 'b', respawns: 3, at }),
    ).toBe('error');
    expect(
      eventLevel({ type: 'gate.escalated', gateId: 'g', gateType: 'timer', reason: 'x', at }),
    ).toBe('warn');
    const failed = memoryLogger();
    failed.log.event({
      type: 'poller.failed',
      poller: 'github',
      error: new Error('ECONNRESET'),
      at,
    });
    expect(failed.parsed()[0]).toMatchObject({ level: 'error', error: 'ECONNRESET' });
  });

  it('redacts secret fields at any depth and known secret values inside strings, changing nothing of the caller’s', () => {
    const secret = 'ghp_abcdefghijklmnopqrstuvwxyz0123';
    const { log, lines } = memoryLogger({ secrets: [secret] });
    log.addSecret('api-token-value-1234567890');
    const fields = {
      token: 'plain-token',
      githubToken: 'another',
      nested: { authorization: 'Bearer xyz', deeper: { password: 'hunter2' } },
      url: `https://example.com/?access_token=${secret}`,
      lines: [`echo api-token-value-1234567890`],
      tokenFile: '/srv/town/.belfry/api.token',
    };
    log.warn(`the token ${secret} leaked`, fields);
    const text = lines.join('');
    for (const value of [
      secret,
      'api-token-value-1234567890',
      'plain-token',
      'another',
      'Bearer xyz',
      'hunter2',
    ])
      expect(text).not.toContain(value);
    const entry = JSON.parse(text) as Record<string, unknown>;
    expect(entry).toMatchObject({
      msg: `the token ${REDACTED} leaked`,
      token: REDACTED,
      githubToken: REDACTED,
      nested: { authorization: REDACTED, deeper: { password: REDACTED } },
      url: `https://example.com/?access_token=${REDACTED}`,
      lines: [`echo ${REDACTED}`],
      // A path, not a secret.
      tokenFile: '/srv/town/.belfry/api.token',
    });
    expect(fields.nested.authorization).toBe('Bearer xyz');
  });
});

describe('formatLogLine', () => {
  it('prints <time> <LEVEL> <msg> and only the fields the message does not say', () => {
    const line = JSON.stringify({
      level: 'warn',
      time: '2026-05-01T10:00:00.000Z',
      pid: 7,
      hostname: 'h',
      event: 'polecat.exited',
      agent: 'api/nux',
      exitCode: 3,
      lastOutput: ['boom'],
      error: 'no such file',
      msg: 'polecat.exited agent=api/nux exitCode=3',
    });
    expect(formatLogLine(line)).toBe(
      '2026-05-01T10:00:00.000Z WARN  polecat.exited agent=api/nux exitCode=3 lastOutput=["boom"] error="no such file"',
    );
  });

  it('reads pino’s numeric levels and epoch times; colours only through the painter', () => {
    const line = JSON.stringify({ level: 50, time: 0, msg: 'x' });
    expect(formatLogLine(line)).toBe('1970-01-01T00:00:00.000Z ERROR x');
    expect(formatLogLine(line, (code, text) => `<${code}>${text}</>`)).toBe(
      '<2>1970-01-01T00:00:00.000Z</> <31>ERROR</> x',
    );
  });

  it('returns a line that is not a JSON entry unchanged', () => {
    for (const line of [
      '2025-01-01T00:00:00.000Z started: pid 1',
      '{not json',
      '42',
      '{"msg":"no level"}',
    ])
      expect(formatLogLine(line)).toBe(line);
  });
});

describe('logs.level in belfry.yaml', () => {
  it('is info by default; a level not among the allowed is refused, listing them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-log-cfg-'));
    const file = join(dir, CONFIG_FILE);
    writeFileSync(file, FAST_MEMORY_TOWN);
    expect(loadConfig(file).logs.level).toBe('info');
    writeFileSync(file, `${FAST_MEMORY_TOWN}logs: { level: debug }\n`);
    expect(loadConfig(file).logs.level).toBe('debug');
    writeFileSync(file, `${FAST_MEMORY_TOWN}logs: { level: verbose }\n`);
    expect(() => loadConfig(file)).toThrow(ConfigError);
    expect(() => loadConfig(file)).toThrow(
      /logs\.level: must be one of trace, debug, info, warn, error; got "verbose"/,
    );
  });
});

describe('the daemon log of a real daemon', () => {
  it('at info (the default) leaves heartbeats out; --log-level debug and logs.level: debug put them in', async () => {
    const dir = town();
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    await eventually('started', () => logOf(dir).includes('started: pid'));
    await eventually('a few heartbeats', async () =>
      (await belfry(dir, 'daemon', 'status', '--json')).out.match(/"heartbeatCount": ([3-9]|\d\d)/),
    );
    expect((await belfry(dir, 'daemon', 'stop')).code).toBe(0);
    expect(entries(dir).some((e) => e.event === 'heartbeat')).toBe(false);
    expect(entries(dir).every((e) => e.level === 'info')).toBe(true);

    expect((await belfry(dir, 'daemon', 'start', '--log-level', 'debug')).code).toBe(0);
    await eventually('a heartbeat at debug', () =>
      entries(dir).some((e) => e.event === 'heartbeat' && e.level === 'debug'),
    );
    expect((await belfry(dir, 'daemon', 'stop')).code).toBe(0);

    const other = town(`${FAST_MEMORY_TOWN}logs: { level: debug }\n`);
    expect((await belfry(other, 'daemon', 'start')).code).toBe(0);
    await eventually('a heartbeat at debug', () =>
      entries(other).some((e) => e.event === 'heartbeat' && e.level === 'debug'),
    );
  }, 90_000);

  it('--log-level with a level that is not one is a usage error listing the levels', async () => {
    const dir = town();
    for (const command of ['run', 'start']) {
      const refused = await belfry(dir, 'daemon', command, '--log-level', 'loud');
      expect(refused.code).toBe(2);
      expect(refused.err).toContain("option '--log-level <level>' argument 'loud' is invalid");
      expect(refused.err).toContain('trace, debug, info, warn, error');
    }
  }, 60_000);

  it('daemon logs prints entries readable, with --json as they are, and an older plain line unchanged', async () => {
    const dir = town();
    mkdirSync(join(dir, '.belfry'), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, '.belfry', 'daemon.log'), '2025-01-01T00:00:00.000Z an older line\n', {
      mode: 0o600,
    });
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    expect((await belfry(dir, 'daemon', 'stop')).code).toBe(0);
    const raw = logOf(dir).trimEnd().split('\n');
    const readable = await belfry(dir, 'daemon', 'logs', '-n', '100');
    expect(readable.code).toBe(0);
    const lines = readable.out.trimEnd().split('\n');
    expect(lines).toHaveLength(raw.length);
    expect(lines[0]).toBe('2025-01-01T00:00:00.000Z an older line');
    expect(lines).toContainEqual(expect.stringMatching(/^\S+Z INFO {2}witness\.started rig=api$/));
    expect(lines.at(-1)).toMatch(/^\d{4}-\d\d-\d\dT\S+Z INFO {2}stopped$/);
    const json = await belfry(dir, 'daemon', 'logs', '-n', '100', '--json');
    expect(json.out.trimEnd().split('\n')).toEqual(raw);
    expect(JSON.parse(raw.at(-1) as string)).toMatchObject({ level: 'info', msg: 'stopped' });
  }, 60_000);

  it('daemon logs -f prints each entry readable once its line is whole', async () => {
    const dir = town();
    const log = join(dir, '.belfry', 'daemon.log');
    mkdirSync(join(dir, '.belfry'), { recursive: true, mode: 0o700 });
    writeFileSync(log, 'plain\n');
    const child = spawn(process.execPath, [...NODE_ARGS, BIN, 'daemon', 'logs', '-f'], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1' },
    });
    children.push(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => {
      out += t;
    });
    await eventually('the last line', () => out === 'plain\n');
    const entry = JSON.stringify({ level: 'warn', time: '2026-01-01T00:00:00.000Z', msg: 'hot' });
    appendFileSync(log, entry.slice(0, 20));
    await new Promise((r) => setTimeout(r, 600));
    expect(out).toBe('plain\n');
    appendFileSync(log, `${entry.slice(20)}\n`);
    await eventually('the whole entry, readable', () =>
      out.endsWith('2026-01-01T00:00:00.000Z WARN  hot\n'),
    );
  }, 30_000);

  it('a token in the daemon’s environment never reaches daemon.log, even when an agent prints it', async () => {
    const secret = `ghp_${'s3cr3t'.repeat(6)}`;
    const socket = `belfry-log-test-${process.pid}`;
    tmuxSockets.push(socket);
    const dir = town(`driver:
  kind: tmux
  socket: ${socket}
  stopGraceMs: 500
  inheritEnv: [PATH, HOME, GITHUB_TOKEN]
gates: { github: { tokenEnv: GITHUB_TOKEN } }
rigs: [api]
agent:
  command: ["sh", "-c", "echo \\"my token is $GITHUB_TOKEN\\"; sleep 1; exit 3"]
timings: { heartbeatMs: 200, patrolIntervalMs: 400, surveyMs: 200 }
`);
    const env = { ...process.env, NO_COLOR: '1', GITHUB_TOKEN: secret };
    const run = (...args: string[]) => runBelfry(dir, args, { env });
    expect((await run('daemon', 'start', '--log-level', 'trace')).code).toBe(0);
    const bead = JSON.parse(
      (await run('bead', 'create', 'leak?', '--rig', 'api', '--json')).out,
    ) as {
      id: string;
    };
    expect((await run('sling', bead.id, 'api')).code).toBe(0);
    const exited = await eventually(
      'the agent’s exit, with its output',
      () =>
        entries(dir).find(
          (e) =>
            e.event === 'polecat.exited' &&
            JSON.stringify(e.lastOutput ?? []).includes('my token is'),
        ),
      30_000,
    );
    expect(exited.level).toBe('warn');
    expect(JSON.stringify(exited.lastOutput)).toContain(`my token is ${REDACTED}`);
    expect((await run('daemon', 'stop')).code).toBe(0);
    expect(logOf(dir)).not.toContain(secret);
    expect((await run('daemon', 'logs', '-n', '1000')).out).not.toContain(secret);
  }, 90_000);
});
