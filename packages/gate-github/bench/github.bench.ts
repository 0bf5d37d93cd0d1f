/**
 * gh:run gates at scale against a fake GitHub on 127.0.0.1: 1,000 gates over 10 repositories
 * (and a tenth of that), two gates per run, every run among its repository's latest 100.
 * Per evaluation: the requests sent and the ones that cost rate limit, on the first look, with
 * nothing changed (all 304), and with a tenth of the runs changed; and the time an evaluation
 * takes. Baseline: the evaluator one writes first, one unconditional GET per gate (same fetch,
 * same concurrency of 4). belfry is shown with its default list batching and with it off.
 */
import type { Gate, GateDecision, GateEvaluator } from '@belfry/core/gate';
import { githubGate } from '@belfry/gate-github';
import { SimulatedClock } from '@belfry/testing';
import type { BenchRow, BenchSuite } from '../../../scripts/bench';
import { type FakeGitHub, startFakeGitHub } from '../test/fakeGitHub';

const QUICK = process.env.BELFRY_BENCH_QUICK === '1';
const SIZES = [100, 1_000];
const REPOS = 10;
const TIMED = QUICK ? 3 : 10;
const TOKEN = 'bench-token';

/** One GET per gate, no ETag, no dedup: the baseline. */
function naive(baseUrl: string): GateEvaluator {
  return {
    type: 'gh:run',
    validate: (spec) => spec as Gate['spec'],
    async evaluate(gates, { signal }) {
      const out = new Map<string, GateDecision>();
      let next = 0;
      const worker = async () => {
        while (next < gates.length) {
          const g = gates[next++] as Gate;
          const { owner, repo, runId } = g.spec as { owner: string; repo: string; runId: number };
          const res = await fetch(`${baseUrl}/repos/${owner}/${repo}/actions/runs/${runId}`, {
            headers: { authorization: `Bearer ${TOKEN}`, accept: 'application/vnd.github+json' },
            signal,
          });
          const run = (await res.json()) as { status: string; conclusion: string | null };
          out.set(
            g.id,
            run.status === 'completed' && run.conclusion === 'success'
              ? { kind: 'close' }
              : { kind: 'pending' },
          );
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      return out;
    },
  };
}

interface World {
  gh: FakeGitHub;
  gates: Gate[];
  runIds: number[];
}

async function world(size: number): Promise<World> {
  const gh = await startFakeGitHub({ token: TOKEN, rateLimit: { limit: 1e9, remaining: 1e9 } });
  const runIds: number[] = [];
  const perRepo = size / 2 / REPOS;
  for (let r = 0; r < REPOS; r++) {
    // Each repository has 100 runs; the gates wait on the newest `perRepo` of them.
    for (let i = 0; i < 100; i++) {
      const run = gh.addRun({ owner: 'acme', repo: `repo${r}`, status: 'in_progress' });
      if (i >= 100 - perRepo) runIds.push(run.id);
    }
  }
  const gates: Gate[] = [];
  for (let i = 0; i < size; i++) {
    const runId = runIds[i % runIds.length] as number;
    const repo = gh.getRun(runId)?.repo as string;
    gates.push({
      id: `gt-${i}`,
      type: 'gh:run',
      spec: { owner: 'acme', repo, runId },
      status: 'open',
      createdAt: 0,
      waiters: [],
      escalations: [],
    });
  }
  return { gh, gates, runIds };
}

interface Pass {
  requests: number;
  charged: number;
  ms: number;
}

/** Evaluates every gate once, storing memos as a town would; what it cost. */
async function pass(w: World, evaluator: GateEvaluator, clock: SimulatedClock): Promise<Pass> {
  w.gh.resetCounts();
  const t0 = performance.now();
  const decisions = await evaluator.evaluate(w.gates, {
    now: clock.now(),
    clock,
    signal: new AbortController().signal,
  });
  const ms = performance.now() - t0;
  w.gates = w.gates.map((g) => {
    const d = decisions.get(g.id);
    return d && d.kind !== 'close' && d.memo ? { ...g, memo: d.memo } : g;
  });
  return { requests: w.gh.requests.length, charged: w.gh.charged, ms };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const suite: BenchSuite = {
  name: 'gh:run gates against a fake GitHub on 127.0.0.1 (10 repositories, 2 gates per run)',
  baseline: 'one unconditional GET per gate',
  async run(progress) {
    const rows: BenchRow[] = [];
    const row = (
      name: string,
      size: number,
      belfry: number,
      baseline: number,
      unit: BenchRow['unit'],
    ) => rows.push({ name, size, belfry, baseline, ratio: baseline / belfry, unit });
    for (const size of SIZES) {
      progress(`${size} gates`);
      const w = await world(size);
      const clock = new SimulatedClock(1_700_000_000_000);
      const make = (batchMinRuns?: number) =>
        githubGate({
          token: TOKEN,
          baseUrl: w.gh.baseUrl,
          maxRequestsPerEvaluation: 10_000,
          ...(batchMinRuns === undefined ? {} : { batchMinRuns }),
        });
      const base = naive(w.gh.baseUrl);
      const fresh = { ...w, gates: [...w.gates] };
      const batched = make();
      const unbatched = make(0);
      const stateB = { ...w, gates: [...w.gates] };
      const stateU = { ...w, gates: [...w.gates] };

      const firstB = await pass(stateB, batched, clock);
      const firstU = await pass(stateU, unbatched, clock);
      const firstN = await pass(fresh, base, clock);
      row('requests, first evaluation', size, firstB.requests, firstN.requests, 'req');
      row('  same, batching off', size, firstU.requests, firstN.requests, 'req');

      const quietB = await pass(stateB, batched, clock);
      const quietU = await pass(stateU, unbatched, clock);
      const quietN = await pass(fresh, base, clock);
      row('requests, nothing changed', size, quietB.requests, quietN.requests, 'req');
      row('  same, batching off', size, quietU.requests, quietN.requests, 'req');
      row(
        'charged, nothing changed (all 304)',
        size,
        quietB.charged + quietU.charged,
        quietN.charged,
        'charged',
      );

      // A tenth of the runs move on (one state change each).
      for (const id of w.runIds.filter((_, i) => i % 10 === 0))
        w.gh.updateRun(id, { status: 'queued' });
      const someB = await pass(stateB, batched, clock);
      const someU = await pass(stateU, unbatched, clock);
      const someN = await pass(fresh, base, clock);
      row('charged, 1 run in 10 changed', size, someB.charged, someN.charged, 'charged');
      row('  same, batching off', size, someU.charged, someN.charged, 'charged');

      const times = { b: [] as number[], u: [] as number[], n: [] as number[] };
      // Warm-up passes (JIT, kept-alive connections), then the timed ones.
      for (let i = 0; i < 3; i++) {
        await pass(stateB, batched, clock);
        await pass(stateU, unbatched, clock);
        await pass(fresh, base, clock);
      }
      for (let i = 0; i < TIMED; i++) {
        times.b.push((await pass(stateB, batched, clock)).ms);
        times.u.push((await pass(stateU, unbatched, clock)).ms);
        times.n.push((await pass(fresh, base, clock)).ms);
      }
      row('ms per evaluation, nothing changed', size, median(times.b), median(times.n), 'ms');
      row('  same, batching off', size, median(times.u), median(times.n), 'ms');
      await w.gh.close();
    }
    return rows;
  },
  summary(rows) {
    const quiet = rows.filter((r) => r.name === 'requests, nothing changed');
    return [
      `requests per evaluation stay at one per repository (${quiet.map((r) => `${r.belfry} at ${r.size}`).join(', ')}) while the baseline sends one per gate; with batching off, one per distinct run.`,
      'A 304 costs no rate limit: with nothing changed belfry is charged nothing; the baseline pays every request.',
    ];
  },
};

export default suite;
