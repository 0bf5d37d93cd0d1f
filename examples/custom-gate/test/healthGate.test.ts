import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runGateConformance } from '@belfry/testing';
import { afterAll, beforeAll } from 'vitest';
import { httpHealthGate } from '../src/healthGate';

// Step 3: run the conformance suite against the evaluator, with a real server on 127.0.0.1:
// /up answers 200, /down 503, and /hang never answers (the abort case).
let server: Server;
let base = '';
const hanging: Array<() => void> = [];
let arrived: () => void = () => {};
let hangArrived = new Promise<void>((resolve) => {
  arrived = resolve;
});

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/hang') {
      hanging.push(() => res.destroy());
      arrived();
      return;
    }
    res.statusCode = req.url === '/up' ? 200 : 503;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const end of hanging) end();
  await new Promise((resolve) => server.close(resolve));
});

runGateConformance(() => httpHealthGate(), {
  name: 'httpHealthGate conformance',
  validSpecs: [
    { url: 'http://127.0.0.1:9/healthz' },
    { url: 'https://example.com/up', status: 204 },
  ],
  invalidSpecs: [
    {},
    { url: 'ftp://example.com' },
    { url: 'not a url' },
    { url: 'http://x', status: 99 },
    { url: 'http://x', retries: 3 },
  ],
  // The URLs are read when the test runs (after beforeAll), so they are built lazily.
  staysOpen: {
    get spec() {
      return { url: `${base}/down` };
    },
  },
  closes: {
    get spec() {
      return { url: `${base}/up` };
    },
  },
  blocks: {
    get spec() {
      return { url: `${base}/hang` };
    },
    started: async () => {
      await hangArrived;
      hangArrived = new Promise<void>((resolve) => {
        arrived = resolve;
      });
    },
  },
});
