import { StoreError } from '../errors';
import { fail } from '../internal/validate';
import type { StoreTx } from '../store/Store';
import { badTransition, type Ctx, checkText, load } from './env';
import type { Bead, Convoy } from './types';

const COLLECTION = 'convoys';

/**
 * Keeps convoys in step with a tracked bead's status change, in the caller's transaction: every
 * change is progress; a bead becoming terminal lowers the open count; a bead reopening raises it
 * and reopens a closed convoy.
 */
export async function onBeadStatusChanged(
  tx: StoreTx,
  now: number,
  beadId: string,
  wasTerminal: boolean,
  isTerminal: boolean,
): Promise<void> {
  const delta = wasTerminal === isTerminal ? 0 : isTerminal ? -1 : 1;
  for (const convoy of await tx.find<Convoy>(COLLECTION, 'byBead', { prefix: [beadId] })) {
    const reopen = convoy.status === 'closed' && delta > 0;
    const { closedAt: _closedAt, ...rest } = convoy;
    const next: Convoy = {
      ...(reopen ? rest : convoy),
      openCount: convoy.openCount + delta,
      lastProgressAt: now,
      ...(reopen ? { status: 'open' as const, reopenedAt: now } : {}),
    };
    await tx.update(COLLECTION, next);
  }
}

function checkBeadIds(value: unknown, path: string): string[] {
  if (!Array.isArray(value) || value.length === 0)
    fail('INVALID_OPTION', path, 'must be a non-empty array of bead ids');
  const ids = value.map((id, i) => checkText(id, `${path}[${i}]`, 200));
  const seen = new Set<string>();
  for (const [i, id] of ids.entries()) {
    if (seen.has(id)) fail('INVALID_OPTION', `${path}[${i}]`, `bead ${id} is listed twice`);
    seen.add(id);
  }
  return ids;
}

/**
 * Convoys: groups of beads, across rigs, tracked to completion. A convoy is finished when every
 * tracked bead is terminal; a patrol closes finished convoys with {@link Convoys.closeFinished}.
 * A closed convoy reopens as soon as a tracked bead reopens or a live bead is added.
 */
export class Convoys {
  /** @internal */
  constructor(
    private readonly ctx: Ctx,
    private readonly isTerminal: (status: string) => boolean,
  ) {}

  /** Creates an open convoy tracking existing beads. */
  async create(input: { title: string; beadIds: readonly string[] }): Promise<Convoy> {
    const title = checkText(input?.title, 'convoy.title', 500);
    const beadIds = checkBeadIds(input?.beadIds, 'convoy.beadIds');
    return this.ctx.run(async (tx) => {
      let openCount = 0;
      for (const id of beadIds) {
        const bead = await load<Bead>(tx, 'beads', 'bead', id);
        if (!this.isTerminal(bead.status)) openCount++;
      }
      const now = this.ctx.now();
      const convoy: Convoy = {
        id: this.ctx.env.newId('cv'),
        title,
        beadIds,
        status: 'open',
        openCount,
        createdAt: now,
        lastProgressAt: now,
      };
      await tx.insert(COLLECTION, convoy);
      return convoy;
    });
  }

  /** Tracks more beads; a closed convoy reopens if any of them is not terminal. */
  async add(id: string, beadIds: readonly string[]): Promise<Convoy> {
    const ids = checkBeadIds(beadIds, 'beadIds');
    return this.ctx.run(async (tx) => {
      const convoy = await load<Convoy>(tx, COLLECTION, 'convoy', id);
      let added = 0;
      for (const beadId of ids) {
        if (convoy.beadIds.includes(beadId)) {
          throw new StoreError({
            code: 'DUPLICATE_ID',
            message: `bead ${beadId} is already in convoy ${id}`,
          });
        }
        const bead = await load<Bead>(tx, 'beads', 'bead', beadId);
        if (!this.isTerminal(bead.status)) added++;
      }
      const now = this.ctx.now();
      const reopen = convoy.status === 'closed' && added > 0;
      const { closedAt: _closedAt, ...rest } = convoy;
      const next: Convoy = {
        ...(reopen ? rest : convoy),
        beadIds: [...convoy.beadIds, ...ids],
        openCount: convoy.openCount + added,
        lastProgressAt: now,
        ...(reopen ? { status: 'open' as const, reopenedAt: now } : {}),
      };
      await tx.update(COLLECTION, next);
      return next;
    });
  }

  /** The convoy, or undefined. */
  async get(id: string): Promise<Convoy | undefined> {
    return this.ctx.run((tx) => tx.get<Convoy>(COLLECTION, id));
  }

  /** The convoy; `NOT_FOUND` if there is none. */
  async require(id: string): Promise<Convoy> {
    return this.ctx.run((tx) => load<Convoy>(tx, COLLECTION, 'convoy', id));
  }

  /** Open convoys, oldest first. */
  async open(options: { limit?: number } = {}): Promise<Convoy[]> {
    return this.ctx.run((tx) => tx.find<Convoy>(COLLECTION, 'open', limited(options)));
  }

  /** Open convoys whose tracked beads are all terminal, oldest first. */
  async finished(options: { limit?: number } = {}): Promise<Convoy[]> {
    return this.ctx.run((tx) => tx.find<Convoy>(COLLECTION, 'finished', limited(options)));
  }

  /** Open convoys with no progress since `before` (ms), least recent first. */
  async stalled(before: number, options: { limit?: number } = {}): Promise<Convoy[]> {
    return this.ctx.run((tx) =>
      tx.find<Convoy>(COLLECTION, 'openByProgress', { lte: [before], ...limited(options) }),
    );
  }

  /** The convoys tracking a bead. */
  async byBead(beadId: string): Promise<Convoy[]> {
    return this.ctx.run((tx) => tx.find<Convoy>(COLLECTION, 'byBead', { prefix: [beadId] }));
  }

  /** Closes every finished convoy (or the first `limit`) and returns them: the patrol's step. */
  async closeFinished(options: { limit?: number } = {}): Promise<Convoy[]> {
    return this.ctx.run(async (tx) => {
      const now = this.ctx.now();
      const closed: Convoy[] = [];
      for (const convoy of await tx.find<Convoy>(COLLECTION, 'finished', limited(options))) {
        const next: Convoy = { ...convoy, status: 'closed', closedAt: now };
        await tx.update(COLLECTION, next);
        closed.push(next);
      }
      return closed;
    });
  }

  /** Closes one convoy; with beads still open only when `force` is set. */
  async close(id: string, options: { force?: boolean } = {}): Promise<Convoy> {
    return this.ctx.run(async (tx) => {
      const convoy = await load<Convoy>(tx, COLLECTION, 'convoy', id);
      if (convoy.status === 'closed') return convoy;
      if (convoy.openCount > 0 && options.force !== true) {
        throw badTransition(
          `convoy ${id} still has ${convoy.openCount} open bead(s); pass force to close it anyway`,
        );
      }
      const next: Convoy = { ...convoy, status: 'closed', closedAt: this.ctx.now() };
      await tx.update(COLLECTION, next);
      return next;
    });
  }
}

/** The `limit` of a list call, checked. */
export function limited(options: { limit?: number }): { limit?: number } {
  if (options.limit === undefined) return {};
  if (!Number.isSafeInteger(options.limit) || options.limit < 1) {
    fail('INVALID_OPTION', 'limit', `must be a positive integer; got ${String(options.limit)}`);
  }
  return { limit: options.limit };
}
