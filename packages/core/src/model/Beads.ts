import { ConfigError } from '../errors';
import { describe, fail } from '../internal/validate';
import type { JsonObject, StoreTx } from '../store/Store';
import { limited, onBeadStatusChanged } from './Convoys';
import {
  badTransition,
  type Ctx,
  checkJsonObject,
  checkName,
  checkText,
  load,
  type TownEnv,
} from './env';
import { requireRig } from './Rigs';
import type { Bead } from './types';

const COLLECTION = 'beads';

/** The status a hook gives a bead; only attaching and detaching hooks set or clear it. */
export const HOOKED = 'hooked';

function checkLabels(value: unknown, path: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value))
    fail('INVALID_OPTION', path, `must be an array of strings; got ${describe(value)}`);
  const seen = new Set<string>();
  return value.map((label, i) => {
    const text = checkText(label, `${path}[${i}]`, 100);
    if (seen.has(text))
      fail('INVALID_OPTION', `${path}[${i}]`, `label ${JSON.stringify(text)} is listed twice`);
    seen.add(text);
    return text;
  });
}

function checkStatus(env: TownEnv, status: unknown, path: string): string {
  if (typeof status !== 'string' || !env.statuses.has(status)) {
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path,
      message: `${path}: must be one of ${[...env.statuses].map((s) => `'${s}'`).join(', ')}; got ${describe(status)}`,
    });
  }
  return status;
}

/**
 * Moves a bead to a status inside the caller's transaction and keeps its convoys in step. Used by
 * beads, hooks and molecules; the callers check which transitions they allow.
 */
export async function writeBeadStatus(
  tx: StoreTx,
  env: TownEnv,
  bead: Bead,
  status: string,
  now: number,
  assignee: string | null | undefined,
): Promise<Bead> {
  const wasTerminal = env.terminal.has(bead.status);
  const isTerminal = env.terminal.has(status);
  const { closedAt: _closedAt, assignee: _assignee, ...rest } = bead;
  const keepAssignee =
    assignee === undefined ? bead.assignee : assignee === null ? undefined : assignee;
  const next: Bead = {
    ...rest,
    status,
    updatedAt: now,
    ...(keepAssignee === undefined ? {} : { assignee: keepAssignee }),
    ...(isTerminal
      ? { closedAt: wasTerminal && bead.closedAt !== undefined ? bead.closedAt : now }
      : {}),
  };
  await tx.update(COLLECTION, next);
  if (bead.status !== status) await onBeadStatusChanged(tx, now, bead.id, wasTerminal, isTerminal);
  return next;
}

/** Input of {@link Beads.create}. */
export interface CreateBeadInput {
  title: string;
  /** @defaultValue 'open' */
  status?: string;
  assignee?: string;
  /** A rig that exists. */
  rig?: string;
  labels?: readonly string[];
  metadata?: JsonObject;
  /** An explicit id; otherwise `<beadPrefix>-<10 characters>`. */
  id?: string;
}

/**
 * Beads: units of work. A bead's status is one of the model's statuses. Some moves are refused:
 * `hooked` is set and cleared only by hooks, and a terminal bead must be reopened before it can
 * take another terminal status (its outcome does not flip silently).
 */
export class Beads {
  /** @internal */
  constructor(private readonly ctx: Ctx) {}

  /** Creates a bead. */
  async create(input: CreateBeadInput): Promise<Bead> {
    const env = this.ctx.env;
    const title = checkText(input?.title, 'bead.title', 500);
    const status =
      input.status === undefined ? 'open' : checkStatus(env, input.status, 'bead.status');
    if (status === HOOKED) {
      fail(
        'INVALID_OPTION',
        'bead.status',
        `'${HOOKED}' is set by attaching a hook (model.hooks.attach), not at creation`,
      );
    }
    const assignee =
      input.assignee === undefined ? undefined : checkName(input.assignee, 'bead.assignee');
    const labels = checkLabels(input.labels, 'bead.labels');
    const metadata = checkJsonObject(input.metadata, 'bead.metadata');
    const id = input.id === undefined ? env.newId(env.beadPrefix) : checkName(input.id, 'bead.id');
    return this.ctx.run(async (tx) => {
      if (input.rig !== undefined) await requireRig(tx, checkName(input.rig, 'bead.rig'));
      const now = this.ctx.now();
      const bead: Bead = {
        id,
        title,
        status,
        ...(assignee === undefined ? {} : { assignee }),
        ...(input.rig === undefined ? {} : { rig: input.rig }),
        labels,
        metadata,
        createdAt: now,
        updatedAt: now,
        ...(env.terminal.has(status) ? { closedAt: now } : {}),
      };
      await tx.insert(COLLECTION, bead);
      return bead;
    });
  }

  /** The bead, or undefined. */
  async get(id: string): Promise<Bead | undefined> {
    return this.ctx.run((tx) => tx.get<Bead>(COLLECTION, id));
  }

  /** The bead; `NOT_FOUND` if there is none. */
  async require(id: string): Promise<Bead> {
    return this.ctx.run((tx) => load<Bead>(tx, COLLECTION, 'bead', id));
  }

  /** Beads by status (oldest first) or by rig; give one of the two. */
  async list(options: { status?: string; rig?: string; limit?: number }): Promise<Bead[]> {
    const { status, rig } = options ?? {};
    if (status === undefined && rig === undefined)
      fail('INVALID_OPTION', 'options', 'give a status, a rig, or both');
    return this.ctx.run((tx) =>
      rig !== undefined
        ? tx.find<Bead>(COLLECTION, 'byRig', {
            prefix: status === undefined ? [rig] : [rig, status],
            ...limited(options),
          })
        : tx.find<Bead>(COLLECTION, 'byStatus', {
            prefix: [status as string],
            ...limited(options),
          }),
    );
  }

  /**
   * Changes title, assignee (`null` clears it), labels or metadata; not the status. A hooked
   * bead's assignee is its hook's agent and cannot be changed here.
   */
  async update(
    id: string,
    patch: {
      title?: string;
      assignee?: string | null;
      labels?: readonly string[];
      metadata?: JsonObject;
    },
  ): Promise<Bead> {
    const title =
      patch.title === undefined ? undefined : checkText(patch.title, 'patch.title', 500);
    const assignee =
      patch.assignee === undefined || patch.assignee === null
        ? patch.assignee
        : checkName(patch.assignee, 'patch.assignee');
    const labels =
      patch.labels === undefined ? undefined : checkLabels(patch.labels, 'patch.labels');
    const metadata =
      patch.metadata === undefined ? undefined : checkJsonObject(patch.metadata, 'patch.metadata');
    for (const key of Object.keys(patch)) {
      if (!['title', 'assignee', 'labels', 'metadata'].includes(key)) {
        fail(
          'UNKNOWN_OPTION',
          `patch.${key}`,
          'is not a bead field update can change; allowed: title, assignee, labels, metadata (status has setStatus)',
        );
      }
    }
    return this.ctx.run(async (tx) => {
      const bead = await load<Bead>(tx, COLLECTION, 'bead', id);
      const { assignee: _assignee, ...rest } = bead;
      const nextAssignee =
        assignee === undefined ? bead.assignee : assignee === null ? undefined : assignee;
      if (bead.status === HOOKED && nextAssignee !== bead.assignee) {
        throw badTransition(
          `bead ${id} is on ${bead.assignee}'s hook, which decides its assignee; detach the hook first`,
        );
      }
      const next: Bead = {
        ...rest,
        ...(title === undefined ? {} : { title }),
        ...(labels === undefined ? {} : { labels }),
        ...(metadata === undefined ? {} : { metadata }),
        ...(nextAssignee === undefined ? {} : { assignee: nextAssignee }),
        updatedAt: this.ctx.now(),
      };
      await tx.update(COLLECTION, next);
      return next;
    });
  }

  /**
   * Moves a bead to another status. Refused: `hooked` (use hooks), leaving `hooked` (detach the
   * hook), and terminal to another terminal status (reopen first). Reopening a terminal bead
   * reopens the convoys tracking it.
   */
  async setStatus(id: string, status: string): Promise<Bead> {
    const env = this.ctx.env;
    const to = checkStatus(env, status, 'status');
    return this.ctx.run(async (tx) => {
      const bead = await load<Bead>(tx, COLLECTION, 'bead', id);
      if (bead.status === to) return bead;
      if (to === HOOKED)
        throw badTransition(`bead ${id}: '${HOOKED}' is set by attaching a hook, not by setStatus`);
      if (bead.status === HOOKED) {
        throw badTransition(
          `bead ${id} is on a hook; detach the hook (model.hooks.detach) to change its status`,
        );
      }
      if (env.terminal.has(bead.status) && env.terminal.has(to)) {
        throw badTransition(
          `bead ${id} is already ${bead.status}; reopen it before marking it ${to}`,
        );
      }
      return writeBeadStatus(tx, env, bead, to, this.ctx.now(), undefined);
    });
  }

  /** Whether a status is terminal. */
  isTerminal(status: string): boolean {
    return this.ctx.env.terminal.has(status);
  }
}
