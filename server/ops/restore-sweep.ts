/**
 * The sweep of a restore: which keys the live keys.db still holds, which rows of the restored
 * vault.db they no longer open (deleted after the backup: removed, and guarded against replay
 * where their conversation stays), and which keys no restored row needs (made after the backup:
 * destroyed by the caller).
 */
import { existsSync } from 'node:fs';
import { DEFAULT_CONFIG, keyedHashFromKeyring } from '../messaging/index.js';
import { fileKeyId, guardSubjects, messageSubject } from '../messaging/context.js';
import { chunks, Db, Keyring, marks, type MasterKey } from '../vault/index.js';
import { hasTable } from './counts.js';

/** Most ids in one `IN (…)` list. */
const IN_CHUNK = 400;

/** Key ids, as plaintext in keys.db or as needed by rows of vault.db. */
export interface KeyIds {
  /** Message keys and file keys (`file:<id>`). */
  messageKeyIds: Set<string>;
  convIds: Set<string>;
}

/**
 * Ids of every key in the live keys.db (no master key needed: ids are plaintext) that still opens
 * a row of the live vault.db, when there is one (`liveVaultDb`). A key whose row the live vault no
 * longer has belongs to a deletion that committed its rows but not yet its keys (a full disk, a
 * crash, a retry pending at stop; the server's next start would destroy it): counted live, it kept
 * the backup's copy of that row, and a deleted message came back readable.
 */
export async function liveKeyIds(keysDb: string, liveVaultDb?: string): Promise<KeyIds> {
  const db = await Db.open(keysDb);
  let ids: KeyIds;
  try {
    const m = (await hasTable(db, 'message_keys')) ? await db.all<{ id: string }>('SELECT msg_id AS id FROM message_keys') : [];
    const c = (await hasTable(db, 'conversation_keys')) ? await db.all<{ id: string }>('SELECT conv_id AS id FROM conversation_keys') : [];
    ids = { messageKeyIds: new Set(m.map((r) => r.id)), convIds: new Set(c.map((r) => r.id)) };
  } finally {
    await db.close();
  }
  if (liveVaultDb === undefined || !existsSync(liveVaultDb)) return ids;
  const vault = await Db.open(liveVaultDb);
  try {
    if (!(await hasTable(vault, 'msg_messages'))) return ids;
    const rows = new Set((await vault.all<{ id: string }>('SELECT id FROM msg_messages')).map((r) => r.id));
    for (const f of await vault.all<{ id: string }>('SELECT id FROM msg_files')) rows.add(fileKeyId(f.id));
    const convs = new Set((await vault.all<{ id: string }>('SELECT id FROM msg_conversations')).map((r) => r.id));
    return {
      messageKeyIds: new Set([...ids.messageKeyIds].filter((id) => rows.has(id))),
      convIds: new Set([...ids.convIds].filter((id) => convs.has(id))),
    };
  } finally {
    await vault.close();
  }
}

/**
 * The audit tree head of the vault a restore replaces (its size and root, base64), if it has one:
 * recorded in the `vault.restored` entry, so that an auditor holding a checkpoint of that trail
 * sees it was replaced on purpose, and how far it reached, rather than an unexplained rollback.
 */
export async function replacedAuditHead(liveVaultDb: string): Promise<{ size: number; root: string } | undefined> {
  if (!existsSync(liveVaultDb)) return undefined;
  const db = await Db.open(liveVaultDb);
  try {
    if (!(await hasTable(db, 'audit_head'))) return undefined;
    const head = await db.get<{ size: number; root: Uint8Array }>('SELECT size, root FROM audit_head WHERE id = 1');
    return head ? { size: head.size, root: Buffer.from(head.root).toString('base64') } : undefined;
  } finally {
    await db.close();
  }
}

/** Deletes, in the restored copy, every row whose key no longer exists. */
export async function sweepRows(
  db: Db,
  mk: MasterKey,
  live: KeyIds,
  now: () => Date,
): Promise<{ messages: number; files: number; conversations: number }> {
  if (!(await hasTable(db, 'msg_messages'))) return { messages: 0, files: 0, conversations: 0 };
  const convs = (await db.all<{ id: string }>('SELECT id FROM msg_conversations')).map((r) => r.id).filter((id) => !live.convIds.has(id));
  const gone = new Set(convs);
  // rowid: the row's address in every layout a backup may have (vault.db has no id index since messaging-004).
  const msgs = (await db.all<{ r: number; id: string; conversation: string }>('SELECT rowid AS r, id, conversation FROM msg_messages')).filter(
    (r) => gone.has(r.conversation) || !live.messageKeyIds.has(r.id),
  );
  const files = (await db.all<{ id: string; conversation: string }>('SELECT id, conversation FROM msg_files')).filter(
    (r) => gone.has(r.conversation) || !live.messageKeyIds.has(fileKeyId(r.id)),
  );
  // A message swept from a conversation that stays goes into the replay guard, so its signed
  // original cannot be resubmitted. One whose conversation is gone needs none: its conversation
  // never comes back (a random id), so a resubmission is CONVERSATION_NOT_FOUND — as in deletion.
  const single = msgs.filter((m) => !gone.has(m.conversation));
  const keyedHash = await keyedHashFromKeyring(await Keyring.open(db, mk));
  const hashes = await Promise.all(single.map((m) => messageSubject({ keyedHash }, m.id)));
  const until = new Date(now().getTime() + 2 * DEFAULT_CONFIG.clockSkewMs).toISOString();
  // Set-based, IN lists of at most IN_CHUNK: a big vault sweeps 100k rows in a few statements
  // rather than two round trips per row.
  await db.transaction(async (tx) => {
    const each = async (ids: readonly (string | number)[], sql: (q: string) => string): Promise<void> => {
      for (const part of chunks(ids, IN_CHUNK)) await tx.run(sql(marks(part.length)), part);
    };
    await each(files.map((f) => f.id), (q) => `DELETE FROM msg_files WHERE id IN (${q})`); // chunks cascade
    await each(single.map((m) => m.r), (q) => `DELETE FROM msg_messages WHERE rowid IN (${q})`);
    await guardSubjects(tx, hashes, until);
    await each(convs, (q) => `DELETE FROM msg_messages WHERE conversation IN (${q})`);
    await each(convs, (q) => `DELETE FROM msg_marks WHERE conversation IN (${q})`);
    await each(convs, (q) => `DELETE FROM msg_members WHERE conversation IN (${q})`);
    await each(convs, (q) => `DELETE FROM msg_conversations WHERE id IN (${q})`);
  });
  return { messages: msgs.length, files: files.length, conversations: convs.length };
}

/** Key ids the restored rows need. */
export async function keptIds(db: Db): Promise<KeyIds> {
  if (!(await hasTable(db, 'msg_messages'))) return { messageKeyIds: new Set(), convIds: new Set() };
  const m = await db.all<{ id: string }>('SELECT id FROM msg_messages');
  const f = await db.all<{ id: string }>('SELECT id FROM msg_files');
  const c = await db.all<{ id: string }>('SELECT id FROM msg_conversations');
  return {
    messageKeyIds: new Set([...m.map((r) => r.id), ...f.map((r) => fileKeyId(r.id))]),
    convIds: new Set(c.map((r) => r.id)),
  };
}
