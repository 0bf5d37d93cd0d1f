import { fromPromise } from 'xstate';
import type { TownContext } from './context';
import type { Assessment, Situation } from './types';

/**
 * The default triage, when the town has none: mechanical rules. A docked rig's leftover sessions
 * are stopped; hooked work without sessions in an operational rig gets its Witness restarted.
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
    let timer: unknown;
    try {
      return await Promise.race([
        Promise.resolve().then(() => ctx.triage(input, { signal: abort.signal })),
        new Promise<never>((_, reject) => {
          timer = ctx.clock.setTimeout(() => {
            abort.abort();
            reject(new Error(`boot: triage did not answer within ${ctx.timings.bootTimeoutMs} ms`));
          }, ctx.timings.bootTimeoutMs);
        }),
      ]);
    } finally {
      ctx.clock.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  });
}
