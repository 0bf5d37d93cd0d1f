import type { JsonObject } from '../store/Store';
import type { TownContext } from './context';
import { incidentKey, parseIncident } from './incidents';

/* The patrol's `convoys` step: landed convoys closed (news), stalled ones reported once. */

/**
 * The `convoys` step: closes the convoys whose work is finished (news for the Mayor, resolved at
 * once), ends the stall incidents of convoys that moved, and reports each new stall once.
 */
export async function checkConvoys(ctx: TownContext): Promise<JsonObject> {
  const now = ctx.clock.now();
  const closed = await ctx.model.convoys.closeFinished();
  for (const convoy of closed) {
    ctx.emit({ type: 'convoy.closed', convoyId: convoy.id });
    // News, not an incident: the Mayor hears it once per landing, and it is closed at once (a
    // convoy that reopens and lands again is news again).
    await ctx.report({
      incidentKey: incidentKey({ kind: 'convoy-landed', convoyId: convoy.id }),
      severity: 'info',
      title: `convoy ${convoy.id} landed: ${convoy.title}`,
      details: { convoyId: convoy.id, beads: convoy.beadIds.length },
      source: 'deacon',
    });
    await ctx.model.reports.resolve(incidentKey({ kind: 'convoy-landed', convoyId: convoy.id }));
    await ctx.model.reports.resolve(incidentKey({ kind: 'convoy-stalled', convoyId: convoy.id }));
  }
  // A stall is over once the convoy made progress (or closed): a later stall is a new incident.
  for (const report of await ctx.model.reports.open()) {
    const incident = parseIncident(report.incidentKey);
    if (incident?.kind !== 'convoy-stalled') continue;
    const convoy = await ctx.model.convoys.get(incident.convoyId);
    if (convoy?.status !== 'open' || convoy.lastProgressAt > report.firstAt)
      await ctx.model.reports.resolve(report.incidentKey);
  }
  let stalled = 0;
  for (const convoy of await ctx.model.convoys.stalled(now - ctx.timings.convoyStallMs)) {
    const key = incidentKey({ kind: 'convoy-stalled', convoyId: convoy.id });
    if (await ctx.model.reports.byIncident(key)) continue;
    stalled++;
    ctx.emit({ type: 'convoy.stalled', convoyId: convoy.id, sinceMs: now - convoy.lastProgressAt });
    await ctx.report({
      incidentKey: key,
      severity: 'medium',
      title: `convoy ${convoy.id} (${convoy.title}) has made no progress for ${Math.round((now - convoy.lastProgressAt) / 60_000)} min`,
      details: {
        convoyId: convoy.id,
        openBeads: convoy.openCount,
        lastProgressAt: convoy.lastProgressAt,
      },
      source: 'deacon',
    });
  }
  return { closed: closed.map((c) => c.id), stalled };
}
