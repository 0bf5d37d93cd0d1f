import { githubGate } from '@belfry/gate-github';
import { createTestTown, type TestTown, trackEvaluator } from '@belfry/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeGitHub, startFakeGitHub } from './fakeGitHub';

const timings = { heartbeatMs: 10_000, patrolIntervalMs: 10_000, gateIntervalMs: 10_000 };
let gh: FakeGitHub;
beforeEach(async () => {
  gh = await startFakeGitHub({ token: 'town-token' });
});
afterEach(async () => {
  await gh.close();
});

/** Moves simulated time in 1 s steps (never while a request is in flight) until `done`. */
async function until(
  t: TestTown,
  idle: () => Promise<void>,
  done: () => Promise<boolean>,
  withinMs = 300_000,
) {
  for (let waited = 0; !(await done()); waited += 1_000) {
    if (waited > withinMs) throw new Error(`not done within ${withinMs} ms of simulated time`);
    await idle();
    await t.advance(1_000);
  }
  await idle();
}

describe('gh:run gates in a town', () => {
  it('a molecule waits on CI; the run succeeding releases it, and its step carries the run', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api', status: 'in_progress' });
    const gate = trackEvaluator(githubGate({ token: 'town-token', baseUrl: gh.baseUrl }));
    const t = await createTestTown({ gates: [gate.evaluator], timings });
    const molecule = await t.model.molecules.create({
      name: 'ship',
      rig: 'api',
      steps: [
        {
          name: 'wait-ci',
          gate: { type: 'gh:run', spec: { owner: 'acme', repo: 'api', runId: run.id } },
        },
        { name: 'deploy' },
      ],
    });
    const gateId = molecule.waitingOn as string;
    await until(t, gate.idle, async () => gh.requests.length >= 3);
    expect((await t.model.gates.require(gateId)).status).toBe('open');
    expect(gh.requests.slice(1).every((r) => r.status === 304)).toBe(true);
    gh.updateRun(run.id, { status: 'completed', conclusion: 'success' });
    await until(
      t,
      gate.idle,
      async () => (await t.model.gates.require(gateId)).status === 'closed',
    );
    const dispatched = await t.next('molecule.dispatched', {
      where: (e) => e.moleculeId === molecule.id,
      since: 0,
    });
    expect((await t.model.beads.require(dispatched.beadId)).metadata).toMatchObject({
      gate: { id: gateId, type: 'gh:run', result: { runId: run.id, conclusion: 'success' } },
    });
    await t.stop();
  });

  it("with onFailure: 'close' a failed run fails the molecule; by default it is one report and the gate waits for a re-run", async () => {
    const failed = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'completed',
      conclusion: 'failure',
    });
    const strict = trackEvaluator(
      githubGate({ token: 'town-token', baseUrl: gh.baseUrl, onFailure: 'close' }),
    );
    const t = await createTestTown({ gates: [strict.evaluator], timings });
    const molecule = await t.model.molecules.create({
      name: 'ship',
      rig: 'api',
      steps: [
        {
          name: 'ci',
          gate: { type: 'gh:run', spec: { owner: 'acme', repo: 'api', runId: failed.id } },
        },
      ],
    });
    await until(
      t,
      strict.idle,
      async () => (await t.model.molecules.require(molecule.id)).status === 'failed',
    );
    expect((await t.model.molecules.require(molecule.id)).failure).toContain('concluded failure');
    await t.stop();

    const lenient = trackEvaluator(githubGate({ token: 'town-token', baseUrl: gh.baseUrl }));
    const t2 = await createTestTown({ gates: [lenient.evaluator], timings });
    const g = await t2.town.gates.create({
      type: 'gh:run',
      spec: { owner: 'acme', repo: 'api', runId: failed.id },
    });
    await until(
      t2,
      lenient.idle,
      async () => (await t2.model.reports.byIncident(`gate:${g.id}:escalated`)) !== undefined,
    );
    await until(
      t2,
      lenient.idle,
      async () => t2.events.filter((e) => e.type === 'patrol.finished').length >= 6,
    );
    expect(t2.events.filter((e) => e.type === 'gate.escalated')).toHaveLength(1);
    gh.updateRun(failed.id, { status: 'queued', conclusion: null, runAttempt: 2 });
    await until(
      t2,
      lenient.idle,
      async () => (await t2.model.reports.byIncident(`gate:${g.id}:escalated`)) === undefined,
    );
    gh.updateRun(failed.id, { status: 'completed', conclusion: 'success' });
    await until(
      t2,
      lenient.idle,
      async () => (await t2.model.gates.require(g.id)).status === 'closed',
    );
    expect((await t2.model.gates.require(g.id)).result).toMatchObject({ runAttempt: 2 });
    await t2.stop();
  });

  it('a bad token is one town incident, not one per gate', async () => {
    const runs = [1, 2, 3].map(() => gh.addRun({ owner: 'acme', repo: 'api' }));
    const bad = trackEvaluator(githubGate({ token: 'wrong-token', baseUrl: gh.baseUrl }));
    const t = await createTestTown({ gates: [bad.evaluator], timings });
    for (const run of runs)
      await t.town.gates.create({
        type: 'gh:run',
        spec: { owner: 'acme', repo: 'web', runId: run.id },
      });
    await until(
      t,
      bad.idle,
      async () =>
        (await t.model.reports.byIncident('gate-evaluator:gh:run:UNAUTHORIZED')) !== undefined,
    );
    const report = await t.model.reports.byIncident('gate-evaluator:gh:run:UNAUTHORIZED');
    expect(JSON.stringify(report)).not.toContain('wrong-token');
    expect((await t.model.gates.open()).every((g) => g.escalations.length === 0)).toBe(true);
    await t.stop();
  });
});
