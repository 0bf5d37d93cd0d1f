import { type Clock, isClock, realClock } from '../Clock';
import { checkRandom } from '../internal/random';
import { describe, fail, rejectUnknownKeys, requireObject } from '../internal/validate';
import type { Store, StoreTx } from '../store/Store';
import { Beads, HOOKED } from './Beads';
import { Convoys } from './Convoys';
import { Ctx, idSource, type TownEnv } from './env';
import { Gates } from './Gates';
import { builtinGateTypes, GATE_TYPE_NAME, type GateType } from './gateTypes';
import { Hooks } from './Hooks';
import { Lifecycle } from './Lifecycle';
import { Molecules } from './Molecules';
import { Polecats } from './Polecats';
import { Reports } from './Reports';
import { Respawns } from './Respawns';
import { Rigs } from './Rigs';
import { townSchema } from './schema';
import { Warrants } from './Warrants';

/** The default bead statuses. */
export const DEFAULT_STATUSES: readonly string[] = [
  'open',
  'in_progress',
  'blocked',
  HOOKED,
  'done',
  'wontfix',
];
/** The default terminal statuses. */
export const DEFAULT_TERMINAL_STATUSES: readonly string[] = ['done', 'wontfix'];

const OPTION_KEYS = [
  'store',
  'clock',
  'statuses',
  'terminalStatuses',
  'gateTypes',
  'beadPrefix',
  'random',
] as const;
const STATUS = /^[a-z][a-z0-9_]{0,31}$/;
const PREFIX = /^[a-z][a-z0-9]{0,7}$/;

/** Options of {@link createTownModel}. */
export interface TownModelOptions {
  /** Where the records live (a `MemoryStore`, the SQLite store, …) opened with the town schema. */
  store: Store;
  /**
   * Every time the model stamps comes from it.
   * @defaultValue realClock
   */
  clock?: Clock;
  /**
   * Every bead status. Must include `open` (the initial status) and `hooked` (set by hooks).
   * @defaultValue open, in_progress, blocked, hooked, done, wontfix
   */
  statuses?: readonly string[];
  /**
   * The statuses in which a bead is finished (convoys close when all their beads are in one).
   * The first is the status of digest beads.
   * @defaultValue done, wontfix
   */
  terminalStatuses?: readonly string[];
  /**
   * Gate types beyond the built-in `timer`, `human` and `gh:run`; one with a built-in's name
   * replaces it.
   */
  gateTypes?: readonly GateType[];
  /**
   * The prefix of generated bead ids (`<prefix>-<10 characters>`): 1 to 8 lowercase letters and
   * digits, starting with a letter.
   * @defaultValue 'bd'
   */
  beadPrefix?: string;
  /**
   * The source of record ids and claim tokens: a function returning numbers uniform in [0, 1).
   * Give a seeded one (`seededRandom` from `@belfry/testing`) to get the same ids on every run;
   * the model checks each number it draws. Without it, ids are cryptographically random.
   * @defaultValue crypto-random ids (nanoid)
   */
  random?: () => number;
}

function statusList(value: unknown, path: string, fallback: readonly string[]): string[] {
  if (value === undefined) return [...fallback];
  if (!Array.isArray(value) || value.length === 0)
    fail('INVALID_OPTION', path, `must be a non-empty array of statuses; got ${describe(value)}`);
  const seen = new Set<string>();
  return value.map((s, i) => {
    if (typeof s !== 'string' || !STATUS.test(s)) {
      fail(
        'INVALID_OPTION',
        `${path}[${i}]`,
        `must be a status name: lowercase letters, digits and '_', starting with a letter; got ${describe(s)}`,
      );
    }
    if (seen.has(s))
      fail('INVALID_OPTION', `${path}[${i}]`, `status ${JSON.stringify(s)} is listed twice`);
    seen.add(s);
    return s;
  });
}

function checkEnv(options: TownModelOptions): TownEnv {
  const o = requireObject(options, 'options');
  rejectUnknownKeys(o, OPTION_KEYS, 'options');
  const store = o.store as Store | undefined;
  if (!store || typeof store.transaction !== 'function' || typeof store.schema !== 'object') {
    fail('MISSING_OPTION', 'options.store', 'must be a Store (for example new MemoryStore())');
  }
  if (store.schema.name !== townSchema.name || store.schema.version !== townSchema.version) {
    fail(
      'INVALID_OPTION',
      'options.store',
      `must be opened with the town schema (${townSchema.name} v${townSchema.version}); it holds ${store.schema.name} v${store.schema.version}`,
    );
  }
  if (o.clock !== undefined && !isClock(o.clock))
    fail('INVALID_OPTION', 'options.clock', 'must have now(), setTimeout and clearTimeout');
  const statuses = statusList(o.statuses, 'options.statuses', DEFAULT_STATUSES);
  for (const required of ['open', HOOKED]) {
    if (!statuses.includes(required))
      fail('INVALID_OPTION', 'options.statuses', `must include '${required}'`);
  }
  const terminal = statusList(
    o.terminalStatuses,
    'options.terminalStatuses',
    DEFAULT_TERMINAL_STATUSES,
  );
  for (const [i, s] of terminal.entries()) {
    if (!statuses.includes(s))
      fail(
        'INVALID_OPTION',
        `options.terminalStatuses[${i}]`,
        `${JSON.stringify(s)} is not one of options.statuses`,
      );
    if (s === 'open' || s === HOOKED)
      fail('INVALID_OPTION', `options.terminalStatuses[${i}]`, `'${s}' cannot be terminal`);
  }
  const gateTypes = new Map<string, GateType>(builtinGateTypes.map((g) => [g.type, g]));
  if (o.gateTypes !== undefined) {
    if (!Array.isArray(o.gateTypes))
      fail(
        'INVALID_OPTION',
        'options.gateTypes',
        `must be an array of gate types; got ${describe(o.gateTypes)}`,
      );
    const seen = new Set<string>();
    o.gateTypes.forEach((g: GateType, i: number) => {
      if (typeof g?.type !== 'string' || !GATE_TYPE_NAME.test(g.type)) {
        fail(
          'INVALID_OPTION',
          `options.gateTypes[${i}].type`,
          `must be lowercase letters, digits, ':', '_', '-', starting with a letter; got ${describe(g?.type)}`,
        );
      }
      if (typeof g.validate !== 'function')
        fail(
          'MISSING_OPTION',
          `options.gateTypes[${i}].validate`,
          'must be a function (spec) => JSON object',
        );
      if (seen.has(g.type))
        fail(
          'INVALID_OPTION',
          `options.gateTypes[${i}].type`,
          `gate type ${g.type} is given twice`,
        );
      seen.add(g.type);
      gateTypes.set(g.type, g);
    });
  }
  const beadPrefix = o.beadPrefix ?? 'bd';
  if (typeof beadPrefix !== 'string' || !PREFIX.test(beadPrefix)) {
    fail(
      'INVALID_OPTION',
      'options.beadPrefix',
      `must be 1 to 8 lowercase letters and digits, starting with a letter; got ${describe(beadPrefix)}`,
    );
  }
  const random = checkRandom(o.random, 'options.random');
  return {
    store,
    clock: (o.clock as Clock | undefined) ?? realClock,
    statuses: new Set(statuses),
    terminal: new Set(terminal),
    gateTypes,
    beadPrefix,
    ...idSource(random),
  };
}

/**
 * The town's records and the rules they follow, on any {@link Store}. Every operation is atomic:
 * it runs in a store transaction of its own, or in the caller's (see
 * {@link TownModel.transaction}), and a rule it breaks rolls the whole transaction back.
 *
 * @example
 * ```ts
 * const model = createTownModel({ store: new MemoryStore(), clock });
 * await model.rigs.create({ name: 'api' });
 * const bead = await model.beads.create({ title: 'fix the login bug', rig: 'api' });
 * await model.hooks.attach({ agent: 'api/toast', beadId: bead.id, rig: 'api' });
 * ```
 */
export class TownModel {
  readonly rigs: Rigs;
  readonly beads: Beads;
  readonly hooks: Hooks;
  readonly gates: Gates;
  readonly molecules: Molecules;
  readonly convoys: Convoys;
  readonly warrants: Warrants;
  readonly reports: Reports;
  readonly lifecycle: Lifecycle;
  readonly respawns: Respawns;
  readonly polecats: Polecats;

  /** @internal */
  constructor(
    private readonly env: TownEnv,
    private readonly tx?: StoreTx,
  ) {
    const ctx = new Ctx(env, tx);
    this.rigs = new Rigs(ctx);
    this.beads = new Beads(ctx);
    this.hooks = new Hooks(ctx);
    this.gates = new Gates(ctx);
    this.molecules = new Molecules(ctx);
    this.convoys = new Convoys(ctx, (status) => env.terminal.has(status));
    this.warrants = new Warrants(ctx);
    this.reports = new Reports(ctx);
    this.lifecycle = new Lifecycle(ctx);
    this.respawns = new Respawns(ctx);
    this.polecats = new Polecats(ctx);
  }

  /** The store underneath. */
  get store(): Store {
    return this.env.store;
  }

  /** The clock the model stamps times with. */
  get clock(): Clock {
    return this.env.clock;
  }

  /**
   * Runs several operations as one: they all apply, or (if `fn` throws) none does. Inside, use
   * the model passed to `fn`; a transaction inside a transaction joins the outer one.
   *
   * @example
   * ```ts
   * await model.transaction(async (m) => {
   *   const req = await m.lifecycle.claimNext({ claimer: 'deacon', leaseMs: 60_000, actions: ['park'] });
   *   if (req) {
   *     await m.rigs.park(req.target);
   *     await m.lifecycle.complete(req.id, { token: req.claim!.token });
   *   }
   * });
   * ```
   */
  async transaction<T>(fn: (model: TownModel) => Promise<T>): Promise<T> {
    if (this.tx) return fn(this);
    return this.env.store.transaction((tx) => fn(new TownModel(this.env, tx)));
  }

  /** The schema version recorded in the store. */
  async schemaVersion(): Promise<number> {
    return this.env.store.schemaVersion();
  }

  /** Whether a bead status is terminal. */
  isTerminal(status: string): boolean {
    return this.env.terminal.has(status);
  }
}

/**
 * Opens the town model on a store.
 *
 * @param options - see {@link TownModelOptions}.
 * @returns the model.
 * @throws ConfigError for bad options, naming the option and what is allowed.
 * @example
 * ```ts
 * const model = createTownModel({ store: new MemoryStore(), terminalStatuses: ['done', 'wontfix'] });
 * ```
 */
export function createTownModel(options: TownModelOptions): TownModel {
  return new TownModel(checkEnv(options));
}
