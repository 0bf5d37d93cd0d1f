import { fromPromise } from 'xstate';
import { withDeadline } from './boundedWait';
import type { TownContext } from './context';
import type { Assessment, Situation } from './types';

/**
 * The default triage, when the town has none: mechanical rules. A docked rig's leftover sessions
 * are stopped; hooked work without sessions in an operational rig gets its Witness restarted; a
 * Witness the Deacon already restarted needs nothing more; a pending warrant is executed.
 */
export function mechanicalTriage(situation: Situation): Assessment {
  switch (situation.kind) {
    case 'docked-rig-with-sessions':
      return {
        action: 'stop-sessions',
        reason: `rig ${situation.rig} is docked but ${situation.sessions.length} session(s) still run`,
      };
    case 'hooks-without-sessions':
      return {
        action: 'restart-witness',
        reason: `rig ${situation.rig} has hooked work but no running session`,
      };
    case 'witness-restarted':
      return {
        action: 'none',
        reason: `the new witness adopts rig ${situation.rig}'s running sessions (${situation.error})`,
      };
    case 'warrant':
      return {
        action: 'execute',
        reason: `warrant ${situation.warrantId} filed by ${situation.filedBy}: ${situation.reason}`,
      };
  }
}

/**
 * Boot: a short-lived actor that runs the town's `triage` on one situation, bounded by
 * `bootTimeoutMs`. Its output is the assessment; the Deacon acts on it.
 */
export function bootLogic(ctx: TownContext) {
  return fromPromise<Assessment, Situation>(async ({ input, signal }) => {
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await withDeadline(
        ctx.clock,
        Promise.resolve().then(() => ctx.triage(input, { signal: abort.signal })),
        ctx.timings.bootTimeoutMs,
        abort,
        () => new Error(`boot: triage did not answer within ${ctx.timings.bootTimeoutMs} ms`),
      );
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  });
}
