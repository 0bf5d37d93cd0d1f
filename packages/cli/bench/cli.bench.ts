/**
 * The `belfry` daemon as a real process (the built bin), supervising polecats in real tmux:
 * - an idle daemon's RSS and CPU over a minute (10 s with BELFRY_BENCH_QUICK=1), at 10 and 100
 *   running sessions. Baseline: a bare Node process that only keeps a timer (the floor any Node
 *   daemon pays).
 * - the time of `belfry status --json`. Baseline: starting Node and exiting (`node -e 0`).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BenchRow, BenchSuite } from '../../../scripts/bench';

const QUICK = process.env.BELFRY_BENCH_QUICK === '1';
const IDLE_MS = QUICK ? 10_000 : 60_000;
const FLEETS = QUICK ? [5, 20] : [10, 100];
const BIN = join(import.meta.dirname, '..', 'dist', 'bin.js');
const run = promisify(execFile);
const TICK = 100; // clock ticks per second (Linux USER_HZ)

/** RSS (MB) and CPU seconds of a process, from /proc. */
function usage(pid: number): { rssMb: number; cpuS: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuS = (Number(f[11]) + Number(f[12])) / TICK;
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { rssMb: Number(rss?.[1] ?? 0) / 1024, cpuS };
}

const belfry = (dir: string, ...args: string[]) =>
  run(process.execPath, [BIN, ...args], { cwd: dir });

const suite: BenchSuite = {
  name: 'the belfry daemon (built bin, real tmux)',
  baseline: 'a bare Node process (idle: a timer; status: node -e 0)',
  async run(progress) {
    const rows: BenchRow[] = [];
    for (const fleet of FLEETS) {
      progress(`idle daemon with ${fleet} tmux sessions`);
      const dir = mkdtempSync(join(tmpdir(), 'belfry-bench-cli-'));
      const socket = `belfry-bench-${process.pid}-${fleet}`;
      writeFileSync(
        join(dir, 'belfry.yaml'),
        `driver: { kind: tmux, socket: ${socket}, stopGraceMs: 200 }
gates: { timer: true, human: true, github: false }
rigs: [api]
agent:
  command: ["sleep", "100000"]
  prime: "hello"
timings: { heartbeatMs: 10000, patrolIntervalMs: 30000, surveyMs: 10000 }
`,
      );
      try {
        await belfry(dir, 'daemon', 'start');
        for (let i = 0; i < fleet; i++) {
          const bead = JSON.parse(
            (await belfry(dir, 'bead', 'create', `task ${i}`, '--rig', 'api', '--json')).stdout,
          ) as { id: string };
          await belfry(dir, 'sling', bead.id, 'api');
        }
        const pid = (
          JSON.parse(readFileSync(join(dir, '.belfry', 'state.json'), 'utf8')) as { pid: number }
        ).pid;
        // Wait until every session runs, then measure a quiet interval.
        for (let i = 0; i < 600; i++) {
          const s = JSON.parse((await belfry(dir, 'status', '--json')).stdout) as {
            rigs: Array<{ polecats: Array<{ session: { state: string } }> }>;
          };
          if (
            (s.rigs[0]?.polecats.filter((p) => p.session.state === 'running').length ?? 0) >= fleet
          )
            break;
          await new Promise((r) => setTimeout(r, 500));
        }
        const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 10000)'], {
          stdio: 'ignore',
        });
        await new Promise((r) => setTimeout(r, 500));
        const a0 = usage(pid);
        const b0 = usage(bare.pid as number);
        await new Promise((r) => setTimeout(r, IDLE_MS));
        const a1 = usage(pid);
        const b1 = usage(bare.pid as number);
        bare.kill();
        const cpuPct = ((a1.cpuS - a0.cpuS) / (IDLE_MS / 1000)) * 100;
        const bareCpuPct = Math.max(0.01, ((b1.cpuS - b0.cpuS) / (IDLE_MS / 1000)) * 100);
        rows.push({
          name: `idle daemon RSS (${IDLE_MS / 1000} s)`,
          size: fleet,
          belfry: a1.rssMb,
          baseline: b1.rssMb,
          ratio: b1.rssMb / a1.rssMb,
          unit: 'MB',
        });
        rows.push({
          name: `idle daemon CPU (${IDLE_MS / 1000} s)`,
          size: fleet,
          belfry: (a1.cpuS - a0.cpuS) * 1000,
          baseline: Math.max(1, (b1.cpuS - b0.cpuS) * 1000),
          ratio: Math.max(1, (b1.cpuS - b0.cpuS) * 1000) / Math.max(1, (a1.cpuS - a0.cpuS) * 1000),
          unit: 'ms',
          note: `${cpuPct.toFixed(2)}% of one core (bare Node: ${bareCpuPct.toFixed(2)}%)`,
        });
        progress(`belfry status --json with ${fleet} sessions`);
        const times: number[] = [];
        const floor: number[] = [];
        for (let i = 0; i < 7; i++) {
          let t0 = performance.now();
          await belfry(dir, 'status', '--json');
          times.push(performance.now() - t0);
          t0 = performance.now();
          await run(process.execPath, ['-e', '0']);
          floor.push(performance.now() - t0);
        }
        const med = (xs: number[]) =>
          [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
        rows.push({
          name: 'belfry status --json',
          size: fleet,
          belfry: med(times),
          baseline: med(floor),
          ratio: med(floor) / med(times),
          unit: 'ms',
        });
      } finally {
        await belfry(dir, 'daemon', 'stop').catch(() => undefined);
        await run('tmux', ['-L', socket, 'kill-server']).catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      }
    }
    return rows;
  },
  summary(rows) {
    return rows.filter((r) => r.note).map((r) => `${r.name} with ${r.size} sessions: ${r.note}`);
  },
};

export default suite;
