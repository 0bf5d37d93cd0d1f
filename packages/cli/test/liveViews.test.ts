/**
 * The operator's live views against a real daemon and real tmux: `status --watch`, `agent logs
 * -f` and `agent attach` (issue 14, part 2), each run as the built command would be, in a process
 * of its own.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_FILE } from '@belfry/cli';
import { createTmuxDriver } from '@belfry/driver-tmux';
import { afterEach, describe, expect, it } from 'vitest';
import { newLines } from '../src/commands/agent';
import { BIN, belfry, eventually, NODE_ARGS } from './bin';

let serial = 0;
const towns: Array<{ dir: string; socket: string }> = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const t of towns.splice(0)) {
    await belfry(t.dir, 'daemon', 'stop', '--timeout', '10000');
    await createTmuxDriver({ socket: { name: t.socket } }).killServer();
  }
});

/** A town on tmux (a socket of its own) whose agent prints a numbered line every 200 ms. */
function town(script = 'i=0; while :; do i=$((i+1)); echo line-$i; sleep 0.2; done'): {
  dir: string;
  socket: string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-live-'));
  const socket = `belfry-live-test-${process.pid}-${++serial}`;
  writeFileSync(
    join(dir, CONFIG_FILE),
    `driver: { kind: tmux, socket: ${socket}, stopGraceMs: 500 }
gates: { github: false }
rigs: [api]
agent:
  command: ["sh", "-c", ${JSON.stringify(script.replaceAll('{dir}', dir))}]
timings: { heartbeatMs: 200, patrolIntervalMs: 400, surveyMs: 200 }
`,
  );
  const t = { dir, socket };
  towns.push(t);
  return t;
}

/** `belfry …` started in the background, its output collected as it comes. */
function background(dir: string, args: readonly string[], command = process.execPath) {
  const argv = command === process.execPath ? [...NODE_ARGS, BIN, ...args] : [...args];
  const child = spawn(command, argv, { cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
  children.push(child);
  const seen = { out: '', err: '' };
  child.stdout.setEncoding('utf8').on('data', (t: string) => {
    seen.out += t;
  });
  child.stderr.setEncoding('utf8').on('data', (t: string) => {
    seen.err += t;
  });
  // 'close', not 'exit': the output is all read only once the child's pipes are closed.
  const exited = new Promise<number | null>((resolve) =>
    child.once('close', (code) => resolve(code)),
  );
  return { child, seen, exited };
}

async function slung(dir: string): Promise<string> {
  const bead = JSON.parse(
    (await belfry(dir, 'bead', 'create', 'count', '--rig', 'api', '--json')).out,
  ) as { id: string };
  return (
    JSON.parse((await belfry(dir, 'sling', bead.id, 'api', '--json')).out) as { agent: string }
  ).agent;
}

describe('the live views (real daemon, real tmux)', () => {
  it('status --watch draws the tree again as it changes (a slung polecat appears); it and events -f end with 4 when the daemon stops', async () => {
    const { dir } = town();
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const watch = background(dir, ['status', '--watch', '--json']);
    const events = background(dir, ['events', '-f']);
    const documents = () =>
      watch.seen.out
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map(
          (l) =>
            JSON.parse(l) as {
              live: boolean;
              rigs: Array<{ polecats: Array<{ agent: string; session: { state: string } }> }>;
              lifecycleQueue: unknown[];
              incidents: unknown[];
            },
        );
    await eventually('a first drawing', () => documents().length > 0, 15_000);
    expect(documents()[0]).toMatchObject({ live: true, lifecycleQueue: [], incidents: [] });
    const agent = await slung(dir);
    await eventually(
      'the polecat running in a later drawing',
      () =>
        documents().some((d) =>
          d.rigs[0]?.polecats.some((p) => p.agent === agent && p.session.state === 'running'),
        ),
      15_000,
    );
    // The session shows running a moment before its start is confirmed (and announced).
    await eventually('polecat.spawned followed', () => events.seen.out.includes('polecat.spawned'));
    expect((await belfry(dir, 'daemon', 'stop')).code).toBe(0);
    expect(await watch.exited).toBe(4);
    expect(watch.seen.err).toContain('the daemon stopped');
    // Following the events ends the same way (4), never as if all went well.
    expect(await events.exited).toBe(4);
    expect(events.seen.err).toContain('the daemon stopped');
  }, 90_000);

  it('agent logs -f prints what the session prints next, each line once', async () => {
    const { dir } = town();
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const agent = await slung(dir);
    await eventually(
      'output',
      async () => (await belfry(dir, 'agent', 'logs', agent)).out.includes('line-2'),
      15_000,
    );
    const follow = background(dir, ['agent', 'logs', agent, '-f', '-n', '5']);
    const numbers = () => [...follow.seen.out.matchAll(/^line-(\d+)$/gm)].map((m) => Number(m[1]));
    await eventually(
      'ten more lines followed',
      () => {
        const n = numbers();
        return n.length > 0 && (n.at(-1) as number) - (n[0] as number) >= 10;
      },
      20_000,
    );
    follow.child.kill('SIGINT');
    expect(follow.seen.err).not.toContain('MaxListenersExceeded');
    // -n 0: nothing of what is there.
    const none = await belfry(dir, 'agent', 'logs', agent, '-n', '0');
    expect(none).toMatchObject({ code: 0, out: '' });
    const n = numbers();
    // In order, none twice, none skipped.
    for (let i = 1; i < n.length; i++) expect(n[i]).toBe((n[i - 1] as number) + 1);
  }, 90_000);

  it('agent logs -f prints bursts of identical lines exactly: none dropped, none twice', async () => {
    // Two bursts of 150 identical lines, each when the test says so, then "end".
    const { dir } = town(
      'for n in 1 2; do while [ ! -e {dir}/go$n ]; do sleep 0.05; done; i=0; while [ $i -lt 150 ]; do echo same; i=$((i+1)); done; done; echo end; sleep 1000',
    );
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const agent = await slung(dir);
    await eventually(
      'the session',
      async () => (await belfry(dir, 'agent', 'logs', agent, '-n', '0')).code === 0,
      15_000,
    );
    const follow = background(dir, ['agent', 'logs', agent, '-f', '-n', '0']);
    const count = () => follow.seen.out.split('\n').filter((l) => l === 'same').length;
    // Each burst is followed whole before the next (a compare of screens finds 150 identical
    // lines in both and skips them).
    await new Promise((r) => setTimeout(r, 1_000));
    writeFileSync(join(dir, 'go1'), '');
    await eventually('the first burst', () => count() >= 150, 15_000);
    await new Promise((r) => setTimeout(r, 1_000));
    writeFileSync(join(dir, 'go2'), '');
    await eventually('the end', () => follow.seen.out.includes('end\n'), 15_000);
    follow.child.kill('SIGINT');
    expect(count()).toBe(300);
  }, 90_000);

  it('agent attach --read-only puts a terminal on the session on the town’s private server and returns 0 when detached; without a terminal it says what to use instead', async () => {
    const { dir, socket } = town();
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const agent = await slung(dir);
    const session = agent.replace('/', '-');
    const tmux = createTmuxDriver({ socket: { name: socket } });
    await eventually('the session', async () => (await tmux.status(session)).state === 'running');

    const noTerminal = await belfry(dir, 'agent', 'attach', agent);
    expect(noTerminal.code).toBe(2);
    expect(noTerminal.err).toContain(`belfry agent logs -f ${agent}`);
    expect((await belfry(dir, 'agent', 'attach', 'api/nobody')).code).not.toBe(0);

    // script(1) gives the command a terminal of its own.
    const line = [process.execPath, ...NODE_ARGS, BIN, 'agent', 'attach', agent, '--read-only']
      .map((w) => `'${w}'`)
      .join(' ');
    const attached = background(dir, ['-qec', line, '/dev/null'], 'script');
    const clients = () =>
      execFileSync(
        'tmux',
        ['-L', socket, 'list-clients', '-F', '#{session_name} #{client_readonly}'],
        {
          encoding: 'utf8',
        },
      ).trim();
    await eventually(
      'a read-only client on the session',
      () => clients() === `${session} 1`,
      20_000,
    );
    execFileSync('tmux', ['-L', socket, 'detach-client', '-s', session]);
    expect(await attached.exited).toBe(0);
    expect(clients()).toBe('');
  }, 90_000);
});

describe('newLines (agent logs -f)', () => {
  it('skips what was shown, whatever the screen scrolled; with no overlap prints all', () => {
    expect(newLines(['a', 'b', 'c'], ['b', 'c', 'd', 'e'])).toEqual(['d', 'e']);
    expect(newLines(['a', 'b'], ['a', 'b'])).toEqual([]);
    expect(newLines(['a', 'b'], ['x', 'y'])).toEqual(['x', 'y']);
    expect(newLines([], ['x'])).toEqual(['x']);
    expect(newLines(['a', 'a'], ['a', 'a', 'a'])).toEqual(['a']);
  });

  it('prints nothing for a screen that moved back to rows already shown (a program redrawing)', () => {
    expect(newLines(['a', 'b', 'c', 'd', 'e'], ['a', 'b', 'c'])).toEqual([]);
    expect(newLines(['a', 'b', 'c', 'd', 'e'], ['b', 'c', 'd'])).toEqual([]);
    expect(newLines(['a', 'b', 'c', 'd', 'e'], ['c', 'x'])).toEqual(['c', 'x']);
  });
});
