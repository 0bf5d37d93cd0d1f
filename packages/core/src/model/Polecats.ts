import { StoreError } from '../errors';
import { describe, fail } from '../internal/validate';
import { agentId, checkPolecatName } from '../town/names';
import { HOOKED, writeBeadStatus } from './Beads';
import { badTransition, type Ctx, checkText, load, notFound } from './env';
import { requireRig } from './Rigs';
import type { Bead, Hook, Polecat, PolecatExit } from './types';

const COLLECTION = 'polecats';
// No '-': a session is named `<rig>-<polecat>`, so the polecat part must not contain the
// separator (rig `a` + polecat `b-c` and rig `a-b` + polecat `c` would share a session).

/** Polecat names handed out in order, Mad Max style, before falling back to `p<n>`. */
export const DEFAULT_POLECAT_NAMES: readonly string[] = [
  'toast',
  'nux',
  'slit',
  'rictus',
  'capable',
  'furiosa',
  'dag',
  'cheedo',
  'angharad',
  'ace',
  'morsov',
  'keeper',
  'valkyrie',
  'corpus',
  'organic',
  'scrotus',
  'bullet',
  'joe',
  'max',
  'glory',
];

/** Lines of a session's last output kept with its exit. */
export const EXIT_OUTPUT_LINES = 20;
/** Characters kept of each line of a session's last output. */
export const EXIT_LINE_CHARS = 200;
/** Characters kept of a session's last output in all. */
export const EXIT_OUTPUT_CHARS = 2_000;

const EXIT_REASONS: readonly PolecatExit['reason'][] = ['exited', 'missing', 'lost', 'stopped'];

/**
 * Bounds a session's last output for its exit record: the newest {@link EXIT_OUTPUT_LINES} lines,
 * each cut to {@link EXIT_LINE_CHARS} characters (marked `…`), then the oldest dropped until
 * {@link EXIT_OUTPUT_CHARS} characters remain. Output is text the town does not control: it is
 * kept bounded rather than refused. @internal
 */
export function boundExitOutput(lines: readonly string[]): string[] {
  const kept = lines
    .slice(-EXIT_OUTPUT_LINES)
    .map((l) => (l.length <= EXIT_LINE_CHARS ? l : `${l.slice(0, EXIT_LINE_CHARS - 1)}…`));
  let total = kept.reduce((n, l) => n + l.length, 0);
  while (total > EXIT_OUTPUT_CHARS) total -= (kept.shift() as string).length;
  return kept;
}

function badExit(agent: string, what: string, value: unknown): never {
  throw new StoreError({
    code: 'INVALID_RECORD',
    message: `polecat ${agent}: exit ${what}; got ${describe(value)}`,
  });
}

/** Checks an exit before it is recorded. */
function checkExit(agent: string, exit: PolecatExit): PolecatExit {
  if (typeof exit !== 'object' || exit === null) badExit(agent, 'must be an object', exit);
  const { epoch, beadId, reason, exitCode, signal, at, lastOutput } = exit;
  if (!Number.isSafeInteger(epoch) || epoch < 0)
    badExit(agent, 'epoch must be an integer >= 0', epoch);
  if (typeof beadId !== 'string' || beadId.length === 0)
    badExit(agent, 'beadId must be a non-empty string', beadId);
  if (!EXIT_REASONS.includes(reason))
    badExit(agent, `reason must be one of ${EXIT_REASONS.join(', ')}`, reason);
  if (exitCode !== null && !Number.isSafeInteger(exitCode))
    badExit(agent, 'exitCode must be an integer or null', exitCode);
  if (signal !== null && (typeof signal !== 'string' || signal.length === 0))
    badExit(agent, 'signal must be a non-empty string or null', signal);
  if ((reason === 'missing' || reason === 'lost') && (exitCode !== null || signal !== null))
    badExit(agent, `of a '${reason}' session has neither exitCode nor signal`, {
      exitCode,
      signal,
    });
  if (!Number.isFinite(at)) badExit(agent, 'at must be a finite time (clock ms)', at);
  if (!Array.isArray(lastOutput) || lastOutput.some((l) => typeof l !== 'string'))
    badExit(agent, 'lastOutput must be an array of strings', lastOutput);
  return {
    epoch,
    beadId,
    reason,
    exitCode,
    signal,
    at,
    lastOutput: boundExitOutput(lastOutput),
  };
}

/**
 * Polecats: named agents of a rig. `sling` gives a bead to a rig by putting it on an idle
 * polecat's hook (or a new polecat's); spawns are claimed here before a session starts.
 */
export class Polecats {
  /** @internal */
  constructor(private readonly ctx: Ctx) {}

  /** The polecat, or undefined. */
  async get(agent: string): Promise<Polecat | undefined> {
    return this.ctx.run((tx) => tx.get<Polecat>(COLLECTION, agent));
  }

  /** A rig's polecats, by name. */
  async list(rig: string): Promise<Polecat[]> {
    return this.ctx.run((tx) => tx.find<Polecat>(COLLECTION, 'byRig', { prefix: [rig] }));
  }

  /**
   * Gives a bead to a rig: puts it on the hook of the rig's first idle polecat, or of a new one
   * named from `names` (then `p<n>`). All in one transaction, so two concurrent slings never
   * share a polecat. Slinging a bead that is already on a hook of this rig returns that hook.
   * A new hook resets the bead's respawn count.
   * Refused for parked and docked rigs (`INVALID_TRANSITION`): the operator wins.
   */
  async sling(
    beadId: string,
    rig: string,
    options: { names?: readonly string[] } = {},
  ): Promise<{ polecat: Polecat; hook: Hook; created: boolean }> {
    const names = (options.names ?? DEFAULT_POLECAT_NAMES).map((n, i) =>
      checkPolecatName(n, `options.names[${i}]`),
    );
    const env = this.ctx.env;
    return this.ctx.run(async (tx) => {
      const r = await requireRig(tx, rig);
      const bead = await load<Bead>(tx, 'beads', 'bead', beadId);
      const holder = (await tx.find<Hook>('hooks', 'byBead', { prefix: [beadId] }))[0];
      if (holder) {
        if (holder.rig === rig) {
          const polecat = await load<Polecat>(tx, COLLECTION, 'polecat', holder.id);
          return { polecat, hook: holder, created: false };
        }
        throw badTransition(
          `bead ${beadId} is already on ${holder.id}'s hook in rig ${holder.rig}`,
        );
      }
      if (r.state !== 'operational')
        throw badTransition(`rig ${rig} is ${r.state}; it takes no new work`);
      if (env.terminal.has(bead.status))
        throw badTransition(`bead ${beadId} is ${bead.status}; reopen it before slinging it`);
      const existing = await tx.find<Polecat>(COLLECTION, 'byRig', { prefix: [rig] });
      let polecat: Polecat | undefined;
      for (const p of existing) {
        if (!(await tx.get<Hook>('hooks', p.id))) {
          polecat = p;
          break;
        }
      }
      let created = false;
      const now = this.ctx.now();
      if (!polecat) {
        const taken = new Set(existing.map((p) => p.name));
        let name = names.find((n) => !taken.has(n));
        if (name === undefined) {
          let n = existing.length + 1;
          while (taken.has(`p${n}`)) n++;
          name = `p${n}`;
        }
        polecat = { id: agentId(rig, name), rig, name, createdAt: now };
        await tx.insert(COLLECTION, polecat);
        created = true;
      }
      const hook: Hook = {
        id: polecat.id,
        beadId,
        rig,
        attachedAt: now,
        epoch: await tx.nextSequence('hook.epoch'),
      };
      await tx.insert('hooks', hook);
      await writeBeadStatus(tx, env, bead, HOOKED, now, polecat.id);
      // A new assignment starts a new respawn budget (a blocked bead the operator slings again).
      await tx.delete('respawns', beadId);
      return { polecat, hook, created };
    });
  }

  /**
   * Claims a spawn for the polecat's current bead: a new epoch, recorded before the session is
   * started. `respawn` is true when the previous spawn was for the same bead, did start, and was
   * not stopped on purpose ({@link Polecats.recordStop}): its session crashed, and the caller
   * counts it against the bead's respawn limit.
   */
  async beginSpawn(agent: string, beadId: string): Promise<{ epoch: number; respawn: boolean }> {
    return this.ctx.run(async (tx) => {
      const polecat = await tx.get<Polecat>(COLLECTION, agent);
      if (!polecat) throw notFound('polecat', agent);
      // A session lost with its host (a tmux server's death) did not crash either.
      const lost =
        polecat.lastExit?.reason === 'lost' && polecat.lastExit.epoch === polecat.spawnEpoch;
      const respawn =
        polecat.spawnBeadId === beadId &&
        polecat.spawnStartedAt !== undefined &&
        !lost &&
        (polecat.stoppedEpoch === undefined || polecat.stoppedEpoch !== polecat.spawnEpoch);
      const epoch = await tx.nextSequence('spawn.epoch');
      const {
        spawnStartedAt: _started,
        spawnHost: _host,
        stoppedEpoch: _stopped,
        stopReason: _reason,
        stoppedAt: _at,
        ...rest
      } = polecat;
      await tx.update(COLLECTION, {
        ...rest,
        spawnEpoch: epoch,
        spawnBeadId: beadId,
        spawnClaimedAt: this.ctx.now(),
      });
      return { epoch, respawn };
    });
  }

  /**
   * Records how the polecat's session of `exit.epoch` ended, once: a second record of the same
   * epoch (a probe and a survey noticing the same crash) changes nothing. `lastOutput` is kept
   * bounded (see {@link PolecatExit}).
   *
   * @returns `recorded: true` when this call recorded it (the caller announces it), and the
   * polecat as stored.
   * @throws StoreError `NOT_FOUND` (no such polecat), `INVALID_RECORD` (a malformed exit).
   * @example
   * ```ts
   * const { recorded } = await model.polecats.recordExit('api/toast', {
   *   epoch: 7, beadId: 'bd-1', reason: 'exited', exitCode: 1, signal: null,
   *   at: Date.now(), lastOutput: ['Error: out of memory'],
   * });
   * ```
   */
  async recordExit(
    agent: string,
    exit: PolecatExit,
  ): Promise<{ recorded: boolean; polecat: Polecat }> {
    const checked = checkExit(agent, exit);
    return this.ctx.run(async (tx) => {
      const polecat = await tx.get<Polecat>(COLLECTION, agent);
      if (!polecat) throw notFound('polecat', agent);
      if (polecat.lastExit !== undefined && polecat.lastExit.epoch >= checked.epoch)
        return { recorded: false, polecat };
      const next: Polecat = { ...polecat, lastExit: checked };
      await tx.update(COLLECTION, next);
      return { recorded: true, polecat: next };
    });
  }

  /**
   * Records that the town stops the session of spawn `epoch` on purpose (a dock, a restart
   * request, a warrant, `done`), before it stops it: the next spawn of the same bead is then not
   * a respawn. A session that ends without this record crashed, and its respawn counts.
   *
   * @param options - `epoch`: the stopped session's spawn epoch (integer >= 0); `reason`: why
   *   (non-empty, at most 500 characters).
   * @returns the polecat. @throws StoreError `NOT_FOUND`; ConfigError for a bad epoch or reason.
   * @example
   * ```ts
   * await model.polecats.recordStop('api/toast', { epoch: 7, reason: 'rig api docked' });
   * ```
   */
  async recordStop(agent: string, options: { epoch: number; reason: string }): Promise<Polecat> {
    const epoch = options?.epoch;
    if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0)
      fail('INVALID_OPTION', 'options.epoch', `must be an integer >= 0; got ${describe(epoch)}`);
    const reason = checkText(options.reason, 'options.reason', 500);
    return this.ctx.run(async (tx) => {
      const polecat = await tx.get<Polecat>(COLLECTION, agent);
      if (!polecat) throw notFound('polecat', agent);
      const next: Polecat = {
        ...polecat,
        stoppedEpoch: epoch,
        stopReason: reason,
        stoppedAt: this.ctx.now(),
      };
      await tx.update(COLLECTION, next);
      return next;
    });
  }

  /**
   * The polecat's session for `beadId` was ended on purpose (an operator's warrant, not a crash):
   * its next spawn of that bead is a first start, not a respawn (see {@link beginSpawn}), so it
   * does not count against the bead's respawn limit. Does nothing for another bead's spawn.
   */
  async endSpawn(agent: string, beadId: string): Promise<void> {
    return this.ctx.run(async (tx) => {
      const polecat = await tx.get<Polecat>(COLLECTION, agent);
      if (polecat?.spawnBeadId !== beadId || polecat.spawnStartedAt === undefined) return;
      const { spawnStartedAt: _started, ...rest } = polecat;
      await tx.update(COLLECTION, rest);
    });
  }

  /**
   * Records that the session of a claimed epoch started (or was found running). Adopting a
   * running session of another epoch records that epoch instead. A stop recorded earlier
   * (`recordStop`) is cleared: the session runs, and its next end counts unless recorded again.
   * `host` is what runs the session (the driver's {@link SessionStatus.host}), kept to tell a
   * session lost with its host from one that crashed.
   */
  async markStarted(agent: string, epoch: number, host?: string): Promise<Polecat> {
    return this.ctx.run(async (tx) => {
      const polecat = await tx.get<Polecat>(COLLECTION, agent);
      if (!polecat) throw notFound('polecat', agent);
      if (!Number.isSafeInteger(epoch) || epoch < 0) {
        throw new StoreError({
          code: 'INVALID_RECORD',
          message: `polecat ${agent}: epoch must be an integer >= 0`,
        });
      }
      // A session seen running again is alive: whatever ends it from now on is news, so an
      // older stop record (a stop cut off by a crash) no longer excuses it.
      if (host !== undefined && (typeof host !== 'string' || host === '' || host.length > 200))
        throw new StoreError({
          code: 'INVALID_RECORD',
          message: `polecat ${agent}: host must be a string of 1 to 200 characters`,
        });
      const {
        stoppedEpoch: _stopped,
        stopReason: _reason,
        stoppedAt: _at,
        spawnHost: _host,
        ...rest
      } = polecat;
      const next: Polecat = {
        ...rest,
        spawnEpoch: epoch,
        spawnStartedAt: this.ctx.now(),
        ...(host === undefined ? {} : { spawnHost: host }),
      };
      await tx.update(COLLECTION, next);
      return next;
    });
  }
}
