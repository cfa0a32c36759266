/**
 * What the rebuilding migrations cost an appliance that already holds many messages:
 * `messaging-003` (vault.db's message rows re-keyed by conversation), `messaging-004` (the same
 * table without its message-id index), `keystore-2` (keys.db's message keys re-keyed by
 * conversation, order 0), and the first start's reconciliation that gives those keys their seqs
 * (messaging/message-lookup.ts). Fills the older layouts with N rows through the real `Db` (vault
 * pragmas: WAL, synchronous=FULL, secure_delete), spread over 100 conversations in arrival order,
 * the same message ids in both files, then times each step.
 *
 *   make build && node dist/bench/experiments/migration-cost.js      # BENCH_ROWS (1,000,000)
 *
 * Not run by `make bench`: a one-time cost, answered in server/vault/README.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MESSAGING_MIGRATIONS, migrationsBefore } from '../../server/messaging/schema.js';
import { KEYSTORE_MIGRATIONS } from '../../server/vault/keystore.js';
import { reconcileKeys } from '../../server/messaging/message-lookup.js';
import { chunks, Db, Keystore, marks, MasterKey } from '../../server/vault/index.js';
import { VAULT_PAGE_SIZE } from '../../server/vault/vault.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const CONVS = Array.from({ length: 100 }, () => randomBytes(16).toString('base64url'));
const IDS = Array.from({ length: ROWS }, () => randomBytes(16).toString('base64url'));
const at = '2026-11-29T00:00:00.000Z';
const mib = (f: string): string => `${(statSync(f).size / 2 ** 20).toFixed(0)} MiB`;

async function fill(db: Db, table: string, cols: string, row: (i: number) => unknown[]): Promise<void> {
  const width = cols.split(',').length;
  for (const part of chunks(Array.from({ length: ROWS }, (_, i) => i), 500)) {
    await db.transaction(async (tx) => {
      await tx.run(`INSERT INTO ${table} (${cols}) VALUES ${marks(part.length, `(${Array(width).fill('?').join(', ')})`)}`, part.flatMap(row));
    });
  }
}

/** Applies `list` to `db` and prints how long `label` took, its TRUNCATE checkpoint apart, and the file's size after. */
async function migrateTimed(db: Db, file: string, path: string, label: string, list: readonly { id: string; sql: string }[]): Promise<void> {
  const t0 = performance.now();
  await db.migrate(list);
  const migrated = performance.now() - t0;
  await db.checkpointTruncate();
  console.log(`${file} ${label}: ${(migrated / 1000).toFixed(1)} s (+ ${((performance.now() - t0 - migrated) / 1000).toFixed(1)} s TRUNCATE checkpoint); file now ${mib(path)}`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sigil-migration-'));
  try {
    // vault.db as messaging-002 left it.
    const vaultPath = join(dir, 'vault.db');
    const vault = await Db.open(vaultPath, { pageSize: VAULT_PAGE_SIZE });
    await vault.migrate(migrationsBefore('messaging-003'));
    for (const id of CONVS) {
      await vault.run(`INSERT INTO msg_conversations (id, kind, name, label, created_by, created_at) VALUES (?, 'group', ?, 'secret', 'bob', ?)`, [id, id, at]);
    }
    await fill(vault, 'msg_messages', 'id, conversation, sender, label, label_rank, urgent, sent_at, received_at, sealed', (i) => [
      IDS[i], CONVS[i % CONVS.length], `user${i % 10}`, 'secret', 3, 0, at, at, randomBytes(1400),
    ]);
    await vault.checkpointTruncate();
    console.log(`vault.db  ${ROWS.toLocaleString('en')} rows in arrival order: ${mib(vaultPath)}`);
    await migrateTimed(vault, 'vault.db ', vaultPath, 'messaging-003', migrationsBefore('messaging-004'));

    // keys.db as keystore-1 left it.
    const keysPath = join(dir, 'keys.db');
    const keys = await Db.open(keysPath);
    await keys.migrate(KEYSTORE_MIGRATIONS.slice(0, 1));
    for (const id of CONVS) await keys.run('INSERT INTO conversation_keys (conv_id, wrapped, created_at) VALUES (?, ?, ?)', [id, randomBytes(60), at]);
    await fill(keys, 'message_keys', 'msg_id, conv_id, wrapped', (i) => [IDS[i], CONVS[i % CONVS.length], randomBytes(60)]);
    await keys.checkpointTruncate();
    console.log(`keys.db   ${ROWS.toLocaleString('en')} keys in arrival order: ${mib(keysPath)}`);
    await migrateTimed(keys, 'keys.db  ', keysPath, 'keystore-2', KEYSTORE_MIGRATIONS);
    // What start read before messaging-004, for comparison: every id through vault.db's id index,
    // every key id of keys.db, and the difference (the orphan sweep).
    let t0 = performance.now();
    const rowIds = new Set((await vault.all<{ id: string }>(`SELECT id FROM msg_messages UNION ALL SELECT 'file:' || id FROM msg_files`)).map((r) => r.id));
    const orphans = (await keys.all<{ msg_id: string }>('SELECT msg_id FROM message_keys')).filter((r) => !rowIds.has(r.msg_id));
    console.log(`start before messaging-004: orphan sweep ${((performance.now() - t0) / 1000).toFixed(1)} s (${orphans.length} orphans)`);
    await keys.close();
    await migrateTimed(vault, 'vault.db ', vaultPath, 'messaging-004', MESSAGING_MIGRATIONS);

    // The first start after the upgrade: every key gets its message's seq.
    const store = await Keystore.open(keysPath, await MasterKey.fromBytes(new Uint8Array(32).fill(7)));
    t0 = performance.now();
    const r = await reconcileKeys(store, vault);
    console.log(`first start: ${r.placed.toLocaleString('en')} keys given their seq in ${((performance.now() - t0) / 1000).toFixed(1)} s (${r.orphans.length} orphans)`);
    t0 = performance.now();
    await reconcileKeys(store, vault);
    console.log(`every later start: reconciliation ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await store.close();
    await vault.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
