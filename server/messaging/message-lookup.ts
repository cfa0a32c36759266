/**
 * Messages found by id, and the start's reconciliation that keeps that possible.
 *
 * vault.db keeps no index on message ids (migration messaging-004): ids are random, so destroying
 * 100k of 1.1M messages removed an entry from nearly every leaf of that index, and secure_delete
 * rewrote them all. keys.db holds every message id anyway, uniquely, beside the conversation and
 * seq that make the row's rowid (cluster-key.ts). A lookup by id is therefore one read of keys.db's
 * id index and then rowid reads in vault.db; a row counts only if it carries the id asked for.
 * A message whose key is gone cannot be opened, so "not found" is the right answer for it too.
 *
 * Write order keeps the two files agreeing (ARCHITECTURE.md): keys are stored before their rows
 * and destroyed after them, so a lookup between the two steps finds the key and no row.
 */
import { clusterKey, SEQ_LIMIT } from './cluster-key.js';
import { fileKeyId } from './context.js';
import type { MessageKeyStore } from './ports.js';
import type { KeyPlace, Queryable } from '../vault/index.js';

/**
 * One message's row with `cols` (a column list of msg_messages that includes `id`), or undefined
 * when it does not exist. `q` is the vault connection or a transaction on it.
 */
export async function messageRow<T extends { id: string }>(
  keys: Pick<MessageKeyStore, 'locate'>,
  q: Pick<Queryable, 'all'>,
  id: string,
  cols: string,
): Promise<(T & { rid: number }) | undefined> {
  const place = (await keys.locate([id])).get(id);
  if (!place || place.ord < 1 || place.ord >= SEQ_LIMIT) return undefined;
  const [row] = await q.all<T & { rid: number }>(`SELECT rid, ${cols} FROM msg_messages WHERE rid = ?`, [clusterKey(place.convId, place.ord)]);
  return row?.id === id ? row : undefined;
}

/** What {@link reconcileKeys} did. */
export interface Reconciled {
  /** Keys stored before keys.db kept seqs, now given their message's seq. */
  placed: number;
  /** Keys without a row (a crash between a deletion's rows and its keys, or a refused batch), destroyed. */
  orphans: string[];
}

/**
 * At start, before any message is written: every key of keys.db either opens a row of vault.db
 * and sits at that row's place, or is destroyed.
 *
 * - A file key (`file:<id>`) stays while its file row exists.
 * - A message key stays while a row has its conversation and seq, read from the conversation index
 *   alone (vault.db has no id index to read ids from). Two keys can share a place only when a
 *   failed batch's keys outlived it and its seqs were given again; the row's id decides which stays.
 * - A message key of order 0 was stored before keys.db kept seqs (keystore-2 moved old keys with
 *   order 0): its row is found among its conversation's rows and the key takes its seq, so lookups
 *   by id find it. Done once; afterwards no message key has order 0.
 */
export async function reconcileKeys(
  keys: Pick<MessageKeyStore, 'keyPlaces' | 'placeKeys' | 'destroyMessageKeys'>,
  db: Pick<Queryable, 'all'>,
): Promise<Reconciled> {
  const files = new Set((await db.all<{ id: string }>('SELECT id FROM msg_files')).map((r) => fileKeyId(r.id)));
  const seqs = new Map<string, Set<number>>();
  for (const r of await db.all<{ conversation: string; seq: number }>('SELECT conversation, seq FROM msg_messages INDEXED BY msg_messages_conv')) {
    let s = seqs.get(r.conversation);
    if (!s) seqs.set(r.conversation, (s = new Set()));
    s.add(r.seq);
  }
  const orphans: string[] = [];
  const unplaced = new Map<string, KeyPlace[]>();
  const shared: KeyPlace[][] = [];
  let prev: KeyPlace | undefined;
  for (const k of await keys.keyPlaces()) {
    if (k.msgId.startsWith(fileKeyId(''))) {
      if (!files.has(k.msgId)) orphans.push(k.msgId);
      continue;
    }
    if (k.ord === 0) {
      const list = unplaced.get(k.convId) ?? [];
      list.push(k);
      unplaced.set(k.convId, list);
      continue;
    }
    if (!seqs.get(k.convId)?.has(k.ord)) orphans.push(k.msgId);
    else if (prev && prev.convId === k.convId && prev.ord === k.ord) {
      // keyPlaces answers in (conversation, order) order, so keys sharing a place are neighbours.
      const last = shared[shared.length - 1];
      if (last && last[0] === prev) last.push(k);
      else shared.push([prev, k]);
    }
    prev = k;
  }
  for (const group of shared) {
    const [first] = group;
    const row = (await db.all<{ id: string }>('SELECT id FROM msg_messages WHERE rid = ?', [clusterKey(first!.convId, first!.ord)]))[0];
    for (const k of group) if (k.msgId !== row?.id) orphans.push(k.msgId);
  }
  const placements: KeyPlace[] = [];
  for (const [convId, list] of unplaced) {
    const bySeq = new Map(
      (await db.all<{ id: string; seq: number }>('SELECT id, seq FROM msg_messages WHERE conversation = ?', [convId])).map((r) => [r.id, r.seq]),
    );
    for (const k of list) {
      const seq = bySeq.get(k.msgId);
      if (seq === undefined) orphans.push(k.msgId);
      else placements.push({ ...k, ord: seq });
    }
  }
  const placed = await keys.placeKeys(placements);
  if (orphans.length) await keys.destroyMessageKeys(orphans);
  return { placed, orphans };
}
