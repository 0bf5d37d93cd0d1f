import { dirname, join } from 'node:path';
import { BelfryError, ConfigError } from '@belfry/core/config';
import { Command, CommanderError } from 'commander';
import { createContext, EXIT, Exit, type MainOptions, type Register } from './commands/context';
import { CONFIG_FILE } from './configFile';
import { type DaemonState, readJson } from './runtime';
import { VERSION } from './version';

/**
 * The command groups, each in its own file under `commands/`, loaded only when its words are
 * used: `belfry status` loads the status group and what it needs, never the daemon's server or
 * the store. Listed in the order the help shows them.
 */
const GROUPS: Record<string, () => Promise<{ register: Register }>> = {
  init: () => import('./commands/init'),
  daemon: () => import('./commands/daemon'),
  status: () => import('./commands/status'),
  events: () => import('./commands/events'),
  rig: () => import('./commands/rig'),
  bead: () => import('./commands/bead'),
  sling: () => import('./commands/sling'),
  done: () => import('./commands/done'),
  nudge: () => import('./commands/nudge'),
  agent: () => import('./commands/agent'),
  gate: () => import('./commands/gate'),
  convoy: () => import('./commands/convoy'),
  warrant: () => import('./commands/warrant'),
};

/** The root's options that take a value (skipped when looking for the command's word). */
const ROOT_VALUE_OPTIONS = new Set(['-c', '--config']);

/** The group `argv` names (its first word that is not an option), if it names one. */
function groupOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (word === '--') return undefined;
    if (ROOT_VALUE_OPTIONS.has(word)) i++;
    else if (!word.startsWith('-')) return Object.hasOwn(GROUPS, word) ? word : undefined;
  }
  return undefined;
}

/**
 * When a config cannot be read, whether a daemon still runs for the town (in the default state
 * folder beside the file): it runs on the config it read at its start, and the operator must
 * know how to reach it. An empty string when none does.
 */
async function runningDespite(configFile: string): Promise<string> {
  const dir = join(dirname(configFile), '.belfry');
  try {
    const { DaemonLock } = await import('./daemonLock');
    if (!DaemonLock.held(join(dir, 'daemon.lock'))) return '';
  } catch {
    return '';
  }
  const pid = readJson<DaemonState>(join(dir, 'state.json'))?.pid;
  return `belfry: a daemon still runs for this town${pid ? ` (pid ${pid})` : ''} on the config it read when it started; fix the file to steer it again, or stop it now with: kill -TERM ${pid ?? '<its pid>'}\n`;
}

/**
 * Runs the `belfry` command with `argv` (without node and the script) and returns its exit code.
 * The bin calls it with process.argv; tests call it in-process.
 *
 * @example
 * ```ts
 * const code = await main(['daemon', 'status', '--json'], { cwd: '/srv/town' });
 * ```
 */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  const c = createContext(options);
  const program = new Command('belfry')
    .description('Supervise a town of agent sessions: a daemon, and the commands that steer it.')
    .version(`belfry ${VERSION}`, '-V, --version', 'print the version')
    .option('-c, --config <file>', `the config file (default: ${CONFIG_FILE} here or above)`)
    .option('--json', 'print data as JSON')
    .exitOverride()
    .configureOutput({ writeOut: c.out, writeErr: c.err })
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      '\nExit codes: 0 done, 1 the operation failed, 2 bad usage or config, 3 a daemon already runs (daemon status: it is stopped), 4 no daemon runs.\nNO_COLOR turns colours off.',
    );
  // The named group only; every group for the help, a bare `belfry` or an unknown word.
  const group = groupOf(argv);
  // `belfry --version` needs no command; the help, a bare `belfry` or an unknown word need all.
  const versionOnly = group === undefined && argv.some((a) => a === '-V' || a === '--version');
  const groups = group !== undefined ? [group] : versionOnly ? [] : Object.keys(GROUPS);
  const loaded = await Promise.all(
    groups.map((name) => (GROUPS[name] as () => Promise<{ register: Register }>)()),
  );
  for (const { register } of loaded) register(program, c);
  // Each command's config is read (from the cache when unchanged) before its action runs.
  program.hook('preAction', (_root, action) => c.prepare(action));
  try {
    // `belfry nosuch --help` is an unknown command, not the root's help with exit 0.
    const unknown = unknownCommand(program, argv);
    if (unknown) {
      c.err(`belfry: ${unknown}\n(run with --help for usage)\n`);
      return EXIT.USAGE;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.OK;
  } catch (error) {
    if (error instanceof CommanderError)
      return error.exitCode === 0 ||
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version'
        ? EXIT.OK
        : EXIT.USAGE;
    if (error instanceof Exit) {
      if (error.message !== '') c.err(`belfry: ${error.message}\n`);
      return error.code;
    }
    if (error instanceof ConfigError) {
      const file = c.configFile();
      c.err(`belfry: ${error.message}\n${file ? await runningDespite(file) : ''}`);
      return EXIT.USAGE;
    }
    if (error instanceof BelfryError) {
      c.err(`belfry: ${error.message}\n`);
      return EXIT.FAILED;
    }
    throw error;
  }
}

/**
 * The first word of `argv` that should name a (sub)command but names none, as a message; undefined
 * when every command word is known. Option values are skipped (`-c <file>`, `--timeout 5s`).
 */
function unknownCommand(program: Command, argv: readonly string[]): string | undefined {
  let command = program;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (word === '--' || word === 'help') return undefined;
    if (word.startsWith('-')) {
      const option = [...command.options, ...program.options].find(
        (o) => o.long === word || o.short === word,
      );
      if (option && (option.required || option.optional) && !word.includes('=')) i++;
      continue;
    }
    if (command.commands.length === 0) return undefined;
    const next = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!next) {
      const where = command === program ? 'belfry' : `belfry ${command.name()}`;
      return `unknown command '${word}' for ${where}; commands: ${command.commands.map((c) => c.name()).join(', ')}`;
    }
    command = next;
  }
  return undefined;
}
