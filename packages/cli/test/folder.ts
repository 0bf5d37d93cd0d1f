import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_FILE, main } from '@belfry/cli';
import { createTownModel } from '@belfry/core';
import { SqliteStore } from '@belfry/store-sqlite';

/** Runs `belfry` in-process in `dir` (no environment), capturing what it prints. */
export async function runMain(dir: string, argv: readonly string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, {
    cwd: dir,
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    env: {},
  });
  return {
    code,
    out: out.join(''),
    err: err.join(''),
    json: () => JSON.parse(out.join('')) as never,
  };
}

/** A folder with a config and no daemon; `belfry` runs in-process. */
export function folder() {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-cmd-'));
  writeFileSync(
    join(dir, CONFIG_FILE),
    'driver: { kind: memory }\ngates: { github: false }\nrigs: [api, web]\nagent: { command: [cat] }\n',
  );
  const belfry = (...argv: string[]) => runMain(dir, argv);
  const model = async <T>(job: (m: ReturnType<typeof createTownModel>) => Promise<T>) => {
    mkdirSync(join(dir, '.belfry'), { recursive: true });
    const store = SqliteStore.open({ path: join(dir, '.belfry', 'town.db') });
    try {
      const m = createTownModel({ store });
      for (const rig of ['api', 'web'])
        if (!(await m.rigs.get(rig))) await m.rigs.create({ name: rig });
      return await job(m);
    } finally {
      await store.close();
    }
  };
  return { dir, belfry, model };
}
