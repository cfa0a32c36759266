/**
 * SQL on a raw sqlite3 connection, outside the code under test: to shape a database as an older
 * appliance left it, or to read what is really in the file.
 */
import sqlite3 from 'sqlite3';

/** Runs `sqls` in order on a new connection to `path`; answers the rows of the last one. */
export function rawSql<T = unknown>(path: string, sqls: readonly string[]): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path, (err) => {
      if (err) return reject(err);
      let last: T[] = [];
      const next = (i: number): void => {
        if (i === sqls.length) return db.close(() => resolve(last));
        db.all(sqls[i]!, (e, rows) => {
          if (e) return db.close(() => reject(e));
          last = rows as T[];
          next(i + 1);
        });
      };
      next(0);
    });
  });
}
