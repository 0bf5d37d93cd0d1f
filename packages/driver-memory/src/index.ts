export {
  builtinPrograms,
  createMemoryDriver,
  MemoryDriver,
  type MemoryDriverOptions,
  type MemoryProgram,
  type MemoryProgramOptions,
  type MemorySession,
} from './MemoryDriver';
