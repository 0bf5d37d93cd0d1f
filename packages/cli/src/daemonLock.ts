import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * The daemon's lock: an exclusive SQLite lock on `daemon.lock`, held for the daemon's life. The
 * kernel releases it when the process ends however it ends, so "is a daemon running" is a
 * question to the lock, never a guess from a pid. Asking only reads (a shared lock that two
 * askers never contend for), so a question never makes a starting daemon or another asker see a
 * lock that nobody holds.
 */
export class DaemonLock {
  private constructor(private readonly db: Database.Database) {}

  /**
   * Takes the lock, or returns undefined if another process holds it. A moment's contention
   * (someone asking {@link DaemonLock.held} just then) is waited out, up to `waitMs`.
   */
  static acquire(path: string, waitMs = 2_000): DaemonLock | undefined {
    const db = new Database(path, { timeout: waitMs });
    try {
      db.pragma('journal_mode = DELETE');
      db.pragma('locking_mode = EXCLUSIVE');
      // The table is made (and committed) before the lock is taken: the lock's own transaction
      // then writes nothing, so a killed daemon leaves no journal for the next one to replay.
      db.exec('CREATE TABLE IF NOT EXISTS held (at INTEGER)');
      db.exec('BEGIN EXCLUSIVE');
      return new DaemonLock(db);
    } catch (error) {
      db.close();
      if (/SQLITE_BUSY|SQLITE_LOCKED/.test(String((error as { code?: string }).code)))
        return undefined;
      throw error;
    }
  }

  /** Whether some process holds the lock now. */
  static held(path: string): boolean {
    if (!existsSync(path)) return false;
    const db = new Database(path, { timeout: 0, fileMustExist: true });
    try {
      db.prepare('SELECT count(*) FROM sqlite_schema').get();
      return false;
    } catch (error) {
      if (/SQLITE_BUSY|SQLITE_LOCKED/.test(String((error as { code?: string }).code))) return true;
      throw error;
    } finally {
      db.close();
    }
  }

  release(): void {
    try {
      this.db.exec('ROLLBACK');
    } finally {
      this.db.close();
    }
  }
}
