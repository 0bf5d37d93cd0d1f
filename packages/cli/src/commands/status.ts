import type { LifecycleRequest, Report, TownStatus } from '@belfry/core';
import type { Command } from 'commander';
import { followEvents } from '../api/events';
import { DaemonLock, type DaemonState, daemonPaths, readJson } from '../runtime';
import { type Context, EXIT, Exit, type Register } from './context';

/** What `GET /v1/status` answers. */
interface LiveStatus {
  town: TownStatus;
  incidents: Report[];
  lifecycleQueue: LifecycleRequest[];
}

/** What every view of the status draws: the tree, whether it is live, and how old. */
type StatusView = TownStatus & {
  daemonRunning: boolean;
  live: boolean;
  stale: boolean;
  asOf: number | null;
  incidents?: readonly Report[];
  lifecycleQueue?: readonly LifecycleRequest[];
};

/** `status --watch` redraws at most this often, however many events come. */
const REDRAW_MIN_MS = 250;
/** …and at least this often (ages and countdowns move without events). */
const REDRAW_MAX_MS = 5_000;

/** `belfry status`. */
export const register: Register = (program: Command, c: Context) => {
  program
    .command('status')
    .description(
      'the tree: rigs, witnesses, polecats with their sessions, open incidents and the lifecycle queue (live from the daemon)',
    )
    .option('-w, --watch', 'redraw as the town changes, until Ctrl-C (JSON: one document a line)')
    .action(async (opts: { watch?: boolean }, cmd: Command) => {
      const paths = daemonPaths(c.cfg(cmd));
      const liveData = (now: LiveStatus): StatusView => ({
        daemonRunning: true,
        live: true,
        stale: false,
        asOf: Date.now(),
        ...now.town,
        incidents: now.incidents,
        lifecycleQueue: now.lifecycleQueue,
      });
      if (opts.watch) return watch(c, cmd, paths.socket, liveData);
      // Live from the running town; the daemon's last snapshot only when it does not answer.
      const now = await c.api<LiveStatus>(cmd, 'GET', '/v1/status').catch(() => undefined);
      if (now) {
        const data = liveData(now);
        c.print(cmd, data, () => renderTree(data, true, c.paint));
        return;
      }
      const running = DaemonLock.held(paths.lock);
      const status = readJson<TownStatus>(paths.status);
      if (!status)
        throw new Exit(
          running ? EXIT.FAILED : EXIT.NOT_RUNNING,
          running
            ? 'the daemon has not written its status yet'
            : 'no daemon runs, and none has run here',
        );
      // The tree is the daemon's last snapshot: say how old it is, and never pass a stopped or
      // silent daemon's tree off as the town now.
      const state = readJson<DaemonState>(paths.state);
      const asOf = status.daemon.lastHeartbeat ?? state?.lastHeartbeat ?? null;
      const stale =
        running && state !== undefined && Date.now() - state.lastHeartbeat > 3 * state.heartbeatMs;
      // The tree as it was: the daemon's own line says whether it runs now, never the snapshot.
      const data = {
        daemonRunning: running,
        live: false,
        stale,
        asOf,
        ...status,
        daemon: { ...status.daemon, running },
      };
      c.print(cmd, data, () => {
        const when = asOf === null ? 'an unknown time' : new Date(asOf).toISOString();
        const label = !running
          ? `${c.paint('31', 'daemon stopped')}; the tree as of ${when}, when it last beat:`
          : stale
            ? `${c.paint('33', 'daemon stale')} (no heartbeat for ${Math.round((Date.now() - (state?.lastHeartbeat ?? 0)) / 1000)} s); the tree as of ${when}:`
            : undefined;
        return [...(label ? [label] : []), renderTree(data, running, c.paint)].join('\n');
      });
      if (!running) throw new Exit(EXIT.NOT_RUNNING, '');
    });
};

/**
 * `status --watch`: the live status drawn again after each burst of events (and every few
 * seconds), on a terminal in place; for a pipe or `--json`, one after the other. Ends when the
 * daemon goes away (exit 4), or with Ctrl-C.
 */
async function watch(
  c: Context,
  cmd: Command,
  socket: string,
  liveData: (now: LiveStatus) => StatusView,
): Promise<void> {
  const inPlace = !c.json(cmd) && process.stdout.isTTY === true;
  let changed = true;
  let gone = false;
  // Only what happens from now on marks a change: the kept events are not read again.
  const events = followEvents(
    socket,
    true,
    () => {
      changed = true;
    },
    { replay: false },
  ).then(() => {
    gone = true;
  });
  let last = 0;
  for (;;) {
    const since = Date.now() - last;
    if (gone) break;
    if ((changed && since >= REDRAW_MIN_MS) || since >= REDRAW_MAX_MS) {
      changed = false;
      last = Date.now();
      const now = await c.api<LiveStatus>(cmd, 'GET', '/v1/status').catch(() => undefined);
      if (!now) break;
      const data = liveData(now);
      if (c.json(cmd)) c.out(`${JSON.stringify(data)}\n`);
      else
        c.out(
          `${inPlace ? '\u001b[H\u001b[2J' : '\n'}${c.paint('2', new Date(data.asOf ?? Date.now()).toISOString())}\n${renderTree(data, true, c.paint)}\n`,
        );
    }
    await Promise.race([events, new Promise((r) => setTimeout(r, 50))]);
  }
  throw new Exit(EXIT.NOT_RUNNING, 'the daemon stopped; nothing more to watch');
}

/** The status data every view draws. */
function renderable(
  s: TownStatus & {
    daemonRunning: boolean;
    incidents?: Report[];
    lifecycleQueue?: LifecycleRequest[];
  },
) {
  return s;
}

function renderTree(
  s: StatusView,
  running: boolean,
  paint: (c: string, t: string) => string,
): string {
  const now = Date.now();
  const backoff = (until: number | undefined) =>
    until === undefined
      ? ''
      : `, ${paint('33', 'backoff')}: restarts in ${Math.max(0, Math.round((until - now) / 1000))} s`;
  // A stopped daemon's tree is what was: every state says so.
  const was = (state: string | undefined) => (s.live ? `${state}` : `was ${state}`);
  const lines = [
    `daemon: ${running ? paint('32', 'running') : paint('31', 'stopped')}${s.daemon.lastHeartbeat ? `, last heartbeat ${new Date(s.daemon.lastHeartbeat).toISOString()}` : ''}, ${s.daemon.heartbeatCount} heartbeats`,
    `deacon: ${was(s.deacon.state)}, ${s.deacon.restarts} restarts${backoff(s.deacon.backoffUntil)}${s.deacon.crashLoop ? `, ${paint('31', 'in a crash loop')}` : ''}`,
  ];
  for (const rig of s.rigs) {
    const draining =
      rig.drainUntil === undefined
        ? ''
        : `, draining: its work may finish until ${new Date(rig.drainUntil).toISOString()}`;
    lines.push(
      `rig ${rig.name} (${rig.state}${draining}): witness ${was(rig.witness?.state ?? 'none')}, ${rig.witness?.restarts ?? 0} restarts${backoff(rig.witness?.backoffUntil)}`,
    );
    for (const p of rig.polecats) {
      const exit = p.lastExit;
      // No work and no session is a polecat at rest, not a fault.
      const session =
        p.beadId === undefined && p.session.state === 'missing'
          ? 'idle (no session)'
          : p.session.state;
      lines.push(
        `  ${p.agent}: ${was(session)}${p.beadId ? ` on ${p.beadId}` : ''}, ${p.restarts} restarts${backoff(p.backoffUntil)}, ${p.respawns} respawns${p.session.lastActivityAt ? `, active ${new Date(p.session.lastActivityAt).toISOString()}` : ''}${exit ? `; last exit: ${exit.reason}${exit.exitCode === null ? '' : ` code ${exit.exitCode}`}${exit.signal ? ` ${exit.signal}` : ''}` : ''}`,
      );
    }
  }
  lines.push(`gates open: ${s.gates.open}, convoys open: ${s.convoys.open}`);
  const age = (at: number) => `${Math.max(0, Math.round((now - at) / 1000))} s ago`;
  if (s.lifecycleQueue !== undefined)
    lines.push(
      s.lifecycleQueue.length === 0
        ? 'lifecycle queue: empty'
        : `lifecycle queue: ${s.lifecycleQueue.map((r) => `${r.action} ${r.target} (${r.status}, asked ${age(r.requestedAt)})`).join('; ')}`,
    );
  else lines.push(`lifecycle requests pending: ${s.lifecycle.pending}`);
  if (s.incidents !== undefined) {
    lines.push(
      s.incidents.length === 0 ? 'incidents: none open' : `incidents: ${s.incidents.length} open`,
    );
    for (const r of s.incidents)
      lines.push(
        `  ${paint(r.severity === 'high' || r.severity === 'critical' ? '31' : '33', r.severity)} ${r.title} (${r.count}×, since ${new Date(r.firstAt).toISOString()})`,
      );
  }
  return lines.join('\n');
}
