import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DriverError } from '@belfry/core/driver';
import type { TmuxDriver } from '@belfry/driver-tmux';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, killAll, NODE, tmuxDriver } from './helpers';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const run = promisify(execFile);

afterEach(() => killAll());

async function rawReader(driver: TmuxDriver, name: string): Promise<string> {
  const file = join(mkdtempSync(join(tmpdir(), 'belfry-nudge-')), 'input');
  await driver.start({ name, epoch: 1, command: [NODE, join(FIXTURES, 'raw-reader.mjs'), file] });
  await eventually('the reader to be ready', async () =>
    (await driver.capture(name)).some((l) => l.includes('ready')),
  );
  return file;
}

/** A program that reads its terminal in canonical mode, line by line, and prints each line's length. */
const LINE_READER = [
  NODE,
  '-e',
  "require('readline').createInterface({ input: process.stdin }).on('line', (l) => console.log('len=' + l.length)); console.log('ready');",
];

function socketArgs(driver: TmuxDriver): string[] {
  const s = driver.socket;
  return 'path' in s ? ['-S', s.path] : ['-L', s.name];
}

describe('the nudge lock (issue 13, item 4)', () => {
  it('a lock left by a process that died holding it is broken at once, not after the lock timeout', async () => {
    // A minute-long lock timeout: a nudge that waited for it would not finish within the test.
    const driver = tmuxDriver({ nudgeLockMs: 60_000 });
    const file = await rawReader(driver, 'locked');
    const dead = spawn('true');
    await new Promise((resolve) => dead.once('exit', resolve));
    await run('tmux', [
      ...socketArgs(driver),
      'set-option',
      '-t',
      '=locked:',
      '@belfry_nudge_lock',
      `${dead.pid}:deadbeef`,
    ]);
    await driver.nudge('locked', 'after a dead holder');
    await eventually(
      'the text',
      async () => readFileSync(file, 'utf8') === 'after a dead holder\r',
    );
    // Released after the nudge, and no waiting tmux client is left behind.
    const { stdout } = await run('tmux', [
      ...socketArgs(driver),
      'display-message',
      '-p',
      '-t',
      '=locked:',
      '#{@belfry_nudge_lock}',
    ]);
    expect(stdout.trim()).toBe('');
    const { stdout: clients } = await run('ps', ['-eo', 'args']);
    expect(
      clients.split('\n').filter((l) => l.includes('wait-for') && l.includes('belfry-nudge-')),
    ).toEqual([]);
  }, 20_000);

  it('a lock held by a live process is waited for, and the nudge goes once it is released', async () => {
    const driver = tmuxDriver({ nudgeLockMs: 60_000 });
    const file = await rawReader(driver, 'busy');
    const holder = `${process.pid}:livelock`;
    await run('tmux', [
      ...socketArgs(driver),
      'set-option',
      '-t',
      '=busy:',
      '@belfry_nudge_lock',
      holder,
    ]);
    let delivered = false;
    const nudging = driver.nudge('busy', 'after the holder').then(() => {
      delivered = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(delivered).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('');
    await run('tmux', [
      ...socketArgs(driver),
      'set-option',
      '-u',
      '-t',
      '=busy:',
      '@belfry_nudge_lock',
    ]);
    await nudging;
    await eventually('the text', async () => readFileSync(file, 'utf8') === 'after the holder\r');
  }, 20_000);
});

describe('a nudge longer than the terminal takes (issue 13, item 16)', () => {
  it('a line over 4,095 bytes to a program reading line by line is refused with NUDGE_FAILED, not cut and reported delivered', async () => {
    const driver = tmuxDriver();
    await driver.start({ name: 'cooked', epoch: 1, command: LINE_READER });
    await eventually('ready', async () => (await driver.capture('cooked')).includes('ready'));
    const error = await driver.nudge('cooked', 'x'.repeat(5_000)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DriverError);
    expect(error).toMatchObject({ code: 'NUDGE_FAILED' });
    expect((error as Error).message).toMatch(/5000 bytes.*canonical mode.*at most 4095 bytes/);
    // A line it can take arrives whole.
    await driver.nudge('cooked', 'y'.repeat(4_000));
    await eventually('the line', async () => (await driver.capture('cooked')).includes('len=4000'));
  }, 30_000);

  it('a raw-mode program takes the long line whole, through a paste', async () => {
    const driver = tmuxDriver();
    const file = await rawReader(driver, 'raw');
    const long = 'z'.repeat(6_000);
    await driver.nudge('raw', long);
    await eventually(
      'the whole line',
      async () => readFileSync(file, 'utf8') === `${long}\r`,
      10_000,
    );
  }, 30_000);
});
