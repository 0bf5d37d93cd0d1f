/**
 * Following a real tmux pane's output by place (issue 14: `agent logs -f` misses no line and
 * repeats none, however alike the lines are).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FollowedOutput } from '@belfry/core/driver';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, killAll, sleep, tmuxDriver } from './helpers';

afterEach(killAll);
const run = promisify(execFile);

describe('TmuxDriver.follow (real tmux)', () => {
  it('gives every finished line once, identical ones included, across bursts and scrolling', async () => {
    const driver = tmuxDriver();
    const dir = mkdtempSync(join(tmpdir(), 'belfry-follow-'));
    const go = join(dir, 'go');
    // Bursts of identical lines, each started by a file the test writes: 3 bursts of 150.
    await driver.start({
      name: 'same',
      epoch: 1,
      command: [
        'sh',
        '-c',
        `n=1; while [ $n -le 3 ]; do while [ ! -e ${go}$n ]; do sleep 0.05; done; i=0; while [ $i -lt 150 ]; do echo same; i=$((i+1)); done; n=$((n+1)); done; echo end; sleep 1000`,
      ],
    });
    let at: FollowedOutput = await driver.follow('same');
    expect(at.continuous).toBe(false);
    const got: string[] = [];
    for (const n of [1, 2, 3]) {
      writeFileSync(`${go}${n}`, '');
      await eventually(`burst ${n}`, async () => {
        const next = await driver.follow('same', { after: at.end });
        expect(next.continuous).toBe(true);
        got.push(...next.lines);
        at = next;
        return got.length >= 150 * n;
      });
      await sleep(100);
    }
    await eventually('the end', async () => {
      const next = await driver.follow('same', { after: at.end });
      got.push(...next.lines);
      at = next;
      return got.at(-1) === 'end';
    });
    expect(got.filter((l) => l === 'same')).toHaveLength(450);
    expect(got).toHaveLength(451);
  }, 30_000);

  it('gives the latest lines, not continuous, when the place of the cursor is gone (the pane cleared, or resized)', async () => {
    const driver = tmuxDriver();
    await driver.start({
      name: 'clear',
      epoch: 1,
      command: [
        'sh',
        '-c',
        'echo one; echo two; sleep 0.5; clear; tmux clear-history 2>/dev/null; echo three; sleep 1000',
      ],
    });
    const first = await eventually('two lines', async () => {
      const r = await driver.follow('clear');
      return r.lines.includes('two') ? r : undefined;
    });
    await sleep(800);
    const after = await driver.follow('clear', { after: first.end });
    // The pane's history is gone: the place counted on is no more; the latest lines come.
    expect(after).toMatchObject({ continuous: false, lines: ['three'] });
    // A resized pane rewraps its history: a cursor from before never continues it.
    const socket = driver.socket as { name: string };
    await run('tmux', ['-L', socket.name, 'resize-window', '-t', 'clear', '-x', '120']);
    expect(await driver.follow('clear', { after: after.end })).toMatchObject({
      continuous: false,
    });
    for (const bad of ['', '3', '%1.200.0.0.zz'])
      await expect(driver.follow('clear', { after: bad })).rejects.toMatchObject({
        code: 'INVALID_SPEC',
      });
    await expect(driver.follow('nosuch')).rejects.toMatchObject({ code: 'NOT_RUNNING' });
  }, 30_000);

  it('gives the output of an ended program without the line tmux adds or the blank rows under it', async () => {
    const driver = tmuxDriver();
    await driver.start({
      name: 'bye',
      epoch: 1,
      command: ['sh', '-c', 'echo one; echo bye; sleep 0.5; exit 3'],
    });
    await eventually(
      'the end',
      async () => (await driver.status('bye')).state === 'exited',
      10_000,
    );
    const all = await driver.follow('bye');
    expect(all.lines).toEqual(['one', 'bye']);
    expect(await driver.follow('bye', { after: all.end })).toMatchObject({
      continuous: true,
      lines: [],
    });
  }, 30_000);
});
