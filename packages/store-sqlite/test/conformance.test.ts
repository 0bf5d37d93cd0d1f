import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '@belfry/store-sqlite';
import { runStoreConformance } from '@belfry/testing';

const dir = mkdtempSync(join(tmpdir(), 'belfry-sqlite-conf-'));
let n = 0;

runStoreConformance(() => SqliteStore.open({ path: join(dir, `store-${++n}.db`) }), {
  name: 'SqliteStore conformance (a real SQLite file)',
  reopen: (store) => SqliteStore.open({ path: (store as SqliteStore).path }),
});
