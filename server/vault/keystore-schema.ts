/**
 * The schema of `keys.db` (keystore.ts): its migrations, from the first tables to message keys
 * clustered by conversation.
 */

export const KEYSTORE_MIGRATIONS = [
  {
    id: 'keystore-1',
    sql: `
      CREATE TABLE conversation_keys (
        conv_id TEXT PRIMARY KEY,
        wrapped BLOB NOT NULL,
        created_at TEXT NOT NULL
      ) STRICT;
      CREATE TABLE message_keys (
        msg_id TEXT PRIMARY KEY,
        conv_id TEXT NOT NULL REFERENCES conversation_keys (conv_id),
        wrapped BLOB NOT NULL
      ) STRICT;
      CREATE INDEX message_keys_conv ON message_keys (conv_id);`,
  },
  {
    // Message keys clustered by conversation, as vault.db's rows are (messaging/cluster-key.ts):
    // keyed (conv_id, ord, msg_id) in a WITHOUT ROWID table, `ord` being the message's seq (0 for
    // file keys and for keys stored before this), so a conversation's keys share their pages and
    // a batch's new keys land at the end of their conversations. In rowid (arrival) order,
    // destroying 100k keys spread among 1.1M rewrote 151 MB of pages; clustered, 52 MB (1.27 →
    // 0.72 s, bench/experiments/destroy-layout.ts). DROP TABLE zeroes the old pages.
    id: 'keystore-2-clustered-by-conversation',
    sql: `
      CREATE TABLE message_keys_clustered (
        conv_id TEXT NOT NULL REFERENCES conversation_keys (conv_id),
        ord INTEGER NOT NULL DEFAULT 0,
        msg_id TEXT NOT NULL UNIQUE,
        wrapped BLOB NOT NULL,
        PRIMARY KEY (conv_id, ord, msg_id)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO message_keys_clustered (conv_id, ord, msg_id, wrapped)
        SELECT conv_id, 0, msg_id, wrapped FROM message_keys ORDER BY conv_id, msg_id;
      DROP TABLE message_keys;
      ALTER TABLE message_keys_clustered RENAME TO message_keys;`,
  },
];
