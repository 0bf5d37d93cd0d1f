import { StoreError } from '../errors';
import { describe, fail } from '../internal/validate';
import type { StoreTx } from '../store/Store';
import { badTransition, type Ctx, checkText, load } from './env';
import type { Bead, Convoy, Molecule } from './types';

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

/**
 * Keeps convoys in step with a tracked molecule's change, in the caller's transaction: every
 * step is progress; a molecule that finished (done or failed) lowers the count of open molecules.
 * A finished molecule never runs again, so it never reopens a convoy.
 */
export async function onMoleculeChanged(
  tx: StoreTx,
  now: number,
  moleculeId: string,
  finished: boolean,
): Promise<void> {
  for (const convoy of await tx.find<Convoy>(COLLECTION, 'byMolecule', { prefix: [moleculeId] })) {
    await tx.update(COLLECTION, {
      ...convoy,
      openMolecules: (convoy.openMolecules ?? 0) - (finished ? 1 : 0),
      lastProgressAt: now,
    });
  }
}

/** Whether a molecule has finished: done or failed (a squashed one is gone, and was finished). */
function moleculeFinished(molecule: Molecule | undefined): boolean {
  return molecule === undefined || molecule.status === 'done' || molecule.status === 'failed';
}

function checkIds(value: unknown, path: string, what: string, required: boolean): string[] {
  if (value === undefined && !required) return [];
  if (!Array.isArray(value) || (required && value.length === 0))
    fail(
      'INVALID_OPTION',
      path,
      `must be ${required ? 'a non-empty' : 'an'} array of ${what} ids; got ${describe(value)}`,
    );
  const ids = value.map((id, i) => checkText(id, `${path}[${i}]`, 200));
  const seen = new Set<string>();
  for (const [i, id] of ids.entries()) {
    if (seen.has(id)) fail('INVALID_OPTION', `${path}[${i}]`, `${what} ${id} is listed twice`);
    seen.add(id);
  }
  return ids;
}

function checkBeadIds(value: unknown, path: string): string[] {
  return checkIds(value, path, 'bead', true);
}

/**
 * The molecules a convoy takes on with these beads and molecules: the named ones (which must
 * exist), and the molecule of each bead that is one of its steps, when that molecule still
 * exists. Those already tracked are left out. Returns them with how many are unfinished.
 */
async function moleculesToTrack(
  tx: StoreTx,
  beads: readonly Bead[],
  named: readonly string[],
  tracked: ReadonlySet<string>,
): Promise<{ ids: string[]; open: number }> {
  const ids: string[] = [];
  let open = 0;
  const take = (id: string, molecule: Molecule | undefined) => {
    if (tracked.has(id) || ids.includes(id)) return;
    ids.push(id);
    if (!moleculeFinished(molecule)) open++;
  };
  for (const id of named) {
    const molecule = await load<Molecule>(tx, 'molecules', 'molecule', id);
    if (tracked.has(id))
      throw new StoreError({
        code: 'DUPLICATE_ID',
        message: `molecule ${id} is already tracked by this convoy`,
      });
    take(id, molecule);
  }
  for (const bead of beads) {
    const id = bead.metadata.molecule;
    if (typeof id !== 'string' || !bead.labels.includes('molecule-step')) continue;
    const molecule = await tx.get<Molecule>('molecules', id);
    if (molecule) take(id, molecule);
  }
  return { ids, open };
}

/**
 * Convoys: groups of beads and workflows, across rigs, tracked to completion. A convoy is
 * finished when every tracked bead is terminal and every tracked molecule has finished (a
 * molecule waiting on a gate has not: the convoy stays open until the gate resolves and the
 * workflow ends); a patrol closes finished convoys with {@link Convoys.closeFinished}. A bead
 * that is a molecule's step brings its molecule along. A closed convoy reopens as soon as a
 * tracked bead reopens or live work is added.
 */
export class Convoys {
  /** @internal */
  constructor(
    private readonly ctx: Ctx,
    private readonly isTerminal: (status: string) => boolean,
  ) {}

  /**
   * Creates an open convoy tracking existing beads and molecules (at least one of either).
   *
   * @example
   * ```ts
   * await model.convoys.create({ title: 'release 2.1', beadIds: [a.id], moleculeIds: [deploy.id] });
   * ```
   */
  async create(input: {
    title: string;
    beadIds?: readonly string[];
    moleculeIds?: readonly string[];
  }): Promise<Convoy> {
    const title = checkText(input?.title, 'convoy.title', 500);
    const beadIds = checkIds(input?.beadIds, 'convoy.beadIds', 'bead', false);
    const named = checkIds(input?.moleculeIds, 'convoy.moleculeIds', 'molecule', false);
    if (beadIds.length + named.length === 0)
      fail(
        'INVALID_OPTION',
        'convoy',
        'must track at least one bead (beadIds) or molecule (moleculeIds)',
      );
    return this.ctx.run(async (tx) => {
      let openCount = 0;
      const beads: Bead[] = [];
      for (const id of beadIds) {
        const bead = await load<Bead>(tx, 'beads', 'bead', id);
        beads.push(bead);
        if (!this.isTerminal(bead.status)) openCount++;
      }
      const molecules = await moleculesToTrack(tx, beads, named, new Set());
      const now = this.ctx.now();
      const convoy: Convoy = {
        id: this.ctx.env.newId('cv'),
        title,
        beadIds,
        moleculeIds: molecules.ids,
        status: 'open',
        openCount,
        openMolecules: molecules.open,
        createdAt: now,
        lastProgressAt: now,
      };
      await tx.insert(COLLECTION, convoy);
      return convoy;
    });
  }

  /**
   * Tracks more beads (and molecules); a closed convoy reopens if any of them is not finished.
   */
  async add(
    id: string,
    beadIds: readonly string[],
    options: { moleculeIds?: readonly string[] } = {},
  ): Promise<Convoy> {
    const named = checkIds(options?.moleculeIds, 'options.moleculeIds', 'molecule', false);
    const ids = named.length > 0 && beadIds?.length === 0 ? [] : checkBeadIds(beadIds, 'beadIds');
    return this.ctx.run(async (tx) => {
      const convoy = await load<Convoy>(tx, COLLECTION, 'convoy', id);
      let added = 0;
      const beads: Bead[] = [];
      for (const beadId of ids) {
        if (convoy.beadIds.includes(beadId)) {
          throw new StoreError({
            code: 'DUPLICATE_ID',
            message: `bead ${beadId} is already in convoy ${id}`,
          });
        }
        const bead = await load<Bead>(tx, 'beads', 'bead', beadId);
        beads.push(bead);
        if (!this.isTerminal(bead.status)) added++;
      }
      const molecules = await moleculesToTrack(tx, beads, named, new Set(convoy.moleculeIds ?? []));
      const now = this.ctx.now();
      const reopen = convoy.status === 'closed' && added + molecules.open > 0;
      const { closedAt: _closedAt, ...rest } = convoy;
      const next: Convoy = {
        ...(reopen ? rest : convoy),
        beadIds: [...convoy.beadIds, ...ids],
        moleculeIds: [...(convoy.moleculeIds ?? []), ...molecules.ids],
        openCount: convoy.openCount + added,
        openMolecules: (convoy.openMolecules ?? 0) + molecules.open,
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

  /** The convoys tracking a molecule. */
  async byMolecule(moleculeId: string): Promise<Convoy[]> {
    return this.ctx.run((tx) =>
      tx.find<Convoy>(COLLECTION, 'byMolecule', { prefix: [moleculeId] }),
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
      const molecules = convoy.openMolecules ?? 0;
      if ((convoy.openCount > 0 || molecules > 0) && options.force !== true) {
        throw badTransition(
          `convoy ${id} still has ${convoy.openCount} open bead(s) and ${molecules} unfinished molecule(s); pass force to close it anyway`,
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
