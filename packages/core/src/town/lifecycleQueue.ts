import type { LifecycleAction, LifecycleRequest } from '../model/types';
import type { JsonValue } from '../store/Store';
import { errorMessage } from './boundedWait';
import type { TownContext } from './context';

/**
 * Thrown by a lifecycle request's action when the request cannot be carried out yet but will
 * be (the rig's Witness, which owns its sessions, is still starting): the claim is given back
 * and the request waits for the worker's next wake instead of failing.
 */
export class NotReadyYet extends Error {
  override readonly name = 'NotReadyYet';
}

/**
 * Carries out the queued lifecycle requests of `actions` until none is left: each is claimed
 * with a lease, acted on, then completed (or failed) with the claim's token, and announced.
 *
 * @returns the ids of the requests done and failed.
 */
export async function drainLifecycle(
  ctx: TownContext,
  claimer: string,
  actions: readonly LifecycleAction[],
  act: (request: LifecycleRequest) => Promise<JsonValue>,
): Promise<{ done: string[]; failed: string[] }> {
  const done: string[] = [];
  const failed: string[] = [];
  for (;;) {
    const request = await ctx.model.lifecycle.claimNext({
      claimer,
      leaseMs: ctx.timings.leaseMs,
      actions,
    });
    if (!request) return { done, failed };
    const token = request.claim?.token as string;
    const { id: requestId, action, target } = request;
    try {
      const result = await act(request);
      await ctx.model.lifecycle.complete(requestId, { token, result });
      done.push(requestId);
      ctx.emit({ type: 'lifecycle.done', requestId, action, target });
    } catch (error) {
      if (error instanceof NotReadyYet) {
        // It waits, first in line, for the next wake (the requests after it wait too: they are
        // carried out in the order they were made).
        await ctx.model.lifecycle.release(requestId, { token });
        return { done, failed };
      }
      await ctx.model.lifecycle.fail(requestId, { token, error: errorMessage(error) });
      failed.push(requestId);
      ctx.emit({ type: 'lifecycle.failed', requestId, action, target, error: errorMessage(error) });
    }
  }
}
