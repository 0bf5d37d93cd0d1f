/**
 * Runs every `packages/<pkg>/bench/*.bench.ts` suite against the built packages and prints one
 * table: each belfry figure beside its baseline from the same run, as a ratio.
 *
 *   npm run bench            # table
 *   npm run bench -- --json  # the same rows as JSON
 *   npm run bench -- town    # only the suites whose file name contains `town`
 */
import { readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface BenchRow {
  /** What is measured, e.g. "start N children". */
  name: string;
  /** The size of the case (children, records, …). */
  size: number;
  belfry: number;
  baseline: number;
  /** baseline ÷ belfry: how many times faster belfry is (above 1 is faster). */
  ratio: number;
  /** `req`: HTTP requests; `charged`: requests that cost rate limit. */
  unit: 'ms' | 'µs' | 'MB' | 'req' | 'charged';
  /** What else a reader needs to judge the figure (shown in the suite's summary and the JSON). */
  note?: string;
}

export interface BenchSuite {
  name: string;
  /** What the baseline is, for the table's heading. */
  baseline: string;
  run(progress: (message: string) => void): Promise<BenchRow[]>;
  /** Lines printed under the suite's rows (targets, growth, notes). */
  summary?(rows: BenchRow[]): string[];
}

const json = process.argv.includes('--json');
// `npm run bench -- town store`: only the suites whose file name contains one of the words.
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const root = resolve(import.meta.dirname, '..');
const progress = (message: string) => process.stderr.write(`  … ${message}\n`);

const files: string[] = [];
for (const pkg of readdirSync(join(root, 'packages'))) {
  let entries: string[] = [];
  try {
    entries = readdirSync(join(root, 'packages', pkg, 'bench'));
  } catch {
    continue;
  }
  for (const f of entries)
    if (f.endsWith('.bench.ts') && (only.length === 0 || only.some((w) => f.includes(w))))
      files.push(join(root, 'packages', pkg, 'bench', f));
}

const all: Array<{ suite: BenchSuite; rows: BenchRow[] }> = [];
for (const file of files.sort()) {
  const suite = (await import(pathToFileURL(file).href)).default as BenchSuite;
  process.stderr.write(`${suite.name}\n`);
  all.push({ suite, rows: await suite.run(progress) });
}

if (json) {
  process.stdout.write(
    `${JSON.stringify(
      all.flatMap((s) => s.rows),
      null,
      2,
    )}\n`,
  );
} else {
  const cpu = cpus();
  console.log(
    `\nbelfry bench — ${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}\n`,
  );
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  for (const { suite, rows } of all) {
    console.log(`${suite.name} (baseline: ${suite.baseline})`);
    const table = [
      ['case', 'size', 'belfry', 'baseline', 'baseline ÷ belfry'],
      ...rows.map((r) => [
        r.name,
        r.size.toLocaleString('en-US'),
        `${fmt(r.belfry)} ${r.unit}`,
        `${fmt(r.baseline)} ${r.unit}`,
        r.ratio === Number.POSITIVE_INFINITY
          ? '∞ (belfry: 0)'
          : `${r.ratio >= 10 ? r.ratio.toFixed(0) : r.ratio.toFixed(1)}×`,
      ]),
    ];
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    table.forEach((row, i) => {
      console.log(
        `  ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('   ')}`,
      );
      if (i === 0) console.log(`  ${widths.map((w) => '─'.repeat(w)).join('   ')}`);
    });
    for (const line of suite.summary?.(rows) ?? []) console.log(`  ${line}`);
    console.log('');
  }
}
