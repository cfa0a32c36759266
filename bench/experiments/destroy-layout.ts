/**
 * Where a destroy's time goes, apart from Sigil: bare SQLite files under the vault's pragmas
 * (WAL, synchronous=FULL, secure_delete=ON), 1M rows of one conversation and N of another, then
 * the N deleted in one transaction and the WAL truncated — as `volume.js` destroys a group, but
 * with one layout changed at a time. Prints the time of each step, the WAL's size and the CPU.
 *
 *   make build && node dist/bench/experiments/destroy-layout.js vault-unique   # rows in arrival order (before the ninth session)
 *   node dist/bench/experiments/destroy-layout.js vault-plain     # no UNIQUE index on the random id
 *   node dist/bench/experiments/destroy-layout.js vault-conv-rowid  # rowid = conversation × 2^32 + n (clustered)
 *   node dist/bench/experiments/destroy-layout.js vault-clustered   # vault.db of the ninth session (vault-clustered-noseq: no seq index)
 *   node dist/bench/experiments/destroy-layout.js vault-clustered-noid  # vault.db as it is: no index on the random id (messaging-004)
 *   node dist/bench/experiments/destroy-layout.js vault-unique -262144   # a 256 MiB page cache
 *   node dist/bench/experiments/destroy-layout.js keys-rowid      # keys.db before the ninth session
 *   node dist/bench/experiments/destroy-layout.js keys-clustered  # keys clustered by (conversation, msg_id)
 *   node dist/bench/experiments/destroy-layout.js keys-clustered-ord  # keys.db as it is: (conversation, seq, msg_id)
 *
 * Knobs: BENCH_BIG (1,000,000 rows kept), BENCH_DESTROY (100,000 rows deleted), BENCH_INTERLEAVE
 * (1: the destroyed rows arrive spread evenly among the kept ones; default one after the other), BENCH_MMAP
 * (mmap_size for the destroy; 0), BENCH_PAGE_SIZE (SQLite's 4096; vault.db is created with 8192).
 * Not run by `make bench` (it runs dist/bench/*.js only): a layout question, answered in
 * bench/README.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sqlite3 from 'sqlite3';

const LAYOUTS = {
  'vault-unique': `CREATE TABLE m (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, conversation TEXT NOT NULL, sender TEXT NOT NULL, label TEXT NOT NULL, label_rank INTEGER NOT NULL, urgent INTEGER NOT NULL, sent_at TEXT NOT NULL, received_at TEXT NOT NULL, sealed BLOB NOT NULL) STRICT;
    CREATE INDEX m_conv ON m(conversation, seq, label_rank, sender); CREATE INDEX m_sender ON m(sender);`,
  'vault-plain': `CREATE TABLE m (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, conversation TEXT NOT NULL, sender TEXT NOT NULL, label TEXT NOT NULL, label_rank INTEGER NOT NULL, urgent INTEGER NOT NULL, sent_at TEXT NOT NULL, received_at TEXT NOT NULL, sealed BLOB NOT NULL) STRICT;
    CREATE INDEX m_conv ON m(conversation, seq, label_rank, sender); CREATE INDEX m_sender ON m(sender);`,
  // The table clustered by conversation: seq = conversation ordinal × 2^32 + its own count, so a
  // conversation's rows are one rowid range however the senders interleave.
  'vault-conv-rowid': `CREATE TABLE m (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, conversation TEXT NOT NULL, sender TEXT NOT NULL, label TEXT NOT NULL, label_rank INTEGER NOT NULL, urgent INTEGER NOT NULL, sent_at TEXT NOT NULL, received_at TEXT NOT NULL, sealed BLOB NOT NULL) STRICT;
    CREATE INDEX m_sender ON m(sender);`,
  // As vault.db is since the ninth session (server/messaging/schema.ts messaging-003): rowid =
  // bucket × 2^33 + seq, seq UNIQUE, and the destroyed conversation's range BEFORE the kept one, so
  // its rows are inserted mid-tree as most conversations' are. `-noseq`: seq without its index.
  'vault-clustered': `CREATE TABLE m (rid INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, id TEXT NOT NULL UNIQUE, conversation TEXT NOT NULL, sender TEXT NOT NULL, label TEXT NOT NULL, label_rank INTEGER NOT NULL, urgent INTEGER NOT NULL, sent_at TEXT NOT NULL, received_at TEXT NOT NULL, sealed BLOB NOT NULL) STRICT;
    CREATE INDEX m_conv ON m(conversation, seq, label_rank, sender); CREATE INDEX m_sender ON m(sender);`,
  'vault-clustered-noseq': `CREATE TABLE m (rid INTEGER PRIMARY KEY, seq INTEGER NOT NULL, id TEXT NOT NULL UNIQUE, conversation TEXT NOT NULL, sender TEXT NOT NULL, label TEXT NOT NULL, label_rank INTEGER NOT NULL, urgent INTEGER NOT NULL, sent_at TEXT NOT NULL, received_at TEXT NOT NULL, sealed BLOB NOT NULL) STRICT;
    CREATE INDEX m_conv ON m(conversation, seq, label_rank, sender); CREATE INDEX m_sender ON m(sender);`,
  // Without the random id's index (lookups by id through keys.db instead): what that index costs.
  'vault-clustered-noid': `CREATE TABLE m (rid INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, id TEXT NOT NULL, conversation TEXT NOT NULL, sender TEXT NOT NULL, label TEXT NOT NULL, label_rank INTEGER NOT NULL, urgent INTEGER NOT NULL, sent_at TEXT NOT NULL, received_at TEXT NOT NULL, sealed BLOB NOT NULL) STRICT;
    CREATE INDEX m_conv ON m(conversation, seq, label_rank, sender); CREATE INDEX m_sender ON m(sender);`,
  'keys-rowid': `CREATE TABLE m (msg_id TEXT PRIMARY KEY, conversation TEXT NOT NULL, wrapped BLOB NOT NULL) STRICT;
    CREATE INDEX m_conv ON m (conversation);`,
  'keys-clustered': `CREATE TABLE m (conversation TEXT NOT NULL, msg_id TEXT NOT NULL, wrapped BLOB NOT NULL, PRIMARY KEY (conversation, msg_id)) STRICT, WITHOUT ROWID;
    CREATE UNIQUE INDEX m_msg ON m (msg_id);`,
  // As keys.db is since the ninth session (server/vault/keystore.ts keystore-2): ordered by the
  // message's seq within its conversation, so new keys append at their conversation's end.
  'keys-clustered-ord': `CREATE TABLE m (conversation TEXT NOT NULL, ord INTEGER NOT NULL, msg_id TEXT NOT NULL UNIQUE, wrapped BLOB NOT NULL, PRIMARY KEY (conversation, ord, msg_id)) STRICT, WITHOUT ROWID;`,
} as const;

type Layout = keyof typeof LAYOUTS;
const layout = process.argv[2] as Layout;
const cacheSize = process.argv[3];
const BIG = Number(process.env.BENCH_BIG ?? 1_000_000);
const DESTROY = Number(process.env.BENCH_DESTROY ?? 100_000);
const PAGE = process.env.BENCH_PAGE_SIZE; // page_size for the new file (SQLite's default: 4096)
const MMAP = process.env.BENCH_MMAP; // mmap_size for the destroy (SQLite's default: 0, no mmap)
/** 1: the destroyed conversation's rows arrive spread among the kept ones, as senders interleave. */
const INTERLEAVE = process.env.BENCH_INTERLEAVE === '1';
const CONV_ORDINAL: Record<string, number> = { 'c-kept': 1, 'c-destroyed': 2 };
const convCount = new Map<string, number>();
let seqCount = 0;

/** Columns a layout is keyed by that the fill must give, before the row's own. */
const KEYED: Partial<Record<Layout, { cols: string; values: (conv: string) => unknown[] }>> = {
  'vault-conv-rowid': {
    cols: 'seq',
    values: (conv) => {
      const n = (convCount.get(conv) ?? 0) + 1;
      convCount.set(conv, n);
      return [CONV_ORDINAL[conv]! * 2 ** 32 + n];
    },
  },
  'vault-clustered': { cols: 'rid, seq', values: (conv) => clusteredKey(conv) },
  'vault-clustered-noseq': { cols: 'rid, seq', values: (conv) => clusteredKey(conv) },
  'vault-clustered-noid': { cols: 'rid, seq', values: (conv) => clusteredKey(conv) },
  'keys-clustered-ord': { cols: 'ord', values: () => [++seqCount] },
};

/** The destroyed conversation's range before the kept one: its rows go in mid-tree. */
function clusteredKey(conv: string): unknown[] {
  const seq = ++seqCount;
  return [(conv === 'c-destroyed' ? 1 : 2) * 2 ** 33 + seq, seq];
}

const VAULT = layout.startsWith('vault');
const COLS = [KEYED[layout]?.cols, VAULT ? 'id, conversation, sender, label, label_rank, urgent, sent_at, received_at, sealed' : 'msg_id, conversation, wrapped']
  .filter(Boolean)
  .join(', ');

function row(conv: string, j: number): unknown[] {
  const id = randomBytes(16).toString('base64url');
  const own = VAULT
    ? [id, conv, `load00${j % 10}`, 'restricted', 1, 0, '2026-11-29T06:00:00.000Z', '2026-11-29T06:00:00.000Z', randomBytes(1300)]
    : [id, conv, randomBytes(60)];
  return [...(KEYED[layout]?.values(conv) ?? []), ...own];
}

async function main(): Promise<void> {
  if (!(layout in LAYOUTS)) throw new Error(`layout: one of ${Object.keys(LAYOUTS).join(', ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'sigil-layout-'));
  const file = join(dir, 'x.db');
  const db = new sqlite3.Database(file);
  const run = (sql: string, p: unknown[] = []): Promise<number> =>
    new Promise((res, rej) => db.run(sql, p, function (this: sqlite3.RunResult, e: Error | null) { if (e) rej(e); else res(this.changes); }));
  const exec = (sql: string): Promise<void> => new Promise((res, rej) => db.exec(sql, (e) => (e ? rej(e) : res())));
  try {
    if (PAGE) await exec(`PRAGMA page_size = ${Number(PAGE)}`);
    await exec('PRAGMA secure_delete = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;');
    await exec(LAYOUTS[layout]);
    const marks = `(${COLS.split(',').map(() => '?').join(',')})`;
    const fill = async (conv: (i: number) => string, n: number): Promise<void> => {
      for (let i = 0; i < n; i += 500) {
        const k = Math.min(500, n - i);
        await exec('BEGIN');
        await run(`INSERT INTO m (${COLS}) VALUES ${Array(k).fill(marks).join(',')}`, Array.from({ length: k }, (_, j) => row(conv(i + j), j)).flat());
        await exec('COMMIT');
      }
    };
    const t0 = performance.now();
    if (INTERLEAVE) {
      // Every (BIG + DESTROY) / DESTROY-th row is the destroyed conversation's.
      const every = (BIG + DESTROY) / DESTROY;
      await fill((i) => (Math.floor((i + 1) / every) > Math.floor(i / every) ? 'c-destroyed' : 'c-kept'), BIG + DESTROY);
    } else {
      await fill(() => 'c-kept', BIG);
      await fill(() => 'c-destroyed', DESTROY);
    }
    await exec('PRAGMA wal_checkpoint(TRUNCATE)');
    console.log(`${layout}: filled ${BIG} + ${DESTROY} rows in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    if (cacheSize) await exec(`PRAGMA cache_size = ${Number(cacheSize)}`);
    if (MMAP) await exec(`PRAGMA mmap_size = ${Number(MMAP)}`);

    const pages = (await new Promise<{ page_count: number }>((res, rej) => db.get('PRAGMA page_count', (e: Error | null, r: { page_count: number }) => (e ? rej(e) : res(r))))).page_count;
    console.log(`${layout}: ${pages} pages of the file`);
    const wal = (): string => `${(statSync(`${file}-wal`).size / 1e6).toFixed(0)} MB`;
    const cpu0 = process.cpuUsage();
    const t = performance.now();
    await exec('BEGIN IMMEDIATE');
    const n = layout === 'vault-conv-rowid'
      ? await run('DELETE FROM m WHERE seq BETWEEN ? AND ?', [2 * 2 ** 32, 3 * 2 ** 32 - 1])
      : await run('DELETE FROM m WHERE conversation = ?', ['c-destroyed']);
    const t1 = performance.now();
    const walAfterDelete = wal();
    await exec('COMMIT');
    const t2 = performance.now();
    const walAfterCommit = wal();
    await exec('PRAGMA wal_checkpoint(TRUNCATE)');
    const t3 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `${layout}${INTERLEAVE ? ' interleaved' : ''}${cacheSize ? ` cache_size=${cacheSize}` : ''}${PAGE ? ` page_size=${PAGE}` : ''}${MMAP ? ` mmap_size=${MMAP}` : ''}: ${n} rows — DELETE ${(t1 - t).toFixed(0)} ms (WAL ${walAfterDelete}), ` +
        `COMMIT ${(t2 - t1).toFixed(0)} ms (WAL ${walAfterCommit}), TRUNCATE checkpoint ${(t3 - t2).toFixed(0)} ms; ` +
        `total ${(t3 - t).toFixed(0)} ms, CPU user ${(cpu.user / 1e3).toFixed(0)} ms system ${(cpu.system / 1e3).toFixed(0)} ms`,
    );
  } finally {
    await new Promise<void>((r) => db.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
