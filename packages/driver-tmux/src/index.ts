export {
  createTmuxDriver,
  DEFAULT_INHERITED_ENV,
  inheritEnvProblem,
  type TmuxDriver,
  type TmuxDriverOptions,
} from './TmuxDriver';
export { attachArgs, type TmuxSocket } from './tmux';
