/**
 * The tmux driver against bare tmux, on a private server:
 * - per operation, median and p99: start (with and without the 250 ms crash check), status,
 *   a verified nudge, stop. Baseline: the bare tmux calls a driver cannot do with less
 *   (new-session; list-panes -t; send-keys -l and Enter without verification; kill-session).
 * - the status of every session, as a patrol reads it: one `list()` (one tmux call) against one
 *   `status()` per session, at 10 and 100 sessions.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createTmuxDriver } from '@belfry/driver-tmux';
import type { BenchRow, BenchSuite } from '../../../scripts/bench';

const QUICK = process.env.BELFRY_BENCH_QUICK === '1';
const ROUNDS = QUICK ? 8 : 40;
const FLEETS = QUICK ? [10, 30] : [10, 100];
const exec = promisify(execFile);

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const suite: BenchSuite = {
  name: 'tmux driver on a private tmux server',
  baseline: 'bare tmux calls (no checks, no verification)',
  async run(progress) {
    const socket = `belfry-bench-${process.pid}`;
    const tmux = (...args: string[]) =>
      exec('tmux', ['-L', `${socket}-raw`, '-f', '/dev/null', ...args]);
    const driver = createTmuxDriver({ socket: { name: socket }, stopGraceMs: 2_000 });
    const quick = createTmuxDriver({
      socket: { name: socket },
      startCheckMs: 0,
      stopGraceMs: 2_000,
    });
    const rows: BenchRow[] = [];
    const both = (name: string, ours: number[], bare: number[]) => {
      for (const [q, label] of [
        [0.5, 'median'],
        [0.99, 'p99'],
      ] as const) {
        const b = quantile(ours, q);
        const a = quantile(bare, q);
        rows.push({
          name: `${name}, ${label}`,
          size: ours.length,
          belfry: b,
          baseline: a,
          ratio: a / b,
          unit: 'ms',
        });
      }
    };
    try {
      await tmux('new-session', '-d', '-s', 'keep', '--', 'sleep', '100000');
      progress('per operation');
      const t = {
        start: [] as number[],
        startQuick: [] as number[],
        status: [] as number[],
        nudge: [] as number[],
        stop: [] as number[],
      };
      const b = {
        start: [] as number[],
        status: [] as number[],
        nudge: [] as number[],
        stop: [] as number[],
      };
      for (let i = 0; i < ROUNDS; i++) {
        const n = `op-${i}`;
        t.start.push(await timed(() => driver.start({ name: n, epoch: 1, command: ['cat'] })));
        t.startQuick.push(
          await timed(() => quick.start({ name: `${n}-q`, epoch: 1, command: ['cat'] })),
        );
        t.status.push(await timed(() => driver.status(n)));
        t.nudge.push(await timed(() => driver.nudge(n, `hello ${i}`)));
        t.stop.push(await timed(() => driver.stop(n)));
        await quick.stop(`${n}-q`);
        b.start.push(await timed(() => tmux('new-session', '-d', '-s', n, '--', 'cat')));
        b.status.push(
          await timed(() => tmux('list-panes', '-t', `=${n}:`, '-F', '#{pane_pid} #{pane_dead}')),
        );
        b.nudge.push(
          await timed(async () => {
            await tmux('send-keys', '-t', `=${n}:`, '-l', '--', `hello ${i}`);
            await tmux('send-keys', '-t', `=${n}:`, 'Enter');
          }),
        );
        b.stop.push(await timed(() => tmux('kill-session', '-t', `=${n}`)));
      }
      both('start (with the 250 ms crash check)', t.start, b.start);
      both('start (startCheckMs: 0)', t.startQuick, b.start);
      both('status', t.status, b.status);
      both('nudge, verified', t.nudge, b.nudge);
      both('stop (TERM, sweep, kill-session)', t.stop, b.stop);

      for (const fleet of FLEETS) {
        progress(`status of ${fleet} sessions`);
        const names = Array.from({ length: fleet }, (_, i) => `fleet-${i}`);
        for (const n of names) await quick.start({ name: n, epoch: 1, command: ['cat'] });
        const one: number[] = [];
        const each: number[] = [];
        for (let i = 0; i < (QUICK ? 3 : 10); i++) {
          one.push(await timed(() => driver.list()));
          each.push(
            await timed(async () => {
              for (const n of names) await driver.status(n);
            }),
          );
        }
        rows.push({
          name: 'status of every session: one list() vs a status() each',
          size: fleet,
          belfry: quantile(one, 0.5),
          baseline: quantile(each, 0.5),
          ratio: quantile(each, 0.5) / quantile(one, 0.5),
          unit: 'ms',
          note: 'one tmux call (list-panes -a) however many sessions',
        });
      }
    } finally {
      await driver.killServer();
      await tmux('kill-server').catch(() => undefined);
    }
    return rows;
  },
  summary(rows) {
    const fleet = rows.filter((r) => r.name.startsWith('status of every'));
    const [small, large] = fleet;
    return [
      'Per operation the driver costs more than the bare call: start waits 250 ms to catch a crash at start, a nudge waits until the pane changed, stop sweeps /proc. These buy the guarantees, not speed.',
      small && large
        ? `status of all sessions: ${small.belfry.toFixed(1)} ms at ${small.size} and ${large.belfry.toFixed(1)} ms at ${large.size} with one call; one call per session costs ${small.baseline.toFixed(0)} → ${large.baseline.toFixed(0)} ms.`
        : '',
    ];
  },
};

export default suite;
