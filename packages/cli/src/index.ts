export { describeEvent } from './api/events';
export { main } from './cli';
export { EXIT, type MainOptions } from './commands/context';
export { type BelfryConfig, CONFIG_FILE, defaultConfigText, loadConfig } from './config';
export { type RunningDaemon, runDaemon } from './daemon';
export { formatLogLine, LOG_LEVELS, type LogLevel } from './logFormat';
export { ALREADY_RUNNING } from './runtime';
