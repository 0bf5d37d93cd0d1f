import type { StoreTx } from '../store/Store';
import { badTransition, type Ctx, checkMs, checkName, notFound } from './env';
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
 * rig's agents, after a drain (`drainUntil`) in which in-flight work may finish; unpark and
 * undock make it operational again. Asking for the state a rig is already in changes nothing.
 *
 * ```text
 * operational ──park──▶ parked ──unpark──▶ operational
 * operational | parked ──dock──▶ docked (draining until drainUntil, then drained) ──undock──▶ operational
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

  /**
   * operational | parked → docked. With `drainUntil` (an absolute time on the model's clock) the
   * rig drains until then: its in-flight work may finish, and the town stops what is left at
   * that time. Without it the dock is immediate, and it also ends the drain of a rig that is
   * docked already; a repeated draining dock keeps the deadline it has (it never extends one).
   *
   * @param options - `drainUntil`: integer ms >= 0.
   * @returns the rig. @throws ConfigError for a bad `drainUntil`.
   * @example
   * ```ts
   * await model.rigs.dock('api', { drainUntil: clock.now() + 1_800_000 });
   * ```
   */
  async dock(name: string, options: { drainUntil?: number } = {}): Promise<Rig> {
    const drainUntil =
      options.drainUntil === undefined
        ? undefined
        : checkMs(options.drainUntil, 'options.drainUntil');
    return this.ctx.run(async (tx) => {
      const rig = await requireRig(tx, name);
      if (rig.state === 'docked') {
        if (drainUntil !== undefined || rig.drainUntil === undefined) return rig;
        const { drainUntil: _ended, ...drained } = rig;
        await tx.update(COLLECTION, drained);
        return drained;
      }
      const { drainUntil: _old, ...rest } = rig;
      const next: Rig = {
        ...rest,
        state: 'docked',
        stateChangedAt: this.ctx.now(),
        ...(drainUntil === undefined ? {} : { drainUntil }),
      };
      await tx.update(COLLECTION, next);
      return next;
    });
  }

  /**
   * Ends the drain of a docked rig (its in-flight work finished, or what was left was stopped at
   * the deadline). Only the caller that ends it gets `true`, so what follows is done once.
   */
  async endDrain(name: string): Promise<boolean> {
    return this.ctx.run(async (tx) => {
      const rig = await requireRig(tx, name);
      if (rig.state !== 'docked' || rig.drainUntil === undefined) return false;
      const { drainUntil: _ended, ...drained } = rig;
      await tx.update(COLLECTION, drained);
      return true;
    });
  }

  /** docked → operational (a drain under way is cancelled: nothing is stopped). A parked rig is unparked instead. */
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
      const { drainUntil: _cancelled, ...rest } = rig;
      const next: Rig = { ...rest, state: to, stateChangedAt: this.ctx.now() };
      await tx.update(COLLECTION, next);
      return next;
    });
  }
}
