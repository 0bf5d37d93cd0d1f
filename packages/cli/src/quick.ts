import { configPath, type MainOptions, painter, printed } from './commands/context';
import { type LiveStatus, liveView, renderTree } from './commands/statusView';
import { cachedConfig } from './configFile';
import { callDaemon, daemonPaths } from './runtime';

/** How long the quick status waits for the daemon before leaving it to the full command. */
const QUICK_TIMEOUT_MS = 2_000;

/**
 * The command the bin answers before it loads the full CLI: `belfry status` (and with `--json`,
 * in either order), the one scripts and watch loops run most. It is answered here only when
 * nothing needs the rest: the config is unchanged since it was last checked (see
 * {@link cachedConfig}), and the running daemon answers its status. Anything else — another
 * command or option, no daemon, a changed config, an error answer — returns undefined and the
 * full CLI runs the command from the start (a status is only read, so asking twice is harmless).
 * What it prints is what the full `belfry status` prints: the same view, drawn by the same code.
 *
 * @returns the exit code, or undefined when the full CLI must run the command.
 */
export async function quickCommand(
  argv: readonly string[],
  options: MainOptions & { build?: string } = {},
): Promise<number | undefined> {
  const words = new Set(argv);
  if (!words.has('status') || words.size !== argv.length) return undefined;
  if (argv.length > 2 || (argv.length === 2 && !words.has('--json'))) return undefined;
  const json = words.has('--json');
  const env = options.env ?? process.env;
  try {
    const file = configPath(env.BELFRY_CONFIG, options.cwd ?? process.cwd());
    const config =
      file === undefined
        ? undefined
        : 'build' in options
          ? cachedConfig(file, options.build)
          : cachedConfig(file);
    if (config === undefined) return undefined;
    // A daemon slow to answer is left to the full command, which waits for it and says so.
    const answer = await callDaemon<LiveStatus>(
      daemonPaths(config).socket,
      'GET',
      '/v1/status',
      undefined,
      QUICK_TIMEOUT_MS,
    );
    if (answer?.status !== 200) return undefined;
    const data = liveView(answer.body);
    const paint = painter(env);
    (options.out ?? ((t: string) => void process.stdout.write(t)))(
      printed(json, data, () => renderTree(data, true, paint)),
    );
    return 0;
  } catch {
    // Whatever went wrong, the full command does it again and says what.
    return undefined;
  }
}
