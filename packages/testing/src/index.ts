export {
  createTestTown,
  DEFAULT_TEST_SEED,
  type TestTown,
  type TestTownOptions,
} from './createTestTown';
export { type DriverConformanceOptions, runDriverConformance } from './driverConformance';
export {
  type GateConformanceCase,
  type GateConformanceOptions,
  runGateConformance,
  trackEvaluator,
} from './gateConformance';
export { type EventRecorder, recordEvents } from './recordEvents';
export { SimulatedClock, settle } from './SimulatedClock';
export { seededRandom } from './seededRandom';
export { runStoreConformance, type StoreConformanceOptions } from './storeConformance';
