// `@belfry/core/gate`: what a gate evaluator implements.
export { GateError, type GateErrorCode } from '../errors';
export type { GateType } from '../model/gateTypes';
export {
  GATE_TYPE_NAME,
  gateTypeName,
  githubRunGateType,
  humanGateType,
  timerGateType,
  validateGateSpec,
} from '../model/gateTypes';
export type { Gate, GateEscalation } from '../model/types';
export type { JsonObject, JsonValue } from '../store/Store';
export {
  decideEach,
  type GateDecision,
  type GateEvaluationContext,
  type GateEvaluator,
  type GateHost,
  isGateDecision,
} from './GateEvaluator';
