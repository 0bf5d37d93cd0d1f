export { createTmuxDriver, type TmuxDriver, type TmuxDriverOptions } from './TmuxDriver';
export type { TmuxSocket } from './tmux';
