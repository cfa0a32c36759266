/**
 * Checks shared by the migration tests of msg_messages (clustered-rows, id-lookup): after a
 * rebuild, the trigger still moves msg_sequence's mark on insert and seq is still unique.
 */
import type { Test } from 'tap';
import { clusterKey } from '../../../../server/messaging/cluster-key.js';
import type { Db } from '../../../../server/vault/index.js';

/** A bare row at `seq` of `conv`, stored where the writer would store it. */
function insertAt(db: Db, conv: string, seq: number, id: string, at: string, rowSeq = seq): Promise<unknown> {
  return db.run(
    `INSERT INTO msg_messages (rid, seq, id, conversation, sender, label, label_rank, urgent, sent_at, received_at, sealed)
     VALUES (?, ?, ?, ?, 'bob', 'secret', 3, 0, ?, ?, x'00')`,
    [clusterKey(conv, rowSeq), seq, id, conv, at, at],
  );
}

/**
 * Inserts a row of `conv` at `seq` (above every seq given) and expects the mark to follow; then a
 * second row with the same seq, at another rowid of `other`, must be refused.
 */
export async function expectSeqGuarded(t: Test, db: Db, conv: string, other: string, seq: number, at: string): Promise<void> {
  await insertAt(db, conv, seq, `m${seq}`, at);
  t.equal((await db.get<{ hi: number }>('SELECT hi FROM msg_sequence'))?.hi, seq, 'the trigger moves the mark on insert');
  await t.rejects(insertAt(db, other, seq, `m${seq}-again`, at, other === conv ? seq + 1 : seq), { code: 'VAULT_CONSTRAINT' }, 'a seq is unique');
}
