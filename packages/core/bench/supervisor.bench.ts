/**
 * The supervisor against bare xstate: a parent machine that spawns its children with
 * `spawnChild` and restarts a crashed one with `stopChild` + `spawnChild` (the userland pattern
 * in research/xstate.md). Same child machine on both sides, same process, same run.
 */
import { type ChildSpec, createSupervisor, type Supervisor } from '@belfry/core';
import { type AnyActorRef, createActor, createMachine, enqueueActions, setup } from 'xstate';
import type { BenchRow, BenchSuite } from '../../../scripts/bench';

const worker = createMachine({
  id: 'worker',
  on: {
    CRASH: {
      actions: () => {
        throw new Error('crash');
      },
    },
  },
});

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[s.length >> 1] as number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number;
}

// ------------------------------------------------------------------ belfry

function belfryTree(n: number): { sup: Supervisor; startMs: number } {
  const children: ChildSpec[] = [];
  for (let i = 0; i < n; i++) children.push({ id: `w${i}`, logic: worker, shutdown: 'brutal' });
  gc();
  const t0 = performance.now();
  // Intensity set high enough that the storm is all restarts, as in the baseline.
  const sup = createSupervisor({ children, maxRestarts: 10 * n + 10_000, withinMs: 1_000 }).start();
  return { sup, startMs: performance.now() - t0 };
}

function belfryRefs(sup: Supervisor): AnyActorRef[] {
  return sup.whichChildren().map((c) => c.ref as AnyActorRef);
}

function belfryStorm(n: number): number {
  const { sup } = belfryTree(n);
  const refs = belfryRefs(sup);
  gc();
  const t0 = performance.now();
  for (const ref of refs) ref.send({ type: 'CRASH' });
  const ms = performance.now() - t0;
  const counts = sup.countChildren();
  if (counts.running !== n || sup.whichChildren().some((c) => c.restarts !== 1)) {
    throw new Error(
      `belfry storm: expected ${n} children restarted once, got ${JSON.stringify(counts)}`,
    );
  }
  sup.kill();
  return ms;
}

function belfryLatency(siblings: number, crashes: number): number[] {
  const { sup } = belfryTree(siblings);
  const target = sup.whichChildren()[0] as { ref: AnyActorRef };
  const samples: number[] = [];
  let ref = target.ref;
  gc();
  for (let i = 0; i < crashes; i++) {
    const t0 = process.hrtime.bigint();
    ref.send({ type: 'CRASH' });
    const next = sup.whichChildren()[0]?.ref as AnyActorRef;
    samples.push(Number(process.hrtime.bigint() - t0) / 1_000);
    if (next === ref || next.getSnapshot().status !== 'active')
      throw new Error('belfry: child not restarted');
    ref = next;
  }
  sup.kill();
  return samples;
}

// ------------------------------------------------------------------ bare xstate

function bareParent(n: number) {
  return setup({ actors: { worker } }).createMachine({
    on: {
      START: {
        actions: enqueueActions(({ enqueue }) => {
          for (let i = 0; i < n; i++) enqueue.spawnChild('worker', { id: `w${i}` });
        }),
      },
      'xstate.error.actor.*': {
        actions: enqueueActions(({ enqueue, event }) => {
          const id = (event as unknown as { actorId: string }).actorId;
          enqueue.stopChild(id);
          enqueue.spawnChild('worker', { id });
        }),
      },
    },
  });
}

function bareTree(n: number) {
  const parent = createActor(bareParent(n)).start();
  gc();
  const t0 = performance.now();
  parent.send({ type: 'START' });
  return { parent, startMs: performance.now() - t0 };
}

function bareChildren(parent: ReturnType<typeof bareTree>['parent']): AnyActorRef[] {
  return Object.values(parent.getSnapshot().children) as AnyActorRef[];
}

function bareStorm(n: number): number {
  const { parent } = bareTree(n);
  const refs = bareChildren(parent);
  gc();
  const t0 = performance.now();
  for (const ref of refs) ref.send({ type: 'CRASH' });
  const ms = performance.now() - t0;
  const alive = bareChildren(parent).filter((c) => c.getSnapshot().status === 'active');
  if (alive.length !== n || alive.some((c, i) => c === refs[i]))
    throw new Error('bare storm: not all restarted');
  // Not stopped: xstate's stop is quadratic too; the parent has no timers and is collected.
  return ms;
}

function bareLatency(siblings: number, crashes: number): number[] {
  const { parent } = bareTree(siblings);
  const samples: number[] = [];
  gc();
  for (let i = 0; i < crashes; i++) {
    const ref = parent.getSnapshot().children.w0 as AnyActorRef;
    const t0 = process.hrtime.bigint();
    ref.send({ type: 'CRASH' });
    samples.push(Number(process.hrtime.bigint() - t0) / 1_000);
    const next = parent.getSnapshot().children.w0 as AnyActorRef;
    if (next === ref || next.getSnapshot().status !== 'active')
      throw new Error('bare: child not restarted');
  }
  return samples;
}

// ------------------------------------------------------------------ suite

const SIZES = [1_000, 10_000];
const RUNS = 5;
const LATENCY_SIZES = [1, 100];
const CRASHES = 10_000;

function row(
  name: string,
  size: number,
  belfry: number,
  baseline: number,
  unit: BenchRow['unit'],
): BenchRow {
  return { name, size, belfry, baseline, ratio: baseline / belfry, unit };
}

const suite: BenchSuite = {
  name: 'supervisor',
  baseline: 'bare xstate 5.33: a parent machine with spawnChild / stopChild',
  async run(progress) {
    const rows: BenchRow[] = [];
    // Warm the JIT on both sides so the first measured run is not a compile benchmark.
    belfryStorm(1_000);
    bareStorm(200);
    for (const n of SIZES) {
      progress(`start ${n}: belfry ×${RUNS}, bare xstate ×1`);
      const b = median(
        Array.from({ length: RUNS }, () => {
          const { sup, startMs } = belfryTree(n);
          sup.kill();
          return startMs;
        }),
      );
      const x = bareTree(n).startMs;
      rows.push(row('start N children', n, b, x, 'ms'));
    }
    for (const n of SIZES) {
      progress(`restart storm ${n}: belfry ×${RUNS}, bare xstate ×1`);
      const b = median(Array.from({ length: RUNS }, () => belfryStorm(n)));
      const x = bareStorm(n);
      rows.push(row('restart storm (N crash, N restarted)', n, b, x, 'ms'));
    }
    for (const n of LATENCY_SIZES) {
      progress(`crash→restarted latency, ${n} children, ${CRASHES} crashes each side`);
      const b = belfryLatency(n, CRASHES).sort((p, q) => p - q);
      const x = bareLatency(n, CRASHES).sort((p, q) => p - q);
      rows.push(row('crash→restarted, median', n, percentile(b, 0.5), percentile(x, 0.5), 'µs'));
      rows.push(row('crash→restarted, p99', n, percentile(b, 0.99), percentile(x, 0.99), 'µs'));
    }
    return rows;
  },
  summary(rows) {
    const get = (name: string, size: number) =>
      rows.find((r) => r.name === name && r.size === size);
    const lines: string[] = [];
    for (const name of ['start N children', 'restart storm (N crash, N restarted)']) {
      const small = get(name, 1_000);
      const big = get(name, 10_000);
      if (small && big) {
        lines.push(
          `${name}: 1,000 → 10,000 costs belfry ${(big.belfry / small.belfry).toFixed(1)}× (linear: 10×), bare xstate ${(big.baseline / small.baseline).toFixed(0)}×`,
        );
      }
    }
    const start = get('start N children', 10_000);
    const storm = get('restart storm (N crash, N restarted)', 10_000);
    const lat = get('crash→restarted, median', 1);
    const startGrowth =
      start && get('start N children', 1_000)
        ? start.belfry / (get('start N children', 1_000)?.belfry ?? 1)
        : 0;
    const stormGrowth =
      storm && get('restart storm (N crash, N restarted)', 1_000)
        ? storm.belfry / (get('restart storm (N crash, N restarted)', 1_000)?.belfry ?? 1)
        : 0;
    const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
    lines.push('targets (issue #2; OTP 25 on this machine: 75 ms, 2.3 s, 110–350 µs):');
    if (start)
      lines.push(
        `  start 10,000 < 200 ms: ${start.belfry.toFixed(0)} ms, ${mark(start.belfry < 200)}`,
      );
    lines.push(
      `  growth ≤ 12× (start ${startGrowth.toFixed(1)}×, storm ${stormGrowth.toFixed(1)}×): ${mark(startGrowth <= 12 && stormGrowth <= 12)}`,
    );
    if (storm)
      lines.push(
        `  storm of 10,000 < 500 ms: ${storm.belfry.toFixed(0)} ms, ${mark(storm.belfry < 500)}`,
      );
    if (lat)
      lines.push(
        `  median crash→restarted < 50 µs: ${lat.belfry.toFixed(1)} µs, ${mark(lat.belfry < 50)}`,
      );
    return lines;
  },
};

export default suite;
