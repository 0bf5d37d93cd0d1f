import type { SessionStatus } from '../driver/SessionDriver';
import type { JsonObject } from '../store/Store';
import type { TownContext } from './context';
import { incidentKey, parseIncident } from './incidents';
import { agentSession } from './names';
import type { PatrolSummary, TownHealth } from './types';

/* The patrol's `report` step: incidents reviewed, the town's health read, the Mayor told. */

/**
 * Closes the incidents whose cause is gone, so open reports stay the ones that need someone: a
 * gate closed (by its evaluator or by hand), a situation Boot was called for that this patrol no
 * longer found, a warrant no longer pending, a blocked bead that was put back to work. The rest
 * resolve where they are detected (evaluator, poller and witness outages, stalls, the crash loop).
 */
async function reviewIncidents(ctx: TownContext, results: JsonObject): Promise<number> {
  const seen = new Set(
    (
      (results.witnesses as { triaged?: Array<{ rig: string; kind: string }> } | undefined)
        ?.triaged ?? []
    ).map((t) => incidentKey({ kind: 'boot', situation: t.kind, rig: t.rig })),
  );
  let resolved = 0;
  for (const report of await ctx.model.reports.open()) {
    const key = report.incidentKey;
    const incident = parseIncident(key);
    let over = false;
    switch (incident?.kind) {
      case 'gate-escalated':
      case 'gate-timeout':
        over = (await ctx.model.gates.get(incident.gateId))?.status !== 'open';
        break;
      case 'boot':
        over = !seen.has(key);
        break;
      case 'warrant-held':
      case 'warrant-failed':
        over = (await ctx.model.warrants.get(incident.warrantId))?.status !== 'pending';
        break;
      case 'respawn-limit': {
        const bead = await ctx.model.beads.get(incident.beadId);
        over = bead === undefined || bead.status !== 'blocked';
        break;
      }
    }
    if (over && (await ctx.model.reports.resolve(key))) resolved++;
  }
  return resolved;
}

/** How many unhealthy agents a rig's health names. */
const TROUBLE_LISTED = 20;

/**
 * The town's health for the Mayor's summary: each rig's hooked agents, healthy or not by their
 * session (from the town's shared reading), and the open incidents by severity.
 */
async function readHealth(ctx: TownContext): Promise<TownHealth> {
  const health: TownHealth = {
    healthy: 0,
    unhealthy: 0,
    unknown: 0,
    rigs: [],
    incidents: { open: 0, info: 0, low: 0, medium: 0, high: 0, critical: 0 },
  };
  for (const rig of await ctx.model.rigs.list()) {
    const entry: TownHealth['rigs'][number] = {
      rig: rig.id,
      state: rig.state,
      healthy: 0,
      unhealthy: 0,
      unknown: 0,
      trouble: [],
    };
    for (const hook of await ctx.model.hooks.list({ rig: rig.id })) {
      let status: SessionStatus;
      try {
        status = await ctx.sessions.status(agentSession(hook.id));
      } catch {
        // A driver that cannot tell now (its own outage is reported where it is found): the
        // summary says so rather than guess, and the patrol's report still goes out.
        entry.unknown++;
        continue;
      }
      if (ctx.healthy(status)) {
        entry.healthy++;
        continue;
      }
      entry.unhealthy++;
      if (entry.trouble.length < TROUBLE_LISTED)
        entry.trouble.push({ agent: hook.id, session: status.state });
    }
    health.healthy += entry.healthy;
    health.unhealthy += entry.unhealthy;
    health.unknown += entry.unknown;
    health.rigs.push(entry);
  }
  for (const report of await ctx.model.reports.open()) {
    health.incidents.open++;
    health.incidents[report.severity]++;
  }
  return health;
}

/**
 * The patrol's last step: closes the incidents whose cause is gone, reads the town's health, and
 * sends the Mayor the patrol's summary (its steps' results and the health).
 */
export async function reportPatrol(ctx: TownContext, results: JsonObject): Promise<JsonObject> {
  const { molecule, startedAt, ...steps } = results as {
    molecule: string;
    startedAt: number;
  } & JsonObject;
  const patrol: PatrolSummary = {
    moleculeId: molecule,
    startedAt,
    finishedAt: ctx.clock.now(),
    steps,
  };
  const resolved = await reviewIncidents(ctx, results);
  const health = await readHealth(ctx);
  await ctx.tellMayor({ kind: 'summary', at: ctx.clock.now(), patrol: { ...patrol, health } });
  return { sent: true, resolved, health: health as unknown as JsonObject };
}
