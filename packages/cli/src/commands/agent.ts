import { spawnSync } from 'node:child_process';
import { type Command, Option } from 'commander';
import { LINES_RULE, numeric } from '../numericOption';
import { type Context, EXIT, Exit, type Register } from './context';

/** How often `agent logs -f` looks at the session's screen again. */
const FOLLOW_EVERY_MS = 500;
/**
 * How many lines `agent logs -f` asks for each time: the most it can print from one look, and
 * the window it compares when the session's places cannot be counted on.
 */
const FOLLOW_WINDOW = 200;

/**
 * The lines of `next` that follow what `shown` already printed: the longest end of `shown` that
 * `next` starts with is skipped. A screen that scrolled by more than it holds, or was cleared,
 * has no overlap and is printed whole.
 */
export function newLines(shown: readonly string[], next: readonly string[]): string[] {
  for (let overlap = Math.min(shown.length, next.length); overlap > 0; overlap--) {
    let same = true;
    for (let i = 0; i < overlap && same; i++) same = shown[shown.length - overlap + i] === next[i];
    if (same) return next.slice(overlap);
  }
  // A screen that moved back (a program redrawing its last rows) shows what was printed.
  if (next.length > 0)
    for (let start = shown.length - next.length; start >= 0; start--) {
      let same = true;
      for (let i = 0; i < next.length && same; i++) same = shown[start + i] === next[i];
      if (same) return [];
    }
  return [...next];
}

/** `belfry agent`. */
export const register: Register = (program: Command, c: Context) => {
  const agent = program
    .command('agent')
    .description("an agent's session: its output, or a look inside");
  agent
    .command('logs <agent>')
    .description("an agent's last lines of output (-f: and what it prints next)")
    .addOption(
      new Option('-n, --lines <n>', 'how many lines').argParser(numeric(LINES_RULE)).default(50),
    )
    .option('-f, --follow', 'keep printing what the session prints, until Ctrl-C')
    .action(async (name: string, opts: { lines: number; follow?: boolean }, cmd: Command) => {
      const path = c.agentPath(name);
      if (!opts.follow) {
        const { lines } = await c.live<{ lines: string[] }>(
          cmd,
          "an agent's output",
          'GET',
          `${path}/output?lines=${Math.max(1, opts.lines)}`,
        );
        const first = opts.lines === 0 ? [] : lines.slice(-opts.lines);
        if (c.json(cmd) || first.length > 0)
          c.print(cmd, { agent: name, lines: first }, () => first.join('\n'));
        return;
      }
      const window = Math.max(opts.lines, FOLLOW_WINDOW);
      /** The session's finished lines after the cursor `after` (the latest without one). */
      const read = (after?: string) => {
        const query = new URLSearchParams({ follow: 'true', lines: String(window) });
        if (after !== undefined) query.set('after', after);
        return c.live<{ lines: string[]; end?: string; continuous: boolean }>(
          cmd,
          "an agent's output",
          'GET',
          `${path}/output?${query}`,
        );
      };
      const emit = (lines: readonly string[]) => {
        if (c.json(cmd))
          for (const line of lines) c.out(`${JSON.stringify({ agent: name, line })}\n`);
        else if (lines.length > 0) c.out(`${lines.join('\n')}\n`);
      };
      let at = await read();
      // -n 0: none of what is there (the agent is still checked); only what comes next.
      emit(opts.lines === 0 ? [] : at.lines.slice(-opts.lines));
      // What was printed last, to find where new lines start when the cursor cannot be counted on.
      let shown = at.lines.slice(-window);
      // Until Ctrl-C, or the session or daemon goes away (then said, with its exit code).
      for (;;) {
        await new Promise((r) => setTimeout(r, FOLLOW_EVERY_MS));
        const next = await read(at.end);
        // A cursor that holds gives exactly the new lines; otherwise, what follows the overlap.
        const fresh = next.continuous ? next.lines : newLines(shown, next.lines);
        emit(fresh);
        // Twice the window: a screen that moved back by up to a window is still found in it.
        shown = [...shown, ...fresh].slice(-2 * window);
        at = next;
      }
    });
  agent
    .command('attach <agent>')
    .description(
      "look inside an agent's session: tmux attach on the town's private server (detach: Ctrl-b d)",
    )
    .option('-r, --read-only', 'watch without typing into it')
    .action(async (name: string, opts: { readOnly?: boolean }, cmd: Command) => {
      const config = c.cfg(cmd);
      if (config.driver.kind !== 'tmux')
        throw new Exit(
          EXIT.FAILED,
          "this town's sessions are in memory (driver: memory); nothing to attach to",
        );
      if (!process.stdin.isTTY || !process.stdout.isTTY)
        throw new Exit(
          EXIT.USAGE,
          `attach needs a terminal; to read ${name}'s output here, use \`belfry agent logs -f ${name}\``,
        );
      c.agentPath(name);
      // The agent must be the town's (the store knows it); its session is named by the town's rule.
      const [{ agentSession }, { attachArgs }, { resolveTmuxSocket }, { readTownRecord }] =
        await Promise.all([
          import('@belfry/core'),
          import('@belfry/driver-tmux'),
          import('../tmuxSocket'),
          import('../townStore'),
        ]);
      const known = await c.withModel(cmd, (m) => m.polecats.get(name));
      if (!known) throw new Exit(EXIT.FAILED, `no agent ${name} in this town`);
      // The server the town's daemon last used (recorded), else the one it would use.
      const recorded = readTownRecord(config)?.tmuxSocket;
      const socket = recorded ?? resolveTmuxSocket(config, undefined, c.env).socket;
      const env = { ...c.env };
      // Another tmux (the operator's own) is a different server: attaching from inside it is fine.
      delete env.TMUX;
      const run = spawnSync(
        'tmux',
        attachArgs(socket, agentSession(name), { readOnly: opts.readOnly === true }),
        { stdio: 'inherit', env },
      );
      if (run.error) throw new Exit(EXIT.FAILED, `tmux could not be run: ${run.error.message}`);
      if (run.status !== 0)
        throw new Exit(EXIT.FAILED, `tmux attach ended with ${run.status ?? run.signal}`);
    });
};
