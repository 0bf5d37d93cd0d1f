import { ConfigError } from '../errors';
import { describe, fail, rejectUnknownKeys, requireObject } from '../internal/validate';
import type { JsonObject } from '../store/Store';

/**
 * A kind of gate the model accepts: how to check a spec, and when a new gate is first due.
 * Gate evaluator packages provide one for their type.
 *
 * @example
 * ```ts
 * const fileGate: GateType = {
 *   type: 'file',
 *   validate(spec) {
 *     const path = (spec as { path?: unknown })?.path;
 *     if (typeof path !== 'string') throw new ConfigError({ code: 'INVALID_OPTION', path: 'spec.path', message: 'spec.path: must be a string' });
 *     return { path };
 *   },
 * };
 * ```
 */
export interface GateType {
  /** The type name, e.g. `timer`; letters, digits, `:`, `-`, `_`. */
  type: string;
  /**
   * Checks a spec and returns it as plain JSON (defaults filled in).
   *
   * @throws ConfigError naming the bad field (`spec.<field>`) and what is allowed.
   */
  validate(spec: unknown): JsonObject;
  /**
   * When a new gate with this spec is first due for evaluation.
   * @defaultValue its creation time
   */
  firstDueAt?(spec: JsonObject, createdAt: number): number | undefined;
}

/** What a gate type's name may be: lowercase letters, digits, `:`, `_`, `-`, starting with a letter. */
export const GATE_TYPE_NAME = /^[a-z][a-z0-9:_-]{0,31}$/;

/**
 * Checks the gate type name an evaluator is given in its options (`fallback` when undefined),
 * for evaluators that can run under another type name.
 *
 * @throws ConfigError naming `path` when it is not a {@link GATE_TYPE_NAME}.
 */
export function gateTypeName(value: unknown, fallback: string, path = 'options.type'): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !GATE_TYPE_NAME.test(value))
    fail(
      'INVALID_OPTION',
      path,
      `must be 1 to 32 lowercase letters, digits, ':', '_' or '-', starting with a letter; got ${describe(value)}`,
    );
  return value;
}

function positiveInteger(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    fail('INVALID_OPTION', path, `must be a positive integer; got ${describe(value)}`);
  }
  return value;
}

function nonEmptyString(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.trim().length === 0) {
    fail('INVALID_OPTION', path, `must be a non-empty string; got ${describe(value)}`);
  }
  return value;
}

/** `timer`: closes once `durationMs` has passed since the gate was created. */
export const timerGateType: GateType = {
  type: 'timer',
  validate(spec) {
    const s = requireObject(spec, 'spec');
    rejectUnknownKeys(s, ['durationMs'], 'spec');
    return { durationMs: positiveInteger(s.durationMs, 'spec.durationMs') };
  },
  firstDueAt: (spec, createdAt) => createdAt + (spec.durationMs as number),
};

/**
 * `human`: closes when a person approves or rejects it. Never due by itself, unless it has a
 * deadline (`deadlineMs` after its creation), when it is due once to be escalated.
 */
export const humanGateType: GateType = {
  type: 'human',
  validate(spec) {
    const s = requireObject(spec ?? {}, 'spec');
    rejectUnknownKeys(s, ['prompt', 'approvers', 'deadlineMs'], 'spec');
    const out: JsonObject = {};
    if (s.prompt !== undefined) out.prompt = nonEmptyString(s.prompt, 'spec.prompt');
    if (s.approvers !== undefined) {
      if (!Array.isArray(s.approvers) || s.approvers.length === 0) {
        fail(
          'INVALID_OPTION',
          'spec.approvers',
          `must be a non-empty array of names; got ${describe(s.approvers)}`,
        );
      }
      out.approvers = s.approvers.map((a, i) => nonEmptyString(a, `spec.approvers[${i}]`));
    }
    if (s.deadlineMs !== undefined)
      out.deadlineMs = positiveInteger(s.deadlineMs, 'spec.deadlineMs');
    return out;
  },
  firstDueAt: (spec, createdAt) =>
    typeof spec.deadlineMs === 'number' ? createdAt + spec.deadlineMs : undefined,
};

/** The filters a workflow's runs can be narrowed by, with what each allows. */
const RUN_FILTERS: ReadonlyArray<readonly [string, RegExp, string]> = [
  ['branch', /^[^\s~^:?*[\\]{1,255}$/, 'a branch name (no spaces or ~^:?*[\\)'],
  ['headSha', /^[0-9a-f]{40}$/, 'a full commit SHA (40 lowercase hex digits)'],
  ['event', /^[a-z_]{1,64}$/, 'an event name such as push or pull_request'],
];

const OWNER_REPO = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})$/;

/**
 * `gh:run`: a GitHub Actions run in `owner`/`repo`, by `runId`, or by `workflow` (a workflow
 * file such as `ci.yml`, its numeric id, or its name): then the newest run of that workflow,
 * optionally only on `branch`, for commit `headSha`, or triggered by `event`.
 */
export const githubRunGateType: GateType = {
  type: 'gh:run',
  validate(spec) {
    const s = requireObject(spec, 'spec');
    rejectUnknownKeys(
      s,
      ['owner', 'repo', 'runId', 'workflow', 'branch', 'headSha', 'event'],
      'spec',
    );
    const out: JsonObject = {};
    for (const key of ['owner', 'repo'] as const) {
      const value = nonEmptyString(s[key], `spec.${key}`);
      if (!OWNER_REPO.test(value)) {
        fail(
          'INVALID_OPTION',
          `spec.${key}`,
          `must be a GitHub ${key} name (letters, digits, '.', '-', '_'); got ${describe(value)}`,
        );
      }
      out[key] = value;
    }
    if ((s.runId === undefined) === (s.workflow === undefined)) {
      fail(
        'INVALID_OPTION',
        'spec.runId',
        'give exactly one of runId (a run id) or workflow (a workflow file or name)',
      );
    }
    if (s.runId !== undefined) out.runId = positiveInteger(s.runId, 'spec.runId');
    else out.workflow = nonEmptyString(s.workflow, 'spec.workflow');
    for (const [key, pattern, allowed] of RUN_FILTERS) {
      if (s[key] === undefined) continue;
      if (s.workflow === undefined)
        fail(
          'INVALID_OPTION',
          `spec.${key}`,
          "narrows a workflow's runs: give it with workflow, not runId",
        );
      const value = nonEmptyString(s[key], `spec.${key}`);
      if (!pattern.test(value))
        fail('INVALID_OPTION', `spec.${key}`, `must be ${allowed}; got ${describe(value)}`);
      out[key] = value;
    }
    return out;
  },
};

/** The gate types every model knows unless replaced: `timer`, `human`, `gh:run`. */
export const builtinGateTypes: readonly GateType[] = [
  timerGateType,
  humanGateType,
  githubRunGateType,
];

/** Wraps a gate type's validator so whatever it throws becomes a ConfigError about the spec. */
export function validateGateSpec(gateType: GateType, spec: unknown): JsonObject {
  try {
    return gateType.validate(spec);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: 'spec',
      message: `spec: the ${gateType.type} gate type refused it: ${error instanceof Error ? error.message : String(error)}`,
      cause: error,
    });
  }
}
