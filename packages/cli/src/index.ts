export { EXIT, main } from './cli';
export { type BelfryConfig, CONFIG_FILE, defaultConfigText, loadConfig } from './config';
export { ALREADY_RUNNING, describeEvent, type RunningDaemon, runDaemon } from './daemon';
