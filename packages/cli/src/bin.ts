import { quickCommand } from './quick';

// Output piped into a program that stops reading (`belfry status | head`) ends quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

const argv = process.argv.slice(2);
// `belfry status` is answered without loading the full CLI when it can be (see quickCommand).
process.exitCode = (await quickCommand(argv)) ?? (await (await import('./cli')).main(argv));
