import type { StoreTx } from '../store/Store';
import { badTransition, type Ctx, checkName, notFound } from './env';
import type { Rig, RigState } from './types';

const COLLECTION = 'rigs';

/** Loads a rig or fails with NOT_FOUND, naming the rigs that exist. */
export async function requireRig(tx: StoreTx, name: string): Promise<Rig> {
  const rig = await tx.get<Rig>(COLLECTION, name);
  if (rig) return rig;
  const known = (await tx.find<Rig>(COLLECTION, 'byName', { limit: 11 })).map((r) => r.id);
  throw notFound('rig', name, known);
}

/**
 * Rigs and their states. Park stops spawning (in-flight work finishes); dock stops all of the
 * rig's agents; unpark and undock make it operational again. Asking for the state a rig is
 * already in changes nothing.
 *
 * ```text
 * operational ──park──▶ parked ──unpark──▶ operational
 * operational | parked ──dock──▶ docked ──undock──▶ operational
 * ```
 */
export class Rigs {
  /** @internal */
  constructor(private readonly ctx: Ctx) {}

  /**
   * Adds a rig, operational.
   *
   * @param input - `name`: letters, digits, `_ - . / :`.
   * @returns the rig. Fails with `DUPLICATE_ID` if the name is taken.
   */
  async create(input: { name: string }): Promise<Rig> {
    const name = checkName(input?.name, 'rig.name');
    return this.ctx.run(async (tx) => {
      const now = this.ctx.now();
      const rig: Rig = { id: name, state: 'operational', createdAt: now, stateChangedAt: now };
      await tx.insert(COLLECTION, rig);
      return rig;
    });
  }

  /** The rig, or undefined. */
  async get(name: string): Promise<Rig | undefined> {
    return this.ctx.run((tx) => tx.get<Rig>(COLLECTION, name));
  }

  /** The rig; `NOT_FOUND` (naming the known rigs) if there is none. */
  async require(name: string): Promise<Rig> {
    return this.ctx.run((tx) => requireRig(tx, name));
  }

  /** Every rig, by name, or only those in `state`. */
  async list(options: { state?: RigState } = {}): Promise<Rig[]> {
    return this.ctx.run((tx) =>
      options.state === undefined
        ? tx.find<Rig>(COLLECTION, 'byName')
        : tx.find<Rig>(COLLECTION, 'byState', { prefix: [options.state] }),
    );
  }

  /** operational → parked. A docked rig must be undocked first. */
  async park(name: string): Promise<Rig> {
    return this.transition(name, 'parked', (from) =>
      from === 'docked' ? `rig ${name} is docked; undock it before parking it` : undefined,
    );
  }

  /** parked → operational. A docked rig is undocked instead. */
  async unpark(name: string): Promise<Rig> {
    return this.transition(name, 'operational', (from) =>
      from === 'docked' ? `rig ${name} is docked, not parked; use undock` : undefined,
    );
  }

  /** operational | parked → docked. */
  async dock(name: string): Promise<Rig> {
    return this.transition(name, 'docked', () => undefined);
  }

  /** docked → operational. A parked rig is unparked instead. */
  async undock(name: string): Promise<Rig> {
    return this.transition(name, 'operational', (from) =>
      from === 'parked' ? `rig ${name} is parked, not docked; use unpark` : undefined,
    );
  }

  private transition(
    name: string,
    to: RigState,
    refuse: (from: RigState) => string | undefined,
  ): Promise<Rig> {
    return this.ctx.run(async (tx) => {
      const rig = await requireRig(tx, name);
      if (rig.state === to) return rig;
      const why = refuse(rig.state);
      if (why) throw badTransition(why);
      const next: Rig = { ...rig, state: to, stateChangedAt: this.ctx.now() };
      await tx.update(COLLECTION, next);
      return next;
    });
  }
}
