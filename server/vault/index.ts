/**
 * Public API of the vault: the SQLite wrapper, the master key, AEAD, the keyring, the key store
 * of destroyable keys and the vault facade. Other folders import only from here.
 */
export { Db } from './db.js';
export type { DbOpenOptions, DbTx, Queryable, RunResult, SqlParams, Stmt } from './db.js';
export * from './errors.js';
