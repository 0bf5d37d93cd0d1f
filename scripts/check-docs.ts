/**
 * Fails when a public export has no TSDoc. The public surface is every entry point a package's
 * `exports` map names (through its `@belfry/source` condition), so a new subpath is checked as
 * soon as it is published.
 *
 * Run: `npm run check:docs`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

const root = join(import.meta.dirname, '..');
const entries: string[] = [];
for (const dir of readdirSync(join(root, 'packages'))) {
  const manifest = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8'));
  for (const target of Object.values<unknown>(manifest.exports ?? {})) {
    const source = (target as Record<string, unknown>)?.['@belfry/source'];
    if (typeof source === 'string') entries.push(join(root, 'packages', dir, source));
  }
}

const program = ts.createProgram(entries, {
  customConditions: ['@belfry/source'],
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2022,
  strict: true,
  noEmit: true,
});
const checker = program.getTypeChecker();
const missing: string[] = [];
let checked = 0;
for (const entry of entries) {
  const file = program.getSourceFile(entry);
  const module = file && checker.getSymbolAtLocation(file);
  if (!module) throw new Error(`check-docs: cannot read the entry point ${entry}`);
  for (const exported of checker.getExportsOfModule(module)) {
    const symbol =
      exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    checked++;
    const doc = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
    if (!doc) missing.push(`${entry.slice(root.length + 1)}: ${exported.name}`);
  }
}
if (missing.length > 0) {
  console.error(`${missing.length} public export(s) without TSDoc:\n  ${missing.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-docs: ${checked} exports in ${entries.length} entry points, all documented`);
