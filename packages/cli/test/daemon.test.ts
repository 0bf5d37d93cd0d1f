import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { CONFIG_FILE } from '@belfry/cli';
import { createTownModel } from '@belfry/core';
import { createTmuxDriver } from '@belfry/driver-tmux';
import { SqliteStore } from '@belfry/store-sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonLock } from '../src/daemonLock';
import { callDaemon, DaemonLog, writeJsonAtomic } from '../src/runtime';
import { BIN, belfry, daemonState, eventually, NODE_ARGS } from './bin';

let serial = 0;
const towns: Array<{ dir: string; socket: string }> = [];

/** A town folder with a config for tests: tmux on a socket of its own, fast heartbeats. */
function town(): { dir: string; socket: string } {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-daemon-'));
  const socket = `belfry-cli-test-${process.pid}-${++serial}`;
  writeFileSync(
    join(dir, CONFIG_FILE),
    `store:
  path: .belfry/town.db
driver:
  kind: tmux
  socket: ${socket}
  stopGraceMs: 500
gates:
  timer: true
  human: true
  github: false
rigs: [api]
agent:
  command: ["sh", "-c", "(while :; do echo working; sleep 1; done) & while read -r line; do echo \\"got: $line\\"; done"]
timings:
  heartbeatMs: 200
  patrolIntervalMs: 400
  surveyMs: 200
`,
  );
  const t = { dir, socket };
  towns.push(t);
  return t;
}

const state = daemonState;

afterEach(async () => {
  for (const t of towns.splice(0)) {
    await belfry(t.dir, 'daemon', 'stop', '--timeout', '10000');
    await createTmuxDriver({ socket: { name: t.socket } }).killServer();
  }
});

describe('belfry daemon (real processes)', () => {
  it('start returns once it holds the lock; a second start is refused (3); stop is graceful; stop again says none runs (4)', async () => {
    const { dir } = town();
    expect((await belfry(dir, 'daemon', 'status', '--json')).out).toContain('"state": "stopped"');
    const started = await belfry(dir, 'daemon', 'start');
    expect(started).toMatchObject({ code: 0 });
    expect(started.out).toMatch(/daemon started \(pid \d+\)/);
    const status = JSON.parse((await belfry(dir, 'daemon', 'status', '--json')).out) as {
      state: string;
      pid: number;
    };
    expect(status.state).toBe('running');
    expect(statSync(join(dir, '.belfry', 'control.sock')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, '.belfry', 'town.db')).mode & 0o777).toBe(0o600);
    const again = await belfry(dir, 'daemon', 'start');
    expect(again.code).toBe(3);
    expect(again.err).toContain('already runs');
    await eventually('heartbeats', () => (state(dir)?.heartbeatCount ?? 0) >= 2);
    expect((await belfry(dir, 'daemon', 'stop')).code).toBe(0);
    expect(JSON.parse((await belfry(dir, 'daemon', 'status', '--json')).out).state).toBe('stopped');
    expect((await belfry(dir, 'daemon', 'stop')).code).toBe(4);
    const logs = await belfry(dir, 'daemon', 'logs', '-n', '2');
    expect(logs.out.trim().split('\n')).toHaveLength(2);
    expect(logs.out).toContain('stopped');
  }, 90_000);

  it('requests made while the daemon is down wait in the store and are carried out when it starts', async () => {
    const { dir } = town();
    const parked = await belfry(dir, 'rig', 'park', 'api', '--json');
    expect(parked.code).toBe(0);
    const { request, daemon } = JSON.parse(parked.out) as {
      request: { id: string };
      daemon: string;
    };
    expect(daemon).toBe('not running');
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    await eventually('the park to be carried out', async () =>
      (await belfry(dir, 'daemon', 'logs', '-n', '100')).out.includes(
        `lifecycle.done requestId=${request.id} action=park target=api`,
      ),
    );
    const tree = JSON.parse((await belfry(dir, 'status', '--json')).out) as {
      rigs: Array<{ name: string; state: string }>;
    };
    expect(tree.rigs.find((r) => r.name === 'api')?.state).toBe('parked');
  }, 90_000);

  it('a SIGKILLed daemon is a non-event: its tmux polecat keeps running, start re-attaches and heartbeats resume', async () => {
    const { dir, socket } = town();
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const bead = JSON.parse(
      (await belfry(dir, 'bead', 'create', 'fix the login bug', '--rig', 'api', '--json')).out,
    ) as { id: string };
    const slung = JSON.parse((await belfry(dir, 'sling', bead.id, 'api', '--json')).out) as {
      agent: string;
    };
    const session = slung.agent.replace('/', '-');
    const tmux = createTmuxDriver({ socket: { name: socket } });
    const before = await eventually('the polecat session', async () => {
      const s = await tmux.status(session);
      return s.state === 'running' ? s : undefined;
    });

    const daemonPid = (state(dir) as { pid: number }).pid;
    process.kill(daemonPid, 'SIGKILL');
    await eventually('the daemon to be gone', async () => {
      try {
        process.kill(daemonPid, 0);
        return false;
      } catch {
        return true;
      }
    });
    // The kernel released its lock: status says stopped, not a guess from a pid.
    expect(JSON.parse((await belfry(dir, 'daemon', 'status', '--json')).out).state).toBe('stopped');
    expect(await tmux.status(session)).toMatchObject({
      state: 'running',
      pid: before.pid,
      epoch: before.epoch,
    });

    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const newPid = (state(dir) as { pid: number }).pid;
    expect(newPid).not.toBe(daemonPid);
    await eventually('heartbeats to resume', () => {
      const s = state(dir);
      return s !== undefined && s.pid === newPid && s.heartbeatCount >= 3;
    });
    // Re-attached, not respawned: the same session, process and epoch.
    expect(await tmux.status(session)).toMatchObject({
      state: 'running',
      pid: before.pid,
      epoch: before.epoch,
    });
    const tree = JSON.parse((await belfry(dir, 'status', '--json')).out) as {
      rigs: Array<{
        polecats: Array<{ agent: string; respawns: number; session: { state: string } }>;
      }>;
    };
    expect(tree.rigs[0]?.polecats.find((p) => p.agent === slung.agent)).toMatchObject({
      respawns: 0,
      session: { state: 'running' },
    });
  }, 120_000);

  it('status shows a daemon whose heartbeat stopped as stale', async () => {
    const { dir } = town();
    await belfry(dir, 'bead', 'create', 'x'); // makes .belfry
    const lock = DaemonLock.acquire(join(dir, '.belfry', 'daemon.lock'));
    try {
      writeJsonAtomic(join(dir, '.belfry', 'state.json'), {
        pid: process.pid,
        startedAt: Date.now() - 3_600_000,
        lastHeartbeat: Date.now() - 600_000,
        heartbeatCount: 9,
        heartbeatMs: 60_000,
      });
      const status = await belfry(dir, 'daemon', 'status');
      expect(status.out).toMatch(/^stale: pid \d+/);
    } finally {
      lock?.release();
    }
  }, 60_000);

  it('gate approve and reject work on the store, with who and why, refusing a non-approver', async () => {
    const { dir } = town();
    await belfry(dir, 'bead', 'create', 'x');
    const store = SqliteStore.open({ path: join(dir, '.belfry', 'town.db') });
    const model = createTownModel({ store });
    const gate = await model.gates.create({
      type: 'human',
      spec: { prompt: 'ship?', approvers: ['ada'] },
    });
    const other = await model.gates.create({ type: 'human', spec: {} });
    await store.close();
    const refused = await belfry(dir, 'gate', 'approve', gate.id, '--by', 'mallory');
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('its approvers are ada');
    expect(
      (await belfry(dir, 'gate', 'approve', gate.id, '--by', 'ada', '--comment', 'looks good'))
        .code,
    ).toBe(0);
    expect(
      (await belfry(dir, 'gate', 'reject', other.id, '--by', 'grace', '--comment', 'unsafe')).code,
    ).toBe(0);
    const list = JSON.parse((await belfry(dir, 'gate', 'list', '--json')).out) as Array<{
      id: string;
      status: string;
      result: Record<string, unknown>;
      failure?: string;
    }>;
    expect(list.find((g) => g.id === gate.id)).toMatchObject({
      status: 'closed',
      result: { decision: 'approved', by: 'ada', comment: 'looks good' },
    });
    expect(list.find((g) => g.id === other.id)).toMatchObject({
      status: 'closed',
      failure: 'rejected by grace: unsafe',
    });
    expect(JSON.parse((await belfry(dir, 'gate', 'list', '--open', '--json')).out)).toEqual([]);
  }, 60_000);

  it('the agent’s loop live: sling starts the session at once, the agent runs `belfry done` inside its tmux session, the bead is done and the session retired; nudge, agent logs and events go through the daemon', async () => {
    const { dir, socket } = town();
    const script = join(dir, 'agent.sh');
    writeFileSync(
      script,
      `#!/bin/sh
echo "agent $BELFRY_AGENT on $BELFRY_BEAD"
while read -r line; do
  echo "got: $line"
  case "$line" in
    finish*) ${[process.execPath, ...NODE_ARGS, BIN].map((w) => `'${w}'`).join(' ')} done && echo "done sent" ;;
  esac
done
`,
      { mode: 0o755 },
    );
    const config = join(dir, CONFIG_FILE);
    writeFileSync(
      config,
      readFileSync(config, 'utf8').replace(/command: .*/, () => `command: ["${script}"]`),
    );
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const bead = JSON.parse(
      (await belfry(dir, 'bead', 'create', 'write the report', '--rig', 'api', '--json')).out,
    ) as { id: string };
    const slingAt = Date.now();
    const slung = JSON.parse((await belfry(dir, 'sling', bead.id, 'api', '--json')).out) as {
      agent: string;
      daemon: string;
    };
    expect(slung.daemon).toBe('running');
    const tmux = createTmuxDriver({ socket: { name: socket } });
    const session = slung.agent.replace('/', '-');
    await eventually(
      'the session running',
      async () => (await tmux.status(session)).state === 'running',
      10_000,
    );
    const startedWithin = Date.now() - slingAt;
    console.log(
      `sling → session running: ${startedWithin} ms (the survey interval is 200 ms here)`,
    );
    expect(startedWithin).toBeLessThan(5_000);

    const nudged = await belfry(dir, 'nudge', slung.agent, 'how is it going');
    expect(nudged).toMatchObject({ code: 0 });
    const logs = await eventually('the agent’s output', async () => {
      const out = (await belfry(dir, 'agent', 'logs', slung.agent, '-n', '20')).out;
      return out.includes('got: how is it going') ? out : undefined;
    });
    expect(logs).toContain(`agent ${slung.agent} on ${bead.id}`);

    // The agent itself reports done, from inside its session.
    expect((await belfry(dir, 'nudge', slung.agent, 'finish now')).code).toBe(0);
    await eventually(
      'the bead done and the session retired',
      async () => {
        const answer = await callDaemon<{ status: string }>(
          join(dir, '.belfry', 'control.sock'),
          'GET',
          `/v1/beads/${bead.id}`,
        );
        const state = (await tmux.status(session)).state;
        return answer?.body.status === 'done' && state !== 'running';
      },
      30_000,
    );
    const events = await belfry(dir, 'events', '--json');
    expect(events.code).toBe(0);
    const types = events.out
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { data: { type: string } }).data.type);
    expect(types).toContain('polecat.spawned');
    expect(types).toContain('polecat.done');
    const notRunning = await belfry(dir, 'done', bead.id, '--agent', slung.agent);
    expect(notRunning.code).toBe(1);
    expect(notRunning.err).toMatch(/no work on its hook|holds bead/);
  }, 120_000);

  it('the tmux server killed four times under two agents: each time they are started again, no respawn is counted, no bead is blocked, one incident per death, and nothing the old sessions left runs on', async () => {
    const { dir, socket } = town();
    // An agent that leaves a setsid child behind (it keeps the session's marker).
    const config = join(dir, CONFIG_FILE);
    writeFileSync(
      config,
      readFileSync(config, 'utf8').replace(
        /command: .*/,
        () =>
          `command: ["sh", "-c", "setsid sh -c 'echo $$ >> ${dir}/children; exec sleep 1000' & while read -r line; do echo \\"got: $line\\"; done"]`,
      ),
    );
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const beads: string[] = [];
    for (const title of ['one', 'two']) {
      const bead = JSON.parse(
        (await belfry(dir, 'bead', 'create', title, '--rig', 'api', '--json')).out,
      ) as { id: string };
      expect((await belfry(dir, 'sling', bead.id, 'api')).code).toBe(0);
      beads.push(bead.id);
    }
    const tmux = createTmuxDriver({ socket: { name: socket } });
    const running = async (n: number) =>
      (await tmux.list()).filter((s) => s.state === 'running').length >= n;
    const children = () =>
      existsSync(join(dir, 'children'))
        ? readFileSync(join(dir, 'children'), 'utf8').trim().split('\n').map(Number)
        : [];
    const alive = (pid: number) => {
      try {
        return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
      } catch {
        return false;
      }
    };
    const spawned = () =>
      readFileSync(join(dir, '.belfry', 'daemon.log'), 'utf8').split('"event":"polecat.spawned"')
        .length - 1;
    for (let death = 1; death <= 4; death++) {
      // Both agents started (primed and recorded), not just their sessions made.
      await eventually('both agents spawned', () => spawned() >= 2 * death, 30_000);
      await eventually('both agents running', () => running(2), 30_000);
      await eventually('their children', () => children().length >= 2 * death, 30_000);
      await tmux.killServer();
      await eventually('the agents started on a new server', () => running(2), 60_000);
    }
    await eventually('what the dead servers’ sessions left to be ended', () =>
      children()
        .slice(0, -2)
        .every((pid) => !alive(pid)),
    );
    const tree = JSON.parse((await belfry(dir, 'status', '--json')).out) as {
      rigs: Array<{ polecats: Array<{ respawns: number; beadId?: string }> }>;
    };
    const polecats = tree.rigs.flatMap((r) => r.polecats);
    expect(polecats.map((p) => p.respawns)).toEqual([0, 0]);
    expect(polecats.map((p) => p.beadId).sort()).toEqual([...beads].sort());
    const store = SqliteStore.open({ path: join(dir, '.belfry', 'town.db'), create: false });
    try {
      const model = createTownModel({ store });
      const lost = (await model.reports.open()).filter((r) =>
        r.incidentKey.startsWith('session-host-lost:tmux:'),
      );
      expect(lost).toHaveLength(4);
      for (const r of lost) expect(r.count).toBe(2);
    } finally {
      await store.close();
    }
  }, 240_000);

  it('install --systemd prints a unit that restarts on failure within a start limit, stops only the daemon (KillMode=process: agents outlive it), and how to enable it', async () => {
    const { dir } = town();
    const unit = await belfry(dir, 'daemon', 'install', '--systemd');
    expect(unit.code).toBe(0);
    const service = unit.out.slice(unit.out.indexOf('[Service]'), unit.out.indexOf('[Install]'));
    const directives = service.split('\n').filter((l) => /^[A-Za-z]+=/.test(l));
    expect(directives).toContain('KillMode=process');
    expect(directives).toContain('Restart=on-failure');
    expect(directives).toContain('KillSignal=SIGTERM');
    expect(unit.out).toMatch(/^StartLimitBurst=\d+$/m);
    expect(unit.out).toMatch(/^StartLimitIntervalSec=\d+$/m);
    expect(unit.out).toContain(`daemon run --config ${join(dir, CONFIG_FILE)}`);
    // Two towns in folders of the same name get two units.
    const other = join(mkdtempSync(join(tmpdir(), 'belfry-unit-')), basename(dir));
    mkdirSync(other);
    writeFileSync(join(other, CONFIG_FILE), readFileSync(join(dir, CONFIG_FILE), 'utf8'));
    const name = (out: string) => /belfry-[^\s/]+\.service/.exec(out)?.[0];
    const otherUnit = await belfry(other, 'daemon', 'install', '--systemd');
    expect(name(unit.out)).toMatch(new RegExp(`^belfry-${basename(dir)}-[0-9a-f]{8}\\.service$`));
    expect(name(otherUnit.out)).not.toBe(name(unit.out));
    for (const step of [
      'systemctl --user daemon-reload',
      'systemctl --user enable --now',
      'loginctl enable-linger',
    ])
      expect(unit.out).toContain(step);
  }, 60_000);
});

describe('the daemon log', () => {
  it('rotates past its size, keeping the configured number of old files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-log-'));
    const log = new DaemonLog(join(dir, 'daemon.log'), 1_000, 2);
    for (let i = 0; i < 200; i++) log.write(`line ${i} ${'x'.repeat(40)}`);
    expect(readdirSync(dir).sort()).toEqual(['daemon.log', 'daemon.log.1', 'daemon.log.2']);
    expect(statSync(join(dir, 'daemon.log')).size).toBeLessThan(1_200);
    expect(readFileSync(join(dir, 'daemon.log'), 'utf8')).toContain('line 199');
  });
});
