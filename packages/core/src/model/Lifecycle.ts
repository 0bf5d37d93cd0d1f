import { StoreError } from '../errors';
import { describe, fail } from '../internal/validate';
import { toFrozenJson } from '../store/json';
import type { JsonObject, JsonValue, StoreTx } from '../store/Store';
import { limited } from './Convoys';
import { type Ctx, checkJsonObject, checkMs, checkName, checkText, load } from './env';
import { requireRig } from './Rigs';
import type { LifecycleAction, LifecycleRequest } from './types';

const COLLECTION = 'lifecycle';

/** The actions on a rig (their target is a rig's name). */
const RIG_ACTIONS: ReadonlySet<LifecycleAction> = new Set(['park', 'unpark', 'dock', 'undock']);

/** The actions a lifecycle request can ask for. */
export const LIFECYCLE_ACTIONS: readonly LifecycleAction[] = [
  'start',
  'stop',
  'restart',
  'park',
  'unpark',
  'dock',
  'undock',
];

function checkAction(value: unknown, path: string): LifecycleAction {
  if (typeof value !== 'string' || !LIFECYCLE_ACTIONS.includes(value as LifecycleAction)) {
    fail(
      'INVALID_OPTION',
      path,
      `must be one of ${LIFECYCLE_ACTIONS.map((a) => `'${a}'`).join(', ')}; got ${describe(value)}`,
    );
  }
  return value as LifecycleAction;
}

/**
 * The durable lifecycle queue. Requests wait in order (`seq`). A worker claims the oldest with a
 * lease, acts, then finishes it with the claim's token; of two claimers, one wins. If the worker
 * dies, the lease runs out and the request can be claimed again, and the dead worker's token no
 * longer finishes it. Requests on one target are carried out in the order they were made: a
 * later request on a target is not handed out while an earlier one on it is unfinished (claimed,
 * even by a worker that died, until its lease runs out), so after a crash the operator's last
 * command still wins.
 */
export class Lifecycle {
  /** @internal */
  constructor(private readonly ctx: Ctx) {}

  /** Queues a request. */
  async request(input: {
    action: LifecycleAction;
    target: string;
    args?: JsonObject;
    requestedBy: string;
  }): Promise<LifecycleRequest> {
    const action = checkAction(input?.action, 'request.action');
    const target = checkName(input.target, 'request.target');
    const args = checkJsonObject(input.args, 'request.args');
    const requestedBy = checkName(input.requestedBy, 'request.requestedBy');
    return this.ctx.run(async (tx) => {
      // A rig's request names a rig that exists: refused at once (naming the rigs there are),
      // not found out later by the worker.
      if (RIG_ACTIONS.has(action)) await requireRig(tx, target);
      const request: LifecycleRequest = {
        id: this.ctx.env.newId('lc'),
        seq: await tx.nextSequence('lifecycle'),
        action,
        target,
        args,
        requestedBy,
        requestedAt: this.ctx.now(),
        status: 'requested',
        attempts: 0,
      };
      await tx.insert(COLLECTION, request);
      return request;
    });
  }

  /**
   * Claims the oldest request that is waiting, or whose claim has expired, among `actions` (all
   * by default). Returns it with its claim (keep the `token`), or undefined when there is none.
   */
  async claimNext(options: {
    claimer: string;
    leaseMs: number;
    actions?: readonly LifecycleAction[];
  }): Promise<LifecycleRequest | undefined> {
    const claimer = checkName(options?.claimer, 'options.claimer');
    const leaseMs = checkMs(options.leaseMs, 'options.leaseMs', true);
    if (
      options.actions !== undefined &&
      (!Array.isArray(options.actions) || options.actions.length === 0)
    ) {
      fail(
        'INVALID_OPTION',
        'options.actions',
        'must name at least one action (leave it out for all actions)',
      );
    }
    const actions = options.actions?.map((a, i) => checkAction(a, `options.actions[${i}]`));
    return this.ctx.run(async (tx) => {
      const now = this.ctx.now();
      const candidate = await this.oldestClaimable(tx, now, actions);
      if (!candidate) return undefined;
      const claimed: LifecycleRequest = {
        ...candidate,
        status: 'claimed',
        claim: { by: claimer, at: now, expiresAt: now + leaseMs, token: this.ctx.env.newToken() },
        attempts: candidate.attempts + 1,
      };
      await tx.update(COLLECTION, claimed);
      return claimed;
    });
  }

  /** Finishes a claimed request as done; `CONFLICT` if the token is not the current claim's. */
  async complete(
    id: string,
    options: { token: string; result?: JsonValue },
  ): Promise<LifecycleRequest> {
    const result =
      options?.result === undefined ? undefined : toFrozenJson(options.result, 'result');
    return this.finish(id, options?.token, (r, now) => ({
      ...r,
      status: 'done',
      finishedAt: now,
      ...(result === undefined ? {} : { result }),
    }));
  }

  /** Finishes a claimed request as failed, with what went wrong. */
  async fail(id: string, options: { token: string; error: string }): Promise<LifecycleRequest> {
    const error = checkText(options?.error, 'options.error', 2_000);
    return this.finish(id, options.token, (r, now) => ({
      ...r,
      status: 'failed',
      finishedAt: now,
      error,
    }));
  }

  /** Gives a claim back: the request waits again, first in line. */
  async release(id: string, options: { token: string }): Promise<LifecycleRequest> {
    return this.finish(id, options?.token, (r) => {
      const { claim: _claim, ...rest } = r;
      return { ...rest, status: 'requested' };
    });
  }

  /** Requests not yet finished (waiting or claimed), in order. */
  async pending(options: { limit?: number } = {}): Promise<LifecycleRequest[]> {
    const { limit } = limited(options);
    return this.ctx.run(async (tx) => {
      const waiting = await tx.find<LifecycleRequest>(
        COLLECTION,
        'requested',
        limit === undefined ? {} : { limit },
      );
      const claimed = await tx.find<LifecycleRequest>(
        COLLECTION,
        'claimed',
        limit === undefined ? {} : { limit },
      );
      const all = [...waiting, ...claimed].sort((a, b) => a.seq - b.seq);
      return limit === undefined ? all : all.slice(0, limit);
    });
  }

  /** The request, or undefined. */
  async get(id: string): Promise<LifecycleRequest | undefined> {
    return this.ctx.run((tx) => tx.get<LifecycleRequest>(COLLECTION, id));
  }

  /**
   * The oldest request among `actions` that is waiting (or whose claim expired) and is the
   * earliest unfinished request of its target: requests on one target are carried out in the
   * order they were made, so a later one waits while an earlier one is claimed (by a worker that
   * may have died: its lease runs out first) or waits for another worker.
   */
  private async oldestClaimable(
    tx: StoreTx,
    now: number,
    actions: readonly LifecycleAction[] | undefined,
  ): Promise<LifecycleRequest | undefined> {
    const candidates: LifecycleRequest[] = [];
    if (actions === undefined) {
      candidates.push(...(await tx.find<LifecycleRequest>(COLLECTION, 'requested')));
    } else {
      for (const action of new Set(actions))
        candidates.push(
          ...(await tx.find<LifecycleRequest>(COLLECTION, 'requestedByAction', {
            prefix: [action],
          })),
        );
    }
    // Claims in flight are few (one per worker); an expired one is claimable again.
    for (const r of await tx.find<LifecycleRequest>(COLLECTION, 'claimed')) {
      if ((r.claim?.expiresAt ?? 0) <= now && (actions === undefined || actions.includes(r.action)))
        candidates.push(r);
    }
    candidates.sort((a, b) => a.seq - b.seq);
    const blocked = new Set<string>();
    for (const r of candidates) {
      if (blocked.has(r.target)) continue;
      const first = (
        await tx.find<LifecycleRequest>(COLLECTION, 'unfinishedByTarget', {
          prefix: [r.target],
          limit: 1,
        })
      )[0];
      if (first === undefined || first.id === r.id) return r;
      blocked.add(r.target);
    }
    return undefined;
  }

  private finish(
    id: string,
    token: unknown,
    change: (r: LifecycleRequest, now: number) => LifecycleRequest,
  ): Promise<LifecycleRequest> {
    const t = checkText(token, 'options.token', 100);
    return this.ctx.run(async (tx) => {
      const request = await load<LifecycleRequest>(tx, COLLECTION, 'lifecycle request', id);
      if (request.status !== 'claimed' || request.claim?.token !== t) {
        throw new StoreError({
          code: 'CONFLICT',
          message:
            request.status === 'claimed'
              ? `lifecycle request ${id}: this claim is no longer current (it expired and ${request.claim?.by} claimed it)`
              : `lifecycle request ${id} is ${request.status}, not claimed`,
        });
      }
      const next = change(request, this.ctx.now());
      await tx.update(COLLECTION, next);
      return next;
    });
  }
}
