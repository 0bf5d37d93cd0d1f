/**
 * The `belfry` daemon as a real process (the built bin), supervising polecats in real tmux:
 * - an idle daemon's RSS and CPU over a minute (10 s with BELFRY_BENCH_QUICK=1), at 10 and 100
 *   running sessions. Baseline: a bare Node process that only keeps a timer (the floor any Node
 *   daemon pays).
 * - the time of `belfry status --json` (live, through the daemon's API). Baseline: starting Node
 *   and exiting (`node -e 0`).
 * - `belfry sling` to the session running, median. Baseline: a bare `tmux new-session`.
 * - the API on its socket: a `GET /v1/status` (keep-alive, one at a time), and an operation's
 *   event reaching a `GET /v1/events` client. Baseline: a bare node:http server on a Unix socket
 *   answering `{}`, and the same server pushing one line to a waiting client.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BenchRow, BenchSuite } from '../../../scripts/bench';

const QUICK = process.env.BELFRY_BENCH_QUICK === '1';
const IDLE_MS = QUICK ? 10_000 : 60_000;
const FLEETS = QUICK ? [5, 20] : [10, 100];
const BIN = join(import.meta.dirname, '..', 'dist', 'bin', 'bin.js');
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

/** Microseconds per request, one at a time on one keep-alive connection. */
async function perRequest(socketPath: string, path: string, n: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const req = httpRequest({ socketPath, path, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
  for (let i = 0; i < 20; i++) await once();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await once();
  const us = ((performance.now() - t0) * 1000) / n;
  agent.destroy();
  return us;
}

/** Milliseconds from `act()` to the first SSE line matching `match` at a client of `path`. */
function eventLatency(
  socketPath: string,
  path: string,
  match: RegExp,
  act: () => Promise<unknown>,
) {
  return new Promise<number>((resolve, reject) => {
    let t0 = 0;
    let text = '';
    const req = httpRequest({ socketPath, path }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (t0 === 0 && text.includes('\n\n')) {
          t0 = performance.now();
          void act().catch(reject);
        } else if (t0 > 0 && match.test(text)) {
          const ms = performance.now() - t0;
          req.destroy();
          resolve(ms);
        }
      });
    });
    req.on('error', () => undefined);
    req.end();
  });
}

/** The API's figures on the daemon's socket, beside a bare node:http server's. */
async function apiFigures(socket: string) {
  const n = QUICK ? 200 : 2_000;
  const status = await perRequest(socket, '/v1/status', n);
  const post = (path: string) =>
    new Promise<void>((resolve, reject) => {
      const req = httpRequest({ socketPath: socket, path, method: 'POST' }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
  const events: number[] = [];
  for (let i = 0; i < (QUICK ? 3 : 9); i++) {
    const action = i % 2 === 0 ? 'park' : 'unpark';
    events.push(
      await eventLatency(socket, '/v1/events', new RegExp(`"action":"${action}"`), () =>
        post(`/v1/rigs/api/${action}`),
      ),
    );
  }
  if (events.length % 2 === 1) await post('/v1/rigs/api/unpark');
  // The same measures on a bare server: `{}` for a request; one pushed line for an event.
  const bareSocket = join(mkdtempSync(join(tmpdir(), 'belfry-bench-bare-')), 'bare.sock');
  const waiting = new Set<import('node:http').ServerResponse>();
  const bare = createServer((req, res) => {
    if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': ready\n\n');
      waiting.add(res);
      return;
    }
    if (req.method === 'POST') for (const w of waiting) w.write('data: {"action":"park"}\n\n');
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
  await new Promise<void>((r) => bare.listen(bareSocket, () => r()));
  const bareRequest = await perRequest(bareSocket, '/status', n);
  const bareEvents: number[] = [];
  for (let i = 0; i < (QUICK ? 3 : 9); i++)
    bareEvents.push(
      await eventLatency(
        bareSocket,
        '/events',
        /"action":"park"/,
        () =>
          new Promise<void>((resolve) => {
            const req = httpRequest(
              { socketPath: bareSocket, path: '/act', method: 'POST' },
              (res) => {
                res.resume();
                res.on('end', () => resolve());
              },
            );
            req.end();
          }),
      ),
    );
  for (const w of waiting) w.end();
  await new Promise<void>((r) => bare.close(() => r()));
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  return { status, bareRequest, event: med(events), bareEvent: med(bareEvents) };
}

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

        progress(`sling to a running session with ${fleet} sessions`);
        const slings: number[] = [];
        const bareStarts: number[] = [];
        for (let i = 0; i < (QUICK ? 3 : 7); i++) {
          const bead = JSON.parse(
            (await belfry(dir, 'bead', 'create', `extra ${i}`, '--rig', 'api', '--json')).stdout,
          ) as { id: string };
          const t0 = performance.now();
          const { agent } = JSON.parse(
            (await belfry(dir, 'sling', bead.id, 'api', '--json')).stdout,
          ) as { agent: string };
          const session = agent.replace('/', '-');
          for (let k = 0; k < 1_000; k++) {
            const listed = await run('tmux', [
              '-L',
              socket,
              'list-panes',
              '-t',
              `=${session}:`,
              '-F',
              '#{pane_dead}',
            ]).catch(() => undefined);
            if (listed?.stdout.trim() === '0') break;
            await new Promise((r) => setTimeout(r, 10));
          }
          slings.push(performance.now() - t0);
          const t1 = performance.now();
          await run('tmux', [
            '-L',
            `${socket}-bare`,
            '-f',
            '/dev/null',
            'new-session',
            '-d',
            '-s',
            `s${i}`,
            'sleep',
            '100000',
          ]);
          bareStarts.push(performance.now() - t1);
        }
        await run('tmux', ['-L', `${socket}-bare`, 'kill-server']).catch(() => undefined);
        rows.push({
          name: 'belfry sling → session running',
          size: fleet,
          belfry: med(slings),
          baseline: med(bareStarts),
          ratio: med(bareStarts) / med(slings),
          unit: 'ms',
          note: `median ${med(slings).toFixed(0)} ms from the command to a running pane (the CLI's own start included)`,
        });

        progress(`the API on its socket with ${fleet} sessions`);
        const api = await apiFigures(join(dir, '.belfry', 'control.sock'));
        rows.push({
          name: 'GET /v1/status (keep-alive)',
          size: fleet,
          belfry: api.status,
          baseline: api.bareRequest,
          ratio: api.bareRequest / api.status,
          unit: 'µs',
          note: `${Math.round(1e6 / api.status)} requests/s (a bare server: ${Math.round(1e6 / api.bareRequest)})`,
        });
        rows.push({
          name: 'an operation → its event at a client',
          size: fleet,
          belfry: api.event,
          baseline: api.bareEvent,
          ratio: api.bareEvent / api.event,
          unit: 'ms',
          note: `median ${api.event.toFixed(1)} ms from POST /v1/rigs/api/park to its lifecycle event on GET /v1/events`,
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
