/**
 * Who gets a live receipt when a mark moves (RECENT_SENDERS_SQL): the senders of the newest
 * messages at or below the mark, within a bounded window. The query it replaced, a DISTINCT over
 * the whole conversation, had to visit every row when a conversation had few senders — the first
 * history page of a 1,000,000-message conversation took 14 s. A sender whose only message lies
 * before the window is not found: that is the bound, and this test holds it. Nor is a sender who
 * is no longer a member: they would learn who joined after them, and when each read.
 */
import t from 'tap';
import { join } from 'node:path';
import { Db } from '../../../server/vault/index.js';
import { MESSAGING_MIGRATIONS } from '../../../server/messaging/schema.js';
import { clusterKey } from '../../../server/messaging/cluster-key.js';
import { RECENT_SENDERS_SQL, RECENT_SENDERS_WINDOW } from '../../../server/messaging/message-marks.js';
import { tmpDir } from '../../helpers/tmp.js';

t.test('when a mark moves then the senders of the newest messages are found, and none from before the window', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'vault.db'), { reader: true });
  t.teardown(() => db.close());
  await db.migrate(MESSAGING_MIGRATIONS);
  const at = '2026-11-29T00:00:00.000Z';
  await db.run(`INSERT INTO msg_conversations (id, kind, name, label, created_by, created_at) VALUES ('g1', 'group', 'g', 'secret', 'bob', ?)`, [at]);
  let n = 0;
  const send = (sender: string, count: number) =>
    db.transaction(async (tx) => {
      for (let i = 0; i < count; i++, n++) {
        await tx.run(
          `INSERT INTO msg_messages (rid, seq, id, conversation, sender, label, label_rank, urgent, sent_at, received_at, sealed) VALUES (?, ?, ?, 'g1', ?, 'secret', 3, 0, ?, ?, ?)`,
          [clusterKey('g1', n + 1), n + 1, `m${n}`, sender, at, at, new Uint8Array(8)],
        );
      }
    });
  // Members get receipts; a sender who has left does not (eve).
  for (const login of ['alice', 'bob', 'carol', 'dave']) {
    await db.run(`INSERT INTO msg_members (conversation, login, role, joined_at) VALUES ('g1', ?, 'member', ?)`, [login, at]);
  }
  await send('eve', 1); // left the group since: never found
  await send('carol', 1); // long before the window
  await send('bob', RECENT_SENDERS_WINDOW + 100);
  await send('dave', 1);
  await send('bob', 10);
  const top = (await db.get<{ s: number }>('SELECT max(seq) AS s FROM msg_messages'))!.s;
  const found = (seq: number, reader: string) => db.all<{ sender: string }>(RECENT_SENDERS_SQL, ['g1', seq, RECENT_SENDERS_WINDOW, reader]);
  t.same((await found(top, 'alice')).map((r) => r.sender).sort(), ['bob', 'dave']);
  t.same((await found(top, 'bob')).map((r) => r.sender), ['dave'], 'the reader is left out');
  t.same((await found(3, 'alice')).map((r) => r.sender).sort(), ['bob', 'carol'], 'at a mark near the start, carol is in the window');
  t.notOk((await found(top, 'alice')).some((r) => r.sender === 'carol'), 'carol, before the window, is not searched for');
  t.notOk((await found(3, 'alice')).some((r) => r.sender === 'eve'), 'eve, in the window but no longer a member, is not told');
});
