import { describe, fail } from '../internal/validate';
import type { StoreTx } from '../store/Store';
import { limited } from './Convoys';
import { badTransition, Ctx, checkName, checkText, load, notFound } from './env';
import { Hooks } from './Hooks';
import { Polecats } from './Polecats';
import type { Hook, Polecat, Warrant, WarrantOutcome, WarrantRelease } from './types';

const COLLECTION = 'warrants';
const RELEASES: readonly WarrantRelease[] = ['open', 'blocked'];
/** An agent id: `<rig>/<name>`. */
const AGENT = /^[^/]+\/[^/]+$/;

/** What {@link Warrants.file} takes. */
export interface FileWarrantInput {
  /** The agent to stop: an agent id `<rig>/<name>` the town knows (a polecat, or a hook's holder). */
  target: string;
  /** Why (1 to 1,000 characters). */
  reason: string;
  /** Who files it (a role or a person). */
  filedBy: string;
  /**
   * What becomes of the bead on the target's hook when the warrant is executed: `open` puts it
   * back in the pool, `blocked` takes it off the hook as blocked.
   * @defaultValue 'open'
   */
  release?: WarrantRelease;
}

/**
 * Warrants: orders to stop a stuck agent, filed by one role and executed by another, exactly
 * once. A target has at most one pending warrant: filing again returns the pending one.
 *
 * Executing is two steps, so a crash between them never does anything twice: {@link beginStop}
 * records the decision before the session is stopped (the stop is idempotent), then
 * {@link execute} releases the warranted work and records the outcome in one transaction.
 */
export class Warrants {
  /** @internal */
  constructor(private readonly ctx: Ctx) {}

  /**
   * Files a warrant, or returns the target's pending one (`created: false`). The work on the
   * target's hook now (its bead and hook epoch) is what the warrant will release.
   *
   * @throws ConfigError `INVALID_OPTION` for a bad field (a target that is not `<rig>/<name>`, a
   * `release` other than `open` or `blocked`, or `blocked` when the model has no such status).
   * @throws StoreError `NOT_FOUND` when no polecat and no hook has that agent id.
   * @example
   * ```ts
   * await model.warrants.file({ target: 'api/toast', reason: 'no output for 2h', filedBy: 'deacon', release: 'blocked' });
   * ```
   */
  async file(input: FileWarrantInput): Promise<{ warrant: Warrant; created: boolean }> {
    const target = checkName(input?.target, 'warrant.target');
    if (!AGENT.test(target))
      fail(
        'INVALID_OPTION',
        'warrant.target',
        `must be an agent id '<rig>/<name>' (such as api/toast); got ${describe(target)}`,
      );
    const reason = checkText(input?.reason, 'warrant.reason', 1_000);
    const filedBy = checkName(input?.filedBy, 'warrant.filedBy');
    const release = input.release ?? 'open';
    if (!RELEASES.includes(release))
      fail(
        'INVALID_OPTION',
        'warrant.release',
        `must be one of ${RELEASES.join(', ')}; got ${describe(release)}`,
      );
    if (!this.ctx.env.statuses.has(release))
      fail(
        'INVALID_OPTION',
        'warrant.release',
        `'${release}' is not a bead status of this town (${[...this.ctx.env.statuses].join(', ')})`,
      );
    return this.ctx.run(async (tx) => {
      const existing = (
        await tx.find<Warrant>(COLLECTION, 'pendingByTarget', { prefix: [target] })
      )[0];
      if (existing) return { warrant: existing, created: false };
      const polecat = await tx.get<Polecat>('polecats', target);
      const hook = await tx.get<Hook>('hooks', target);
      if (!polecat && !hook) throw await unknownAgent(tx, target);
      const warrant: Warrant = {
        id: this.ctx.env.newId('wr'),
        target,
        rig: hook?.rig ?? (polecat as Polecat).rig,
        reason,
        filedBy,
        filedAt: this.ctx.now(),
        release,
        ...(hook ? { beadId: hook.beadId, hookEpoch: hook.epoch } : {}),
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

  /** The target's pending warrant, or undefined. */
  async pendingFor(target: string): Promise<Warrant | undefined> {
    return this.ctx.run(
      async (tx) =>
        (await tx.find<Warrant>(COLLECTION, 'pendingByTarget', { prefix: [target] }))[0],
    );
  }

  /** The warrant, or undefined. */
  async get(id: string): Promise<Warrant | undefined> {
    return this.ctx.run((tx) => tx.get<Warrant>(COLLECTION, id));
  }

  /**
   * Records that the executor decided to execute a pending warrant and is stopping its target's
   * session (`stoppingAt`). From then on the warranted work gets no new session, and a run after
   * a crash finishes the warrant without asking again. Idempotent: a warrant already being
   * stopped is returned as it is. A warrant filed before warrants recorded their work (it has no
   * `release`) is about the work on the target's hook now: that is recorded here, with `release: 'open'`.
   *
   * @throws StoreError `INVALID_TRANSITION` when the warrant is no longer pending.
   */
  async beginStop(id: string): Promise<Warrant> {
    return this.ctx.run(async (tx) => {
      const warrant = await loadPending(tx, id);
      if (warrant.stoppingAt !== undefined) return warrant;
      let next: Warrant = { ...warrant, stoppingAt: this.ctx.now() };
      if ((warrant as Partial<Warrant>).release === undefined) {
        const hook = await tx.get<Hook>('hooks', warrant.target);
        next = {
          ...next,
          rig: hook?.rig ?? warrant.target.slice(0, warrant.target.indexOf('/')),
          release: 'open',
          ...(hook ? { beadId: hook.beadId, hookEpoch: hook.epoch } : {}),
        };
      }
      await tx.update(COLLECTION, next);
      return next;
    });
  }

  /**
   * Executes a pending warrant, in one transaction: if the target's hook still holds the work
   * recorded at filing (same bead, same epoch), that bead leaves the hook as the warrant's
   * `release` says and the polecat's last session stops counting as a start of it (an operator's
   * stop is not a crash: slung again, the bead's next session is no respawn); then the warrant is
   * marked executed with who, when and the outcome. A target that moved on keeps its new work.
   * A second execution fails with `INVALID_TRANSITION`.
   *
   * @param options.by - who executed it.
   * @param options.session - the target's session the caller stopped (or found gone), if it stopped one.
   * @returns the executed warrant, its `outcome` saying what was done.
   * @example
   * ```ts
   * await model.warrants.beginStop(warrant.id);
   * await driver.stop('api-toast', { graceMs: 10_000 });
   * const done = await model.warrants.execute(warrant.id, { by: 'deacon', session: 'api-toast' });
   * done.outcome; // { session: 'api-toast', released: { beadId, status: 'open' }, summary: '…' }
   * ```
   */
  async execute(id: string, options: { by: string; session?: string }): Promise<Warrant> {
    const by = checkName(options?.by, 'options.by');
    const session =
      options.session === undefined ? null : checkName(options.session, 'options.session');
    return this.ctx.run(async (tx) => {
      const warrant = await loadPending(tx, id);
      const { target } = warrant;
      const release: WarrantRelease = warrant.release === 'blocked' ? 'blocked' : 'open';
      const hook = await tx.get<Hook>('hooks', target);
      const stopped = session === null ? 'nothing stopped' : `session ${session} stopped`;
      let outcome: WarrantOutcome;
      if (
        hook !== undefined &&
        warrant.beadId !== undefined &&
        hook.beadId === warrant.beadId &&
        hook.epoch === warrant.hookEpoch
      ) {
        const inTx = new Ctx(this.ctx.env, tx);
        await new Hooks(inTx).detach(target, { status: release });
        await new Polecats(inTx).endSpawn(target, hook.beadId);
        outcome = {
          session,
          released: { beadId: hook.beadId, status: release },
          summary: `${stopped}; bead ${hook.beadId} released as ${release}`,
        };
      } else {
        const now = hook ? `it holds bead ${hook.beadId} now` : 'its hook is empty';
        const why =
          warrant.beadId === undefined
            ? `${target} held no work when the warrant was filed`
            : `${target} no longer holds bead ${warrant.beadId} (${now})`;
        outcome = { session, released: null, summary: `${stopped}; ${why}: nothing released` };
      }
      const next: Warrant = {
        ...warrant,
        status: 'executed',
        executedAt: this.ctx.now(),
        executedBy: by,
        outcome,
      };
      await tx.update(COLLECTION, next);
      return next;
    });
  }

  /** Withdraws a pending warrant. */
  async cancel(id: string): Promise<Warrant> {
    return this.ctx.run(async (tx) => {
      const warrant = await loadPending(tx, id);
      const next: Warrant = { ...warrant, status: 'cancelled', cancelledAt: this.ctx.now() };
      await tx.update(COLLECTION, next);
      return next;
    });
  }
}

async function loadPending(tx: StoreTx, id: string): Promise<Warrant> {
  const warrant = await load<Warrant>(tx, COLLECTION, 'warrant', id);
  if (warrant.status !== 'pending') {
    const when = warrant.status === 'executed' ? warrant.executedAt : warrant.cancelledAt;
    throw badTransition(`warrant ${id} was already ${warrant.status} at ${when}`);
  }
  return warrant;
}

/** NOT_FOUND for an agent nobody knows, naming the polecats of its rig. */
async function unknownAgent(tx: StoreTx, target: string) {
  const rig = target.slice(0, target.indexOf('/'));
  const known = await tx.find<Polecat>('polecats', 'byRig', { prefix: [rig], limit: 11 });
  return notFound(
    'agent',
    target,
    known.map((p) => p.id),
  );
}
