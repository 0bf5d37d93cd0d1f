export {
  type FailurePolicy,
  type GitHubGateOptions,
  type GitHubRunResult,
  githubGate,
} from './githubGate';
