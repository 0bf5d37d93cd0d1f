import type { AnyActorLogic, EventObject } from 'xstate';
import { type Clock, isClock } from '../Clock';
import type {
  ChildSpec,
  InputContext,
  ProbeOptions,
  RestartType,
  ShutdownPolicy,
} from '../childSpec';
import type { SupervisorEventBus } from '../events';
import { SHUTDOWN_EVENT_TYPE } from '../exit';
import type { AutoShutdown, Strategy, SupervisorOptions } from '../types';
import { isMachineLogic, isSupervisorLogic } from './brand';
import {
  describe,
  fail,
  number,
  oneOf,
  optionalString,
  rejectUnknownKeys,
  requireObject,
} from './validate';

const DEFAULT_SHUTDOWN_EVENT: EventObject = Object.freeze({ type: SHUTDOWN_EVENT_TYPE });
const DEFAULT_WORKER_BUDGET_MS = 5_000;

export interface NormalizedBackoff {
  minMs: number;
  maxMs: number;
  factor: number;
  jitter: number;
  resetAfterMs: number;
}

export interface NormalizedProbe {
  check: ProbeOptions['check'];
  periodMs: number;
  timeoutMs: number;
  failureThreshold: number;
  initialDelayMs: number | undefined;
}

export interface NormalizedHeartbeat {
  intervalMs: number;
  graceMs: number;
}

export interface NormalizedChild {
  id: string;
  logic: AnyActorLogic;
  input: unknown;
  getInput: ((context: InputContext) => unknown) | undefined;
  systemId: string | undefined;
  restart: RestartType;
  shutdown: ShutdownPolicy;
  shutdownEvent: EventObject;
  significant: boolean;
  backoff: NormalizedBackoff | undefined;
  startup: NormalizedProbe | undefined;
  liveness: NormalizedProbe | undefined;
  heartbeat: NormalizedHeartbeat | undefined;
  type: 'worker' | 'supervisor';
}

export interface NormalizedOptions {
  id: string | undefined;
  strategy: Strategy;
  maxRestarts: number;
  withinMs: number;
  autoShutdown: AutoShutdown;
  maxChildren: number;
  children: NormalizedChild[] | ((input: unknown) => ReadonlyArray<ChildSpec>);
  clock: Clock | undefined;
  events: SupervisorEventBus | undefined;
  random: (() => number) | undefined;
}

const STRATEGIES: readonly Strategy[] = ['one_for_one', 'one_for_all', 'rest_for_one'];
const AUTO_SHUTDOWNS: readonly AutoShutdown[] = ['never', 'any_significant', 'all_significant'];
const RESTART_TYPES: readonly RestartType[] = ['permanent', 'transient', 'temporary'];

const SUPERVISOR_KEYS = [
  'id',
  'strategy',
  'maxRestarts',
  'withinMs',
  'autoShutdown',
  'maxChildren',
  'children',
  'clock',
  'events',
  'random',
] as const;
const CHILD_KEYS = [
  'id',
  'logic',
  'input',
  'getInput',
  'systemId',
  'restart',
  'shutdown',
  'shutdownEvent',
  'significant',
  'backoff',
  'probes',
] as const;
const BACKOFF_KEYS = ['minMs', 'maxMs', 'factor', 'jitter', 'resetAfterMs'] as const;
const PROBES_KEYS = ['startup', 'liveness', 'heartbeat'] as const;
const PROBE_KEYS = [
  'check',
  'periodMs',
  'timeoutMs',
  'failureThreshold',
  'initialDelayMs',
] as const;
const HEARTBEAT_KEYS = ['intervalMs', 'graceMs'] as const;

function isActorLogic(value: unknown): value is AnyActorLogic {
  if (typeof value !== 'object' || value === null) return false;
  const l = value as Record<string, unknown>;
  return typeof l.transition === 'function' && typeof l.getInitialSnapshot === 'function';
}

function normalizeProbe(
  value: unknown,
  path: string,
  startup: boolean,
): NormalizedProbe | undefined {
  if (value === undefined) return undefined;
  const p = requireObject(value, path);
  rejectUnknownKeys(p, PROBE_KEYS, path);
  if (typeof p.check !== 'function') {
    fail(
      'MISSING_OPTION',
      `${path}.check`,
      `must be a function returning a boolean or a promise of one; got ${describe(p.check)}`,
    );
  }
  return {
    check: p.check as ProbeOptions['check'],
    periodMs: number(p.periodMs, `${path}.periodMs`, 10_000, { min: 0, minExclusive: true }),
    timeoutMs: number(p.timeoutMs, `${path}.timeoutMs`, 1_000, { min: 0, minExclusive: true }),
    failureThreshold: number(p.failureThreshold, `${path}.failureThreshold`, 3, {
      min: 1,
      integer: true,
    }),
    initialDelayMs:
      p.initialDelayMs === undefined
        ? startup
          ? 0
          : undefined
        : number(p.initialDelayMs, `${path}.initialDelayMs`, 0, { min: 0 }),
  };
}

/**
 * Checks one child spec and fills in its defaults.
 *
 * @throws ConfigError naming the option that is wrong.
 */
export function normalizeChild(
  value: unknown,
  path: string,
  autoShutdown: AutoShutdown,
): NormalizedChild {
  const spec = requireObject(value, path);
  rejectUnknownKeys(spec, CHILD_KEYS, path);
  if (typeof spec.id !== 'string' || spec.id.length === 0) {
    fail(
      spec.id === undefined ? 'MISSING_OPTION' : 'INVALID_OPTION',
      `${path}.id`,
      `must be a non-empty string; got ${describe(spec.id)}`,
    );
  }
  const id = spec.id;
  if (!isActorLogic(spec.logic)) {
    fail(
      spec.logic === undefined ? 'MISSING_OPTION' : 'INVALID_OPTION',
      `${path}.logic`,
      `must be xstate actor logic (a machine, fromPromise, fromCallback, supervisor(), ...); got ${describe(spec.logic)}`,
    );
  }
  const logic = spec.logic;
  if (spec.getInput !== undefined && typeof spec.getInput !== 'function') {
    fail(
      'INVALID_OPTION',
      `${path}.getInput`,
      `must be a function; got ${describe(spec.getInput)}`,
    );
  }
  if (spec.getInput !== undefined && 'input' in spec && spec.input !== undefined) {
    fail('BAD_COMBINATION', `${path}.getInput`, 'give either input or getInput, not both');
  }
  const restart = oneOf(spec.restart, RESTART_TYPES, `${path}.restart`, 'permanent');
  const type = isSupervisorLogic(logic) ? 'supervisor' : 'worker';
  let shutdown: ShutdownPolicy;
  if (spec.shutdown === undefined) {
    shutdown =
      type === 'supervisor'
        ? 'infinity'
        : isMachineLogic(logic)
          ? DEFAULT_WORKER_BUDGET_MS
          : 'brutal';
  } else if (spec.shutdown === 'brutal' || spec.shutdown === 'infinity') {
    shutdown = spec.shutdown;
  } else if (
    typeof spec.shutdown === 'number' &&
    Number.isInteger(spec.shutdown) &&
    spec.shutdown >= 0
  ) {
    shutdown = spec.shutdown;
  } else {
    fail(
      'INVALID_OPTION',
      `${path}.shutdown`,
      `must be 'brutal', 'infinity' or an integer number of ms >= 0; got ${describe(spec.shutdown)}`,
    );
  }
  let shutdownEvent = DEFAULT_SHUTDOWN_EVENT;
  if (spec.shutdownEvent !== undefined) {
    const ev = requireObject(spec.shutdownEvent, `${path}.shutdownEvent`);
    if (typeof ev.type !== 'string' || ev.type.length === 0) {
      fail(
        'INVALID_OPTION',
        `${path}.shutdownEvent.type`,
        `must be a non-empty string; got ${describe(ev.type)}`,
      );
    }
    shutdownEvent = ev as EventObject;
    if (type === 'supervisor' && ev.type !== SHUTDOWN_EVENT_TYPE) {
      fail(
        'BAD_COMBINATION',
        `${path}.shutdownEvent`,
        `a sub-supervisor stops gracefully only on '${SHUTDOWN_EVENT_TYPE}'; leave shutdownEvent out`,
      );
    }
  }
  if (spec.significant !== undefined && typeof spec.significant !== 'boolean') {
    fail(
      'INVALID_OPTION',
      `${path}.significant`,
      `must be a boolean; got ${describe(spec.significant)}`,
    );
  }
  const significant = spec.significant === true;
  if (significant && restart === 'permanent') {
    fail(
      'BAD_COMBINATION',
      `${path}.significant`,
      "a permanent child cannot be significant; use restart 'transient' or 'temporary'",
    );
  }
  if (significant && autoShutdown === 'never') {
    fail(
      'BAD_COMBINATION',
      `${path}.significant`,
      "significant children need the supervisor's autoShutdown to be 'any_significant' or 'all_significant'",
    );
  }
  let backoff: NormalizedBackoff | undefined;
  if (spec.backoff !== undefined) {
    const bp = `${path}.backoff`;
    const b = requireObject(spec.backoff, bp);
    rejectUnknownKeys(b, BACKOFF_KEYS, bp);
    const minMs = number(b.minMs, `${bp}.minMs`, 100, { min: 0 });
    const maxMs = number(b.maxMs, `${bp}.maxMs`, Math.max(30_000, minMs), { min: 0 });
    if (maxMs < minMs)
      fail('BAD_COMBINATION', `${bp}.maxMs`, `must be >= minMs (${minMs}); got ${maxMs}`);
    backoff = {
      minMs,
      maxMs,
      factor: number(b.factor, `${bp}.factor`, 2, { min: 1 }),
      jitter: number(b.jitter, `${bp}.jitter`, 0.2, { min: 0, max: 1 }),
      resetAfterMs: number(b.resetAfterMs, `${bp}.resetAfterMs`, 60_000, {
        min: 0,
        minExclusive: true,
      }),
    };
  }
  let startup: NormalizedProbe | undefined;
  let liveness: NormalizedProbe | undefined;
  let heartbeat: NormalizedHeartbeat | undefined;
  if (spec.probes !== undefined) {
    const pp = `${path}.probes`;
    const probes = requireObject(spec.probes, pp);
    rejectUnknownKeys(probes, PROBES_KEYS, pp);
    startup = normalizeProbe(probes.startup, `${pp}.startup`, true);
    liveness = normalizeProbe(probes.liveness, `${pp}.liveness`, false);
    if (probes.heartbeat !== undefined) {
      const hp = `${pp}.heartbeat`;
      const h = requireObject(probes.heartbeat, hp);
      rejectUnknownKeys(h, HEARTBEAT_KEYS, hp);
      if (h.intervalMs === undefined)
        fail(
          'MISSING_OPTION',
          `${hp}.intervalMs`,
          'is required: how often the child promises to beat, in ms',
        );
      const intervalMs = number(h.intervalMs, `${hp}.intervalMs`, 0, {
        min: 0,
        minExclusive: true,
      });
      heartbeat = {
        intervalMs,
        graceMs: number(h.graceMs, `${hp}.graceMs`, intervalMs, { min: 0 }),
      };
    }
  }
  return {
    id,
    logic,
    input: spec.input,
    getInput: spec.getInput as NormalizedChild['getInput'],
    systemId: optionalString(spec.systemId, `${path}.systemId`),
    restart,
    shutdown,
    shutdownEvent,
    significant,
    backoff,
    startup,
    liveness,
    heartbeat,
    type,
  };
}

/** Checks a whole list of child specs: each one, then that ids are unique and within the cap. */
export function normalizeChildren(
  value: unknown,
  path: string,
  autoShutdown: AutoShutdown,
  maxChildren: number,
): NormalizedChild[] {
  if (!Array.isArray(value))
    fail(
      'INVALID_OPTION',
      path,
      `must be an array of child specs or a function returning one; got ${describe(value)}`,
    );
  const seen = new Set<string>();
  const out: NormalizedChild[] = [];
  value.forEach((spec, i) => {
    const child = normalizeChild(spec, `${path}[${i}]`, autoShutdown);
    if (seen.has(child.id))
      fail(
        'DUPLICATE_ID',
        `${path}[${i}].id`,
        `the id ${describe(child.id)} is used by an earlier child; ids must be unique`,
      );
    seen.add(child.id);
    out.push(child);
  });
  if (out.length > maxChildren)
    fail('BAD_COMBINATION', path, `has ${out.length} children but maxChildren is ${maxChildren}`);
  return out;
}

/**
 * Checks supervisor options and fills in defaults.
 *
 * @throws ConfigError naming the option that is wrong.
 */
export function normalizeOptions(value: unknown): NormalizedOptions {
  const opts = requireObject(value === undefined ? {} : value, 'options');
  rejectUnknownKeys(opts, SUPERVISOR_KEYS, 'options');
  const autoShutdown = oneOf(opts.autoShutdown, AUTO_SHUTDOWNS, 'options.autoShutdown', 'never');
  const maxChildren = number(opts.maxChildren, 'options.maxChildren', Number.POSITIVE_INFINITY, {
    min: 1,
    integer: true,
    allowInfinity: true,
  });
  if (opts.clock !== undefined && !isClock(opts.clock)) {
    fail(
      'INVALID_OPTION',
      'options.clock',
      'must have now(), setTimeout(callback, ms) and clearTimeout(handle)',
    );
  }
  if (opts.random !== undefined && typeof opts.random !== 'function') {
    fail(
      'INVALID_OPTION',
      'options.random',
      `must be a function returning a number in [0, 1); got ${describe(opts.random)}`,
    );
  }
  const events = opts.events as Record<string, unknown> | undefined;
  if (
    events !== undefined &&
    (typeof events !== 'object' ||
      events === null ||
      typeof events.emit !== 'function' ||
      typeof events.on !== 'function')
  ) {
    fail(
      'INVALID_OPTION',
      'options.events',
      'must be an eventemitter3 EventEmitter (a SupervisorEventBus)',
    );
  }
  const children =
    typeof opts.children === 'function'
      ? (opts.children as (input: unknown) => ReadonlyArray<ChildSpec>)
      : normalizeChildren(opts.children ?? [], 'options.children', autoShutdown, maxChildren);
  return {
    id: optionalString(opts.id, 'options.id'),
    strategy: oneOf(opts.strategy, STRATEGIES, 'options.strategy', 'one_for_one'),
    maxRestarts: number(opts.maxRestarts, 'options.maxRestarts', 3, { min: 0, integer: true }),
    withinMs: number(opts.withinMs, 'options.withinMs', 5_000, { min: 0, minExclusive: true }),
    autoShutdown,
    maxChildren,
    children,
    clock: opts.clock as Clock | undefined,
    events: opts.events as SupervisorEventBus | undefined,
    random: opts.random as (() => number) | undefined,
  };
}

// Compile-time checks that the key lists above name every option of the public types, so the
// validator cannot reject an option that the types allow.
type Missing<T, K> = Exclude<keyof T, K>;
const supervisorKeysComplete: [
  Missing<SupervisorOptions, (typeof SUPERVISOR_KEYS)[number]>,
] extends [never]
  ? true
  : never = true;
const childKeysComplete: [Missing<ChildSpec, (typeof CHILD_KEYS)[number]>] extends [never]
  ? true
  : never = true;
void supervisorKeysComplete;
void childKeysComplete;
