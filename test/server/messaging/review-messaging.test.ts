/**
 * Findings of a review of messaging on the server (signed messages, groups, files, deletion),
 * each a race between two requests held apart with a gate on the signature check, as
 * frames-release-input.test.ts does: everything else is the real vault, keys and signatures.
 */
import t, { type Test } from 'tap';
import { pkiVerifier, type Messaging } from '../../../server/messaging/index.js';
import type { Db } from '../../../server/vault/index.js';
import { harness, type Harness } from './harness.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * A messaging service over `h`'s vault whose message signature checks wait on a gate: `checking()`
 * says how many reached it, `open()` lets them go on. Deletion statements pass straight through.
 */
async function gated(t: Test, h: Harness): Promise<{ m: Messaging; checking(): number; open(): void }> {
  await h.messaging.close();
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let waiting = 0;
  const m = await h.restart({
    verify: async (signature, content, signer) => {
      if (new TextDecoder().decode(content).includes('"purpose":"sigil-message"')) {
        waiting++;
        await gate;
      }
      return pkiVerifier(signature, content, signer);
    },
  });
  t.teardown(() => m.close());
  return { m, checking: () => waiting, open };
}

t.test('when a member is removed from a group while their message is checked then it is refused, not stored', async (t) => {
  const h = await harness(t);
  const owner = await h.user('rv-owner');
  const gone = await h.user('rv-gone');
  await h.messaging.createGroup(owner.principal, { name: 'rv-one', label: 'secret' });
  const g = await h.messaging.addMember(owner.principal, 'rv-one', { login: gone.login });
  const { m, checking, open } = await gated(t, h);
  const msg = await h.compose(gone, g.id, 'sent before the removal answered');
  const sent = m.send(gone.principal, msg);
  sent.catch(() => undefined);
  while (checking() < 1) await turn();
  // The owner removes them while the signature is checked; the removal answers first.
  const after = await m.removeMember(owner.principal, 'rv-one', gone.login);
  t.notOk(after.members.some((x) => x.login === gone.login), 'removed');
  open();
  await t.rejects(sent, { code: 'CONVERSATION_NOT_FOUND' }, 'a non-member\'s message is refused as any send of theirs now is');
  const seen = await m.history(owner.principal, g.id, {});
  t.same(seen.messages.map((x) => x.id), [], 'nothing of theirs entered the group after the removal');
});

t.test('when a member is removed while their message with an attachment is checked then it is refused and the upload stays pending', async (t) => {
  const h = await harness(t);
  const owner = await h.user('rv-owner2');
  const gone = await h.user('rv-gone2');
  await h.messaging.createGroup(owner.principal, { name: 'rv-two', label: 'secret' });
  const g = await h.messaging.addMember(owner.principal, 'rv-two', { login: gone.login });
  const { m, checking, open } = await gated(t, h);
  const bytes = new TextEncoder().encode('a report');
  const up = await m.upload(gone.principal, g.id, new Blob([bytes]).stream(), bytes.length);
  const msg = await h.compose(gone, g.id, 'see attached', {
    attachments: [{ id: up.fileId, name: 'report.txt', sha384: up.sha384, size: up.size }],
  });
  const sent = m.send(gone.principal, msg);
  sent.catch(() => undefined);
  while (checking() < 1) await turn();
  await m.removeMember(owner.principal, 'rv-two', gone.login);
  open();
  await t.rejects(sent, { code: 'CONVERSATION_NOT_FOUND' });
  t.same((await m.history(owner.principal, g.id, {})).messages, []);
  await t.rejects(m.download(owner.principal, up.fileId), { code: 'FILE_NOT_FOUND' }, 'the file reached nobody');
  const row = await h.vault.db.get<{ state: string }>('SELECT state FROM msg_files WHERE id = ?', [up.fileId]);
  t.equal(row?.state, 'pending', 'still the uploader\'s pending upload, destroyed by the sweep');
});

t.test('when a message is deleted between its commit and its live fan-out then no listener gets it', async (t) => {
  const h = await harness(t);
  const alice = await h.user('rv-alice');
  const bob = await h.user('rv-bob');
  const ab = await h.messaging.direct(alice.principal, bob.login);
  const sub = h.messaging.subscribe(bob.principal);
  t.teardown(() => sub.close());

  // The fan-out's members query is slow (the reader connection busy with a long read): it waits
  // on a gate, after the message's row committed.
  const db = h.vault.db as Db & { all: Db['all'] };
  const all = db.all.bind(db);
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let reached = false;
  db.all = (async (sql: string, params?: unknown[]) => {
    if (/FROM msg_members WHERE conversation IN/.test(sql)) {
      reached = true;
      await gate;
    }
    return all(sql, params as never);
  }) as Db['all'];
  t.teardown(() => void (db.all = all));

  const msg = await h.compose(alice, ab.id, 'deleted before it went out');
  const sent = h.messaging.send(alice.principal, msg);
  while (!reached) await turn();
  // Committed, not yet published: its sender deletes it (the id is theirs from the start).
  await h.messaging.deleteMessage(alice.principal, msg.id, await h.deleteRequest(alice, `message:${msg.id}`));
  open();
  await sent;
  await turn();

  const got: string[] = [];
  for (let ev = await sub.next(); ev; ev = sub.queued ? await sub.next() : undefined) {
    got.push(ev.kind === 'message' ? `message ${String(ev.id)}` : ev.kind);
  }
  t.same(got, ['deleted'], 'bob learns of the deletion and never gets the deleted message');
});

t.test('when the two owners of a group remove each other at the same moment then one stays owner', async (t) => {
  const h = await harness(t);
  const m = h.messaging;
  const a = await h.user('rv-own-a');
  const b = await h.user('rv-own-b');
  await m.createGroup(a.principal, { name: 'rv-owners', label: 'secret' });
  await m.addMember(a.principal, 'rv-owners', { login: b.login, role: 'owner' });
  const [ra, rb] = await Promise.allSettled([
    m.removeMember(a.principal, 'rv-owners', b.login),
    m.removeMember(b.principal, 'rv-owners', a.login),
  ]);
  t.same([ra.status, rb.status].sort(), ['fulfilled', 'rejected'], 'one removal goes through, the other is refused');
  const refused = ra.status === 'rejected' ? ra.reason : rb.status === 'rejected' ? rb.reason : undefined;
  t.match(refused, { code: 'MEMBERSHIP_CONFLICT' });
  const rows = await h.vault.db.all<{ login: string }>(
    `SELECT m.login FROM msg_members m JOIN msg_conversations c ON c.id = m.conversation WHERE c.name = ? AND m.role = 'owner'`,
    ['rv-owners'],
  );
  t.equal(rows.length, 1, 'the group keeps an owner');
});

t.test('when two owners each demote the other at the same moment then one stays owner', async (t) => {
  const h = await harness(t);
  const m = h.messaging;
  const a = await h.user('rv-dem-a');
  const b = await h.user('rv-dem-b');
  await m.createGroup(a.principal, { name: 'rv-demote', label: 'secret' });
  await m.addMember(a.principal, 'rv-demote', { login: b.login, role: 'owner' });
  await Promise.allSettled([
    m.addMember(a.principal, 'rv-demote', { login: b.login, role: 'member' }),
    m.addMember(b.principal, 'rv-demote', { login: a.login, role: 'member' }),
  ]);
  const rows = await h.vault.db.all<{ login: string }>(
    `SELECT m.login FROM msg_members m JOIN msg_conversations c ON c.id = m.conversation WHERE c.name = ? AND m.role = 'owner'`,
    ['rv-demote'],
  );
  t.equal(rows.length, 1, 'the group keeps an owner');
});

/**
 * Makes the next `messageKey` of `h`'s key store wait until `open()` (a read between its row and
 * its key); `waiting()` says whether one does.
 */
function gateNextMessageKey(h: Harness): { waiting(): boolean; open(): void } {
  const keys = h.vault.keys as unknown as Record<string, unknown>;
  const base = h.vault.keys.messageKey.bind(h.vault.keys);
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let waiting = false;
  keys.messageKey = async (id: string) => {
    delete keys.messageKey; // once: the prototype's method is back for every later call
    waiting = true;
    await gate;
    return base(id);
  };
  return { waiting: () => waiting, open: () => open() };
}

t.test('when a message is deleted while it is being read then the reader gets MESSAGE_NOT_FOUND, not an internal error', async (t) => {
  const h = await harness(t);
  const { a, b, conv } = await h.direct('rv-read-a', 'rv-read-b');
  const msg = await h.compose(a, conv.id, 'read while deleted');
  await h.messaging.send(a.principal, msg);
  const gate = gateNextMessageKey(h);
  const reading = h.messaging.message(b.principal, msg.id);
  reading.catch(() => undefined);
  while (!gate.waiting()) await turn();
  await h.messaging.deleteMessage(a.principal, msg.id, await h.deleteRequest(a, `message:${msg.id}`));
  gate.open();
  await t.rejects(reading, { code: 'MESSAGE_NOT_FOUND' });
});

t.test('when a message is deleted while its history page is read then the page leaves it out, not an internal error', async (t) => {
  const h = await harness(t);
  const { a, b, conv } = await h.direct('rv-hist-a', 'rv-hist-b');
  const kept = await h.compose(a, conv.id, 'kept');
  await h.messaging.send(a.principal, kept);
  const msg = await h.compose(a, conv.id, 'read while deleted');
  await h.messaging.send(a.principal, msg);
  const gate = gateNextMessageKey(h);
  const reading = h.messaging.history(b.principal, conv.id, {});
  reading.catch(() => undefined);
  while (!gate.waiting()) await turn();
  await h.messaging.deleteMessage(a.principal, msg.id, await h.deleteRequest(a, `message:${msg.id}`));
  gate.open();
  const page = await reading;
  t.same(page.messages.map((x) => x.id), [kept.id], 'the deleted message is not on the page; the other is');
});
