import { type Ctx, checkName, load } from './env';
import type { Bead, RespawnCount } from './types';

const COLLECTION = 'respawns';

/** How many times each bead's polecat was respawned; the Witness escalates past its limit. */
export class Respawns {
  /** @internal */
  constructor(private readonly ctx: Ctx) {}

  /** Counts one more respawn for an existing bead; returns the new count. */
  async increment(beadId: string): Promise<number> {
    const id = checkName(beadId, 'beadId');
    return this.ctx.run(async (tx) => {
      await load<Bead>(tx, 'beads', 'bead', id);
      const current = await tx.get<RespawnCount>(COLLECTION, id);
      const next: RespawnCount = { id, count: (current?.count ?? 0) + 1, lastAt: this.ctx.now() };
      if (current) await tx.update(COLLECTION, next);
      else await tx.insert(COLLECTION, next);
      return next.count;
    });
  }

  /** The respawn count of a bead (0 if none). */
  async count(beadId: string): Promise<number> {
    return this.ctx.run(async (tx) => (await tx.get<RespawnCount>(COLLECTION, beadId))?.count ?? 0);
  }

  /** Forgets a bead's respawns (e.g. once it is done). */
  async reset(beadId: string): Promise<void> {
    return this.ctx.run(async (tx) => {
      await tx.delete(COLLECTION, beadId);
    });
  }
}
