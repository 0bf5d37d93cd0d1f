import { githubGate } from '@belfry/gate-github';
import { runGateConformance } from '@belfry/testing';
import { afterAll, beforeAll } from 'vitest';
import { type FakeGitHub, startFakeGitHub } from './fakeGitHub';

let gh: FakeGitHub;
beforeAll(async () => {
  gh = await startFakeGitHub({ token: 'conformance-token' });
  gh.addRun({ owner: 'acme', repo: 'api', id: 5001, status: 'in_progress' });
  gh.addRun({ owner: 'acme', repo: 'api', id: 5002, status: 'completed', conclusion: 'success' });
  gh.addRun({ owner: 'acme', repo: 'api', id: 5003, status: 'queued' });
});
afterAll(async () => {
  await gh.close();
});

runGateConformance(
  () => {
    gh.clearScript();
    gh.releaseHeld();
    gh.resetCounts();
    // Only the abort case asks for run 5003: its request is held until the client gives up.
    gh.script({ hold: true, times: 10, match: (r) => r.path.endsWith('/runs/5003') });
    return githubGate({ token: 'conformance-token', baseUrl: gh.baseUrl, batchMinRuns: 0 });
  },
  {
    name: 'githubGate conformance (against a fake GitHub on 127.0.0.1)',
    validSpecs: [
      { owner: 'acme', repo: 'api', runId: 5001 },
      { owner: 'acme', repo: 'api', workflow: 'ci.yml', branch: 'main', event: 'push' },
      { owner: 'acme', repo: 'api.js', workflow: 'Release', headSha: 'f'.repeat(40) },
    ],
    invalidSpecs: [
      {},
      { owner: 'acme', repo: 'api' },
      { owner: 'acme', repo: 'api', runId: 1, workflow: 'ci.yml' },
      { owner: 'acme', repo: 'api', runId: 0 },
      { owner: 'acme', repo: 'api', runId: '5001' },
      { owner: 'acme/evil', repo: 'api', runId: 1 },
      { owner: 'acme', repo: '../x', runId: 1 },
      { owner: 'acme', repo: 'api', runId: 1, branch: 'main' },
      { owner: 'acme', repo: 'api', workflow: 'ci.yml', headSha: 'HEAD' },
      { owner: 'acme', repo: 'api', runId: 1, token: 'x' },
    ],
    staysOpen: { spec: { owner: 'acme', repo: 'api', runId: 5001 } },
    closes: { spec: { owner: 'acme', repo: 'api', runId: 5002 } },
    blocks: {
      spec: { owner: 'acme', repo: 'api', runId: 5003 },
      started: () => gh.waitForRequests(1),
    },
    damagedSpec: { owner: 'acme', runId: 'lots' },
  },
);
