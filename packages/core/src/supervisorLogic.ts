import type { ActorLogic, ActorSystem, AnyActorScope, EventObject, Snapshot } from 'xstate';
import { CORE, SUPERVISOR_LOGIC } from './internal/brand';
import { normalizeOptions } from './internal/options';
import { SupervisorCore } from './internal/SupervisorCore';
import type { SupervisorOptions, SupervisorOutput } from './types';

/** Opaque handle to a supervisor's engine; read it through `whichChildren()` and friends. */
export interface SupervisorInternals {
  readonly __belfrySupervisor: true;
}

/**
 * A supervisor actor's snapshot. `status` follows xstate: `active` while supervising, `done`
 * after a shutdown (the output says why), `error` after it failed (for example
 * `MAX_RESTART_INTENSITY`), `stopped` when xstate stopped it.
 */
export type SupervisorSnapshot = Snapshot<SupervisorOutput> & {
  readonly [CORE]: SupervisorInternals;
};

/** The xstate actor logic of a supervisor, as made by {@link supervisor}. */
export type SupervisorLogic<TInput = unknown> = ActorLogic<
  SupervisorSnapshot,
  EventObject,
  TInput,
  // biome-ignore lint/suspicious/noExplicitAny: matches xstate's own AnyActorSystem
  ActorSystem<any>,
  EventObject
> & {
  readonly [SUPERVISOR_LOGIC]: true;
  readonly config: SupervisorOptions<TInput>;
};

function internals(core: SupervisorCore): SupervisorInternals {
  return core as unknown as SupervisorInternals;
}

function engine(snapshot: SupervisorSnapshot): SupervisorCore {
  return snapshot[CORE] as unknown as SupervisorCore;
}

/**
 * Makes supervisor actor logic: an OTP supervisor that runs any xstate actor logic as its
 * children, restarts them per its strategy and limits, and fails (so its own parent sees a failed
 * child) when restarts exceed its intensity.
 *
 * The result is ordinary xstate logic: run it with `createActor`, `invoke` it from a machine,
 * or give it to another supervisor as a child. For a root supervisor, {@link createSupervisor}
 * wraps it with a promise and admin methods.
 *
 * @param options - strategy, limits, children; see {@link SupervisorOptions}.
 * @returns the actor logic.
 * @throws ConfigError when an option is invalid, naming it and what is allowed.
 * @example
 * ```ts
 * const workers = supervisor({
 *   strategy: 'one_for_one',
 *   children: [{ id: 'fetch', logic: fetchMachine }, { id: 'index', logic: indexMachine }],
 * });
 * const root = createSupervisor({ children: [{ id: 'workers', logic: workers }] }).start();
 * ```
 */
export function supervisor<TInput = unknown>(
  options: SupervisorOptions<TInput> = {},
): SupervisorLogic<TInput> {
  const opts = normalizeOptions(options);
  const initial = (scope: AnyActorScope, input: unknown): SupervisorSnapshot => ({
    status: 'active',
    output: undefined,
    error: undefined,
    [CORE]: internals(new SupervisorCore(opts, scope, input)),
  });
  return {
    [SUPERVISOR_LOGIC]: true,
    config: options,
    getInitialSnapshot: initial,
    start(snapshot) {
      engine(snapshot).start();
    },
    transition(snapshot, event) {
      const core = engine(snapshot);
      if (event.type === 'xstate.stop') {
        core.kill();
        return {
          ...snapshot,
          status: 'stopped',
          output: undefined,
          error: undefined,
        } as SupervisorSnapshot;
      }
      if (snapshot.status !== 'active') return snapshot;
      core.handle(event);
      const result = core.result;
      if (!result) return snapshot;
      return result.status === 'done'
        ? ({
            ...snapshot,
            status: 'done',
            output: result.output,
            error: undefined,
          } as SupervisorSnapshot)
        : ({
            ...snapshot,
            status: 'error',
            output: undefined,
            error: result.error,
          } as SupervisorSnapshot);
    },
    getPersistedSnapshot(snapshot) {
      // A supervisor's children are rebuilt from their specs; only the status is worth keeping.
      const error = snapshot.error instanceof Error ? snapshot.error.message : snapshot.error;
      return { status: snapshot.status, output: snapshot.output, error } as Snapshot<unknown>;
    },
    restoreSnapshot(persisted, scope) {
      // An active supervisor restarts afresh: its children are started again from their specs.
      // A finished one stays finished (xstate does not start it again).
      const fresh = initial(scope, undefined);
      if (persisted.status === 'active') return fresh;
      return {
        ...fresh,
        status: persisted.status,
        output: persisted.output,
        error: persisted.error,
      } as SupervisorSnapshot;
    },
  };
}
