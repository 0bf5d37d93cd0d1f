import { describe, fail } from '../internal/validate';
import { HOOKED, writeBeadStatus } from './Beads';
import { limited } from './Convoys';
import { badTransition, type Ctx, checkName, load, notFound } from './env';
import { requireRig } from './Rigs';
import type { Bead, Hook } from './types';

const COLLECTION = 'hooks';

/**
 * Hooks: the work on a polecat. Attaching puts a bead on an agent's hook (the bead becomes
 * `hooked`, assigned to the agent); the hook outlives sessions, so a restarted polecat finds the
 * same work. One bead per agent, one agent per bead; a terminal bead cannot be hooked.
 */
export class Hooks {
  /** @internal */
  constructor(private readonly ctx: Ctx) {}

  /**
   * Puts a bead on an agent's hook. Attaching the same bead to the same agent again returns the
   * existing hook (same epoch).
   */
  async attach(input: { agent: string; beadId: string; rig: string }): Promise<Hook> {
    const agent = checkName(input?.agent, 'hook.agent');
    const rigName = checkName(input?.rig, 'hook.rig');
    const beadId = checkName(input?.beadId, 'hook.beadId');
    const env = this.ctx.env;
    return this.ctx.run(async (tx) => {
      await requireRig(tx, rigName);
      const bead = await load<Bead>(tx, 'beads', 'bead', beadId);
      const existing = await tx.get<Hook>(COLLECTION, agent);
      if (existing) {
        if (existing.beadId === beadId) return existing;
        throw badTransition(
          `agent ${agent} already holds bead ${existing.beadId}; detach it first`,
        );
      }
      const holder = (await tx.find<Hook>(COLLECTION, 'byBead', { prefix: [beadId] }))[0];
      if (holder) throw badTransition(`bead ${beadId} is already on ${holder.id}'s hook`);
      if (env.terminal.has(bead.status)) {
        throw badTransition(
          `bead ${beadId} is ${bead.status}; reopen it before putting it on a hook`,
        );
      }
      const now = this.ctx.now();
      const hook: Hook = {
        id: agent,
        beadId,
        rig: rigName,
        attachedAt: now,
        epoch: await tx.nextSequence('hook.epoch'),
      };
      await tx.insert(COLLECTION, hook);
      await writeBeadStatus(tx, env, bead, HOOKED, now, agent);
      return hook;
    });
  }

  /** The agent's hook, or undefined. */
  async get(agent: string): Promise<Hook | undefined> {
    return this.ctx.run((tx) => tx.get<Hook>(COLLECTION, agent));
  }

  /** The hook holding a bead, or undefined. */
  async byBead(beadId: string): Promise<Hook | undefined> {
    return this.ctx.run(
      async (tx) => (await tx.find<Hook>(COLLECTION, 'byBead', { prefix: [beadId] }))[0],
    );
  }

  /** The hooks of a rig's agents, by agent name. */
  async list(options: { rig: string; limit?: number }): Promise<Hook[]> {
    return this.ctx.run((tx) =>
      tx.find<Hook>(COLLECTION, 'byRig', { prefix: [options.rig], ...limited(options) }),
    );
  }

  /**
   * Takes the bead off the agent's hook and moves it to `status` (default `open`). The assignee
   * stays when the status is terminal (who finished it) and is cleared otherwise (back in the pool).
   */
  async detach(
    agent: string,
    options: { status?: string } = {},
  ): Promise<{ hook: Hook; bead: Bead }> {
    const env = this.ctx.env;
    const status = options.status ?? 'open';
    if (!env.statuses.has(status) || status === HOOKED) {
      fail(
        'INVALID_OPTION',
        'options.status',
        `must be a status other than '${HOOKED}': ${[...env.statuses].filter((s) => s !== HOOKED).join(', ')}; got ${describe(status)}`,
      );
    }
    return this.ctx.run(async (tx) => {
      const hook = await tx.get<Hook>(COLLECTION, agent);
      if (!hook) throw notFound('hook for agent', agent);
      await tx.delete(COLLECTION, agent);
      const bead = await load<Bead>(tx, 'beads', 'bead', hook.beadId);
      const next = await writeBeadStatus(
        tx,
        env,
        bead,
        status,
        this.ctx.now(),
        env.terminal.has(status) ? undefined : null,
      );
      return { hook, bead: next };
    });
  }
}
