/**
 * The big-conversation queries answer from the (conversation, seq, label_rank, sender) index, not
 * from a table row per message (EXPLAIN QUERY PLAN on the real schema): the conversation list's
 * unread count and last message, and the receipt window. Counting 1,000,000 unread messages row by
 * row took ~1 s per `sigil conversations`.
 */
import t from 'tap';
import { join } from 'node:path';
import { Db } from '../../../server/vault/index.js';
import { LIST_SQL } from '../../../server/messaging/conversations.js';
import { RECENT_SENDERS_SQL } from '../../../server/messaging/message-marks.js';
import { MESSAGING_MIGRATIONS } from '../../../server/messaging/schema.js';
import { tmpDir } from '../../helpers/tmp.js';

async function plan(db: Db, sql: string, params: unknown): Promise<string> {
  const rows = await db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params as unknown[]);
  return rows.map((r) => r.detail).join('\n');
}

t.test('when the conversation list and the receipt window run then they use the covering conversation index', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'vault.db'));
  t.teardown(() => db.close());
  await db.migrate(MESSAGING_MIGRATIONS);
  const list = await plan(db, LIST_SQL, { $rank: 3, $login: 'alice' });
  const subqueries = list.split('\n').filter((l) => l.includes('msg_messages'));
  t.equal(subqueries.length, 2, `last message and unread count read msg_messages:\n${list}`);
  for (const l of subqueries) t.match(l, /USING COVERING INDEX msg_messages_conv/, 'answered from the index alone');
  const window = await plan(db, RECENT_SENDERS_SQL, ['g1', 10, 256, 'alice']);
  t.match(window, /USING COVERING INDEX msg_messages_conv/, `receipt window:\n${window}`);
});
