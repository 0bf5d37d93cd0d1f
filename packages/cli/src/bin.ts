import { main } from './cli';

// Output piped into a program that stops reading (`belfry status | head`) ends quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

process.exitCode = await main(process.argv.slice(2));
