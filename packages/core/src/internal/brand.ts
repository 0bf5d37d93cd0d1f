/** Marks actor logic made by `supervisor()`, so parents can recognise sub-supervisors. */
export const SUPERVISOR_LOGIC: unique symbol = Symbol.for('belfry.supervisorLogic');

/** The key under which a supervisor snapshot carries its engine. */
export const CORE: unique symbol = Symbol.for('belfry.supervisorCore');

/** True for logic made by `supervisor()`. */
export function isSupervisorLogic(logic: unknown): boolean {
  return (
    typeof logic === 'object' &&
    logic !== null &&
    (logic as Record<symbol, unknown>)[SUPERVISOR_LOGIC] === true
  );
}

/** True for an xstate state machine (as opposed to promise, callback, observable logic). */
export function isMachineLogic(logic: unknown): boolean {
  return typeof logic === 'object' && logic !== null && '__xstatenode' in logic;
}
