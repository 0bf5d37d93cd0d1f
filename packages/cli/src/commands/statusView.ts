import type { LifecycleRequest, Report, TownStatus } from '@belfry/core';

/** What `GET /v1/status` answers. */
export interface LiveStatus {
  town: TownStatus;
  incidents: Report[];
  lifecycleQueue: LifecycleRequest[];
}

/** What every view of the status draws: the tree, whether it is live, and how old. */
export type StatusView = TownStatus & {
  daemonRunning: boolean;
  live: boolean;
  stale: boolean;
  asOf: number | null;
  incidents?: readonly Report[];
  lifecycleQueue?: readonly LifecycleRequest[];
};

/** The status the running daemon answered, as every view draws it. */
export function liveView(now: LiveStatus): StatusView {
  return {
    daemonRunning: true,
    live: true,
    stale: false,
    asOf: Date.now(),
    ...now.town,
    incidents: now.incidents,
    lifecycleQueue: now.lifecycleQueue,
  };
}

/** The status as text: the tree, one line per actor, then gates, the lifecycle queue, incidents. */
export function renderTree(
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
