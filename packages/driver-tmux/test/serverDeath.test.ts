/**
 * What a session leaves when its tmux server dies, and a grandchild that cleared its environment
 * (issue 13, items 5 and 17), on real tmux and real processes.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, killAll, tmuxDriver } from './helpers';

afterEach(killAll);

const tmp = () => mkdtempSync(join(tmpdir(), 'belfry-death-'));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

/** The children's pids: `[setsid child, hangup-ignoring child, setsid env -i child]`. */
const pidsIn = (file: string) =>
  eventually('the pids', async () => {
    const lines = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : [];
    const pid = (kind: string) => Number(lines.find((l) => l.startsWith(kind))?.split(' ')[1]);
    return lines.length >= 3 ? [pid('setsid'), pid('hup'), pid('bare')] : undefined;
  });

/**
 * An agent that leaves three kinds of children behind when its server dies: one started with
 * `setsid` (a session of its own, re-parented to init; it keeps the session's environment), one
 * that ignores the hangup and stays in the pane's process session with its environment cleared,
 * and one with neither (`setsid env -i`): it only still holds the pane's terminal.
 */
const LEAVER = (file: string) => [
  'sh',
  '-c',
  `setsid sh -c 'echo setsid $$ >> ${file}; exec sleep 1000' & (trap '' HUP; exec env -i sh -c 'echo hup $$ >> ${file}; exec sleep 1000') & (setsid env -i sh -c 'echo bare $$ >> ${file}; exec sleep 1000' &); wait`,
];

describe('when the tmux server dies', () => {
  it('what its sessions left running is ended once the driver sees the server gone; the sessions are missing with no host', async () => {
    const driver = tmuxDriver();
    const files = [join(tmp(), 'a'), join(tmp(), 'b')];
    for (const [i, file] of files.entries())
      await driver.start({ name: `leaver-${i}`, epoch: 1, command: LEAVER(file) });
    const pids = (await Promise.all(files.map(pidsIn))).flat();
    const [before] = await driver.list();
    expect(before?.host).toMatch(/^tmux:\d+:\d+$/);
    for (const pid of pids) expect(alive(pid)).toBe(true);

    await driver.killServer();
    expect(await driver.list()).toEqual([]);
    await eventually(
      'the leftovers to be ended',
      async () => pids.every((pid) => !alive(pid)),
      10_000,
    );
    expect(await driver.status('leaver-0')).toEqual({ name: 'leaver-0', state: 'missing' });
  });

  it('a new driver (a restarted daemon) ends what a server that died meanwhile left', async () => {
    const first = tmuxDriver();
    const file = join(tmp(), 'a');
    await first.start({ name: 'leaver', epoch: 1, command: LEAVER(file) });
    const pids = await pidsIn(file);
    await first.killServer();
    // The setsid child carries the session's marker: a driver that never saw the session knows
    // it for one of its server's.
    const setsidChild = pids[0] as number;
    expect(alive(setsidChild)).toBe(true);
    const second = tmuxDriver({ socket: first.socket });
    await second.list();
    await eventually('the setsid child to be ended', async () => !alive(setsidChild), 10_000);
    await second.close?.();
  }, 30_000);

  it('sessions of another server and live sessions of this one are left alone', async () => {
    const mine = tmuxDriver();
    const other = tmuxDriver();
    const [fileA, fileB] = [join(tmp(), 'a'), join(tmp(), 'b')];
    await mine.start({ name: 'leaver', epoch: 1, command: LEAVER(fileA) });
    await other.start({ name: 'leaver', epoch: 1, command: LEAVER(fileB) });
    const otherPids = await pidsIn(fileB);
    await mine.list();
    await mine.killServer();
    await mine.list();
    await mine.close?.(); // waits for the reaping
    for (const pid of otherPids) expect(alive(pid)).toBe(true);
    expect((await other.status('leaver')).state).toBe('running');
    // A new session on a new server is not taken for a lost one.
    await mine.start({ name: 'leaver', epoch: 2, command: ['sleep', '1000'] });
    await mine.list();
    await mine.close?.();
    expect((await mine.status('leaver')).state).toBe('running');
  });
});

describe('stop', () => {
  it('ends a grandchild that left with setsid and cleared its environment (it still holds the pane’s terminal)', async () => {
    const driver = tmuxDriver();
    const file = join(tmp(), 'pid');
    await driver.start({
      name: 'hider',
      epoch: 1,
      command: [
        'sh',
        '-c',
        `(setsid env -i sh -c 'echo $$ > ${file}; exec sleep 1000' &); exec sleep 1000`,
      ],
    });
    const pid = await eventually('the pid', async () =>
      existsSync(file) && readFileSync(file, 'utf8').trim()
        ? Number(readFileSync(file, 'utf8'))
        : undefined,
    );
    expect(readFileSync(`/proc/${pid}/environ`, 'latin1')).not.toContain('BELFRY_SESSION');
    await driver.stop('hider', { graceMs: 300 });
    expect(alive(pid)).toBe(false);
  });
});
