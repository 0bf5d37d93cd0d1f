export { type EventRecorder, recordEvents } from './recordEvents';
export { SimulatedClock, settle } from './SimulatedClock';
export { runStoreConformance, type StoreConformanceOptions } from './storeConformance';
