import { limited } from './Convoys';
import { badTransition, type Ctx, checkName, checkText, load } from './env';
import type { Warrant } from './types';

const COLLECTION = 'warrants';

/**
 * Warrants: orders to stop a stuck agent, filed by one role and executed by another, exactly
 * once. A target has at most one pending warrant: filing again returns the pending one.
 */
export class Warrants {
  /** @internal */
  constructor(private readonly ctx: Ctx) {}

  /** Files a warrant, or returns the target's pending one (`created: false`). */
  async file(input: {
    target: string;
    reason: string;
    filedBy: string;
  }): Promise<{ warrant: Warrant; created: boolean }> {
    const target = checkName(input?.target, 'warrant.target');
    const reason = checkText(input?.reason, 'warrant.reason', 1_000);
    const filedBy = checkName(input?.filedBy, 'warrant.filedBy');
    return this.ctx.run(async (tx) => {
      const existing = (
        await tx.find<Warrant>(COLLECTION, 'pendingByTarget', { prefix: [target] })
      )[0];
      if (existing) return { warrant: existing, created: false };
      const warrant: Warrant = {
        id: this.ctx.env.newId('wr'),
        target,
        reason,
        filedBy,
        filedAt: this.ctx.now(),
        status: 'pending',
      };
      await tx.insert(COLLECTION, warrant);
      return { warrant, created: true };
    });
  }

  /** Unexecuted warrants, oldest first. */
  async pending(options: { limit?: number } = {}): Promise<Warrant[]> {
    return this.ctx.run((tx) => tx.find<Warrant>(COLLECTION, 'pending', limited(options)));
  }

  /** The warrant, or undefined. */
  async get(id: string): Promise<Warrant | undefined> {
    return this.ctx.run((tx) => tx.get<Warrant>(COLLECTION, id));
  }

  /** Marks a pending warrant executed; a second execution fails with `INVALID_TRANSITION`. */
  async execute(id: string, options: { by: string }): Promise<Warrant> {
    const by = checkName(options?.by, 'options.by');
    return this.finish(id, (w, now) => ({
      ...w,
      status: 'executed',
      executedAt: now,
      executedBy: by,
    }));
  }

  /** Withdraws a pending warrant. */
  async cancel(id: string): Promise<Warrant> {
    return this.finish(id, (w, now) => ({ ...w, status: 'cancelled', cancelledAt: now }));
  }

  private finish(id: string, change: (w: Warrant, now: number) => Warrant): Promise<Warrant> {
    return this.ctx.run(async (tx) => {
      const warrant = await load<Warrant>(tx, COLLECTION, 'warrant', id);
      if (warrant.status !== 'pending') {
        const when = warrant.status === 'executed' ? warrant.executedAt : warrant.cancelledAt;
        throw badTransition(`warrant ${id} was already ${warrant.status} at ${when}`);
      }
      const next = change(warrant, this.ctx.now());
      await tx.update(COLLECTION, next);
      return next;
    });
  }
}
