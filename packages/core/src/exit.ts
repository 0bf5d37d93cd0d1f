/**
 * The event a supervisor sends a child to ask it to stop (unless the child spec names another
 * `shutdownEvent`), and the event that makes a supervisor itself shut down gracefully.
 *
 * @example
 * ```ts
 * createMachine({ on: { [SHUTDOWN_EVENT_TYPE]: '.cleaningUp' } });
 * ```
 */
export const SHUTDOWN_EVENT_TYPE = 'belfry.shutdown';

/** Why a child stopped, judged as OTP does. */
export type ExitReason =
  /** The child finished by itself (its snapshot reached `done`). */
  | 'normal'
  /**
   * The child stopped because it was asked to, or finished with {@link shutdownExit}. Like
   * `normal`, this is not a failure: transient children are not restarted after it.
   */
  | 'shutdown'
  /** The supervisor stopped the child without waiting: `shutdown: 'brutal'` or a budget ran out. */
  | 'killed'
  /** The child failed: it threw, its promise rejected, or a health check gave up on it. */
  | 'error';

const SHUTDOWN_EXIT = Symbol.for('belfry.exit.shutdown');

/** The output of a child that chose to exit with reason `shutdown`; see {@link shutdownExit}. */
export interface ShutdownExit<TDetail = undefined> {
  readonly [SHUTDOWN_EXIT]: true;
  /** Whatever the child wants its supervisor's listeners to see. */
  readonly detail: TDetail;
}

/**
 * Marks a child's final output as a `shutdown` exit rather than a `normal` one.
 *
 * OTP tells `normal` from `shutdown` exits; both mean "not a failure". A machine that ends
 * because it was told to go away can return `shutdownExit()` as its output so its supervisor
 * records the exit as `shutdown`.
 *
 * @param detail - optional data carried with the exit.
 * @returns an output value to return from a final state.
 * @example
 * ```ts
 * createMachine({
 *   initial: 'working',
 *   states: { working: { on: { 'belfry.shutdown': 'gone' } }, gone: { type: 'final' } },
 *   output: () => shutdownExit(),
 * });
 * ```
 */
export function shutdownExit(): ShutdownExit;
export function shutdownExit<TDetail>(detail: TDetail): ShutdownExit<TDetail>;
export function shutdownExit<TDetail>(detail?: TDetail): ShutdownExit<TDetail | undefined> {
  return { [SHUTDOWN_EXIT]: true, detail };
}

/**
 * Tells whether a child's output was made by {@link shutdownExit}.
 *
 * @param output - a done child's output.
 * @returns true for a `shutdown` exit.
 * @example
 * ```ts
 * if (isShutdownExit(snapshot.output)) console.log('left on request');
 * ```
 */
export function isShutdownExit(output: unknown): output is ShutdownExit<unknown> {
  return (
    typeof output === 'object' &&
    output !== null &&
    (output as Record<symbol, unknown>)[SHUTDOWN_EXIT] === true
  );
}
