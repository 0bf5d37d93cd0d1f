// `@belfry/core/gate`: what a gate evaluator implements.
export { GateError, type GateErrorCode } from '../errors';
export type { GateType } from '../model/gateTypes';
export { validateGateSpec } from '../model/gateTypes';
export type { Gate, GateEscalation } from '../model/types';
export type { JsonObject, JsonValue } from '../store/Store';
export type { GateDecision, GateEvaluationContext, GateEvaluator } from './GateEvaluator';
