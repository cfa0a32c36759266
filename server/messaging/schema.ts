/**
 * Messaging tables in `vault.db`. Columns hold only what queries need in plaintext (ids,
 * sequence numbers, logins, labels, times, sizes, digests of ciphertext-bound files); the header,
 * body, signature and file chunks are AES-256-GCM ciphertext under per-message keys kept in
 * `keys.db` (ARCHITECTURE.md, key hierarchy). File names exist only inside the encrypted header.
 */

import { clusterKeySql } from './cluster-key.js';

/**
 * The rebuild of msg_messages that migrations 003 and 004 both make: a new table under `table`,
 * every row copied in `order` with its rowid from the `rid` expression, the old table dropped (its
 * pages zeroed), the new one renamed, its indexes and the seq trigger made again. `id` is the id
 * column's definition, the one thing the two layouts differ in. The text each migration gets is
 * the text it was applied with; change it only by adding a migration.
 */
function rebuildMessages(o: { table: string; id: string; rid: string; order: string }): string {
  return `CREATE TABLE ${o.table} (
  rid INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  ${o.id},
  conversation TEXT NOT NULL REFERENCES msg_conversations(id),
  sender TEXT NOT NULL,
  label TEXT NOT NULL,
  label_rank INTEGER NOT NULL,
  urgent INTEGER NOT NULL,
  sent_at TEXT NOT NULL,
  received_at TEXT NOT NULL,
  sealed BLOB NOT NULL
) STRICT;
INSERT INTO ${o.table} (rid, seq, id, conversation, sender, label, label_rank, urgent, sent_at, received_at, sealed)
  SELECT ${o.rid}, seq, id, conversation, sender, label, label_rank, urgent, sent_at, received_at, sealed
  FROM msg_messages ORDER BY ${o.order};
DROP TABLE msg_messages;
ALTER TABLE ${o.table} RENAME TO msg_messages;
CREATE INDEX msg_messages_conv ON msg_messages(conversation, seq, label_rank, sender);
CREATE INDEX msg_messages_sender ON msg_messages(sender);
CREATE TRIGGER msg_messages_sequence AFTER INSERT ON msg_messages
  BEGIN UPDATE msg_sequence SET hi = NEW.seq WHERE hi < NEW.seq; END;
`;
}

/** Migrations for `Db.migrate`; ids are stable, never edit an applied one. */
export const MESSAGING_MIGRATIONS: readonly { id: string; sql: string }[] = [
  {
    id: 'messaging-001-core',
    sql: `
CREATE TABLE msg_conversations (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
  name TEXT UNIQUE,
  pair TEXT UNIQUE,
  label TEXT NOT NULL,
  retention_days INTEGER,
  created_by TEXT NOT NULL,
  created_at TEXT NOT NULL
) STRICT;

CREATE TABLE msg_members (
  conversation TEXT NOT NULL REFERENCES msg_conversations(id) ON DELETE CASCADE,
  login TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('owner', 'member')),
  muted INTEGER NOT NULL DEFAULT 0,
  read_seq INTEGER NOT NULL DEFAULT 0,
  delivered_seq INTEGER NOT NULL DEFAULT 0,
  joined_at TEXT NOT NULL,
  PRIMARY KEY (conversation, login)
) STRICT;
CREATE INDEX msg_members_login ON msg_members(login);

CREATE TABLE msg_messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  conversation TEXT NOT NULL REFERENCES msg_conversations(id),
  sender TEXT NOT NULL,
  label TEXT NOT NULL,
  label_rank INTEGER NOT NULL,
  urgent INTEGER NOT NULL,
  sent_at TEXT NOT NULL,
  received_at TEXT NOT NULL,
  -- header ‖ signature ‖ body, framed (context.ts packMessage), sealed once under the message's DEK
  sealed BLOB NOT NULL
) STRICT;
CREATE INDEX msg_messages_conv ON msg_messages(conversation, seq);
CREATE INDEX msg_messages_sender ON msg_messages(sender);

CREATE TABLE msg_files (
  id TEXT PRIMARY KEY,
  conversation TEXT NOT NULL,
  uploader TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'final')),
  message TEXT,
  size INTEGER NOT NULL,
  sha384 TEXT NOT NULL,
  chunk_count INTEGER NOT NULL,
  created_at TEXT NOT NULL
) STRICT;
CREATE INDEX msg_files_message ON msg_files(message);
CREATE INDEX msg_files_conversation ON msg_files(conversation);

CREATE TABLE msg_file_chunks (
  file TEXT NOT NULL REFERENCES msg_files(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (file, idx)
) STRICT;

CREATE TABLE msg_marks (
  conversation TEXT NOT NULL,
  login TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('delivered', 'read')),
  seq INTEGER NOT NULL,
  at TEXT NOT NULL
) STRICT;
CREATE INDEX msg_marks_conv ON msg_marks(conversation, kind, seq);

-- Ids of deleted messages, kept (as the keyed hash of message:<id>) only while their sentAt is inside the
-- clock-skew window, so a deleted message cannot be resubmitted and resurrected.
CREATE TABLE msg_replay_guard (
  id_hash TEXT PRIMARY KEY,
  until TEXT NOT NULL
) STRICT;
`,
  },
  {
    // The conversation index also carries label_rank and sender, so the conversation list's unread
    // count, its last message and the receipt window are answered from the index alone: counting
    // 1,000,000 unread messages went from ~1 s (a table row per message) to ~60 ms. Both columns
    // are plaintext columns of the row already; nothing new is exposed.
    id: 'messaging-002-conversation-index-covers-unread',
    sql: `
DROP INDEX msg_messages_conv;
CREATE INDEX msg_messages_conv ON msg_messages(conversation, seq, label_rank, sender);
`,
  },
  {
    // Rows clustered by conversation (cluster-key.ts): the rowid becomes bucket × 2^33 + seq and
    // seq a column of its own, assigned by the writer. Until now seq was the rowid, so rows lay in
    // arrival order and destroying one conversation among busy others rewrote (zeroed) pages all
    // over the file. msg_sequence keeps the highest seq ever given, so seq is never reused after
    // the newest messages are deleted (what AUTOINCREMENT did): read marks and live-stream resume
    // points name seqs. The rebuild rewrites every row once; DROP TABLE zeroes the old pages.
    id: 'messaging-003-rows-clustered-by-conversation',
    sql: `
CREATE TABLE msg_sequence (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  hi INTEGER NOT NULL
) STRICT;
INSERT INTO msg_sequence (one, hi)
  SELECT 1, max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'msg_messages'), 0), coalesce((SELECT max(seq) FROM msg_messages), 0));

${rebuildMessages({ table: 'msg_messages_clustered', id: 'id TEXT NOT NULL UNIQUE', rid: clusterKeySql('conversation', 'seq'), order: '1' })}`,
  },
  {
    // No index on the message id. Ids are random, so destroying 100k of 1.1M messages deleted an
    // entry from nearly every leaf of that index, and secure_delete rewrote them all: 1.60 s of
    // bare SQLite against 0.96 s without it (bench/experiments/destroy-layout.ts, interleaved).
    // keys.db already holds every message id, uniquely, with the conversation and seq that make the
    // rowid (message-lookup.ts): a lookup by id goes through it, and the key store's unique id is
    // what refuses a second message with the same id (the writer stores keys before rows).
    // The UNIQUE constraint lives in the table definition, so the table is rebuilt once more.
    id: 'messaging-004-message-id-found-through-keys',
    sql: `
${rebuildMessages({ table: 'msg_messages_unindexed', id: 'id TEXT NOT NULL', rid: 'rid', order: 'rid' })}`,
  },
  {
    // Every upload counts its uploader's pending files (upload-quota.ts). msg_files keeps a row per
    // attachment ever sent, the pending ones are few: a partial index holds only those, so the
    // count reads a handful of entries instead of the whole table, and attaching (which ends
    // `pending`) drops the entry.
    id: 'messaging-005-pending-uploads-by-uploader',
    sql: `CREATE INDEX msg_files_pending ON msg_files(uploader) WHERE state = 'pending';`,
  },
];

/**
 * The migrations applied before the one whose id starts with `prefix`: the schema an older
 * appliance has (upgrade tests, bench/experiments/migration-cost.ts). Throws for an unknown prefix,
 * where slicing would quietly give nothing.
 */
export function migrationsBefore(prefix: string): typeof MESSAGING_MIGRATIONS {
  const i = MESSAGING_MIGRATIONS.findIndex((m) => m.id.startsWith(prefix));
  if (i < 0) throw new Error(`no messaging migration ${prefix}`);
  return MESSAGING_MIGRATIONS.slice(0, i);
}
