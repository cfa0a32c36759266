/**
 * A deletion's tombstone commits in the same vault transaction as the rows it records
 * (ARCHITECTURE.md, "Audit trail"). Failures are injected on either side of that commit: after it
 * (keys.db fails, as when its disk is full) the deletion stands, is in the audit trail, goes out
 * live and is answered with its tombstone, and the keys left behind are destroyed by a retry while
 * the appliance runs, by close, or else by the next start; before
 * it (the tombstone cannot be appended) nothing is deleted. A retention sweep goes on past a group
 * whose destroy fails.
 */
import t from 'tap';
import { keyedHashFromKeyring, type LiveEvent, type Messaging, type Principal } from '../../../server/messaging/index.js';
import type { LogFields } from '../../../server/log.js';
import { harness, type Harness } from './harness.js';

const diskFull = (): Error => Object.assign(new Error('SQLITE_FULL: database or disk is full'), { code: 'VAULT_FULL' });

type LogLine = LogFields & { event: string };

/**
 * Messaging restarted over a key store whose `destroyKeysAfter` fails once the rows committed
 * (its first `failures` calls; the rest go through), as the reviewer's reproduction did.
 */
async function withFailingKeys(t: { teardown(fn: () => Promise<void>): void }, h: Harness, failures = Infinity): Promise<{ m: Messaging; logs: LogLine[] }> {
  await h.messaging.close();
  const real = h.vault.keys;
  let left = failures;
  const keys = new Proxy(real, {
    get(o, p) {
      if (p === 'destroyKeysAfter') {
        return async (...[what, rowsGone]: Parameters<typeof real.destroyKeysAfter>) => {
          if (left-- <= 0) return real.destroyKeysAfter(what, rowsGone);
          await rowsGone; // the rows, and with them their tombstone, committed
          throw diskFull();
        };
      }
      const v: unknown = Reflect.get(o, p, o);
      return typeof v === 'function' ? v.bind(o) : v;
    },
  });
  const logs: LogLine[] = [];
  const m = await h.restart({ keys, log: (event, fields) => logs.push({ event, ...fields }) });
  t.teardown(() => m.close());
  return { m, logs };
}

/** The `deleted` events `p` receives live. */
function deletedEvents(m: Messaging, p: Principal): LiveEvent[] {
  const got: LiveEvent[] = [];
  m.subscribe(p).attach({ deliver: (ev) => (ev.kind === 'deleted' && got.push(ev), true), ended: () => undefined });
  return got;
}

const tombstones = async (h: Harness) => (await h.audit.entries(0, 10_000)).filter((e) => e.type === 'deletion');

t.test('when keys.db fails after a message deletion committed then the answer is its tombstone, which is in the audit trail, and start destroys the leftover key', async (t) => {
  const h = await harness(t);
  const { m, logs } = await withFailingKeys(t, h);
  const a = await h.user('tg-alice');
  const b = await h.user('tg-bob');
  const conv = await m.direct(a.principal, b.login);
  const msg = await h.compose(a, conv.id, 'to be deleted');
  await m.send(a.principal, msg);
  const live = deletedEvents(m, b.principal);

  const req = await h.deleteRequest(a, `message:${msg.id}`);
  const ts = await m.deleteMessage(a.principal, msg.id, req);
  t.equal(ts.count, 1, 'answered with the tombstone, not with "nothing was written"');
  await t.rejects(m.message(b.principal, msg.id), { code: 'MESSAGE_NOT_FOUND' }, 'the message is gone');
  const [tomb, ...more] = await tombstones(h);
  t.same(more, [], 'one tombstone');
  t.equal(tomb?.seq, ts.audit?.index, 'the tombstone answered is the one in the audit trail');
  t.equal(tomb?.subject, ts.target);
  t.equal(tomb?.data?.statementSignature, req.signature, "with the deleter's signature");
  t.same(live, [{ kind: 'deleted', data: { conversation: conv.id, ids: [msg.id] } }], 'the live event went out');
  t.match(logs, [{ event: 'messaging.deletion-after-commit-failed', errorCode: 'VAULT_FULL' }], 'the failure is logged');
  await t.rejects(m.deleteMessage(a.principal, msg.id, await h.deleteRequest(a, `message:${msg.id}`)), { code: 'MESSAGE_NOT_FOUND' });
  t.equal((await tombstones(h)).length, 1, 'a retry finds nothing and records nothing');

  t.ok((await h.vault.keys.locate([msg.id])).has(msg.id), 'control: the failure left the key in keys.db');
  await m.close();
  const again = await h.restart();
  t.teardown(() => again.close());
  t.notOk((await h.vault.keys.locate([msg.id])).has(msg.id), "start's reconciliation destroyed the key without a row");
  await t.rejects(h.vault.keys.messageKey(msg.id), { code: 'VAULT_KEY_NOT_FOUND' });
});

t.test('when keys.db fails after a group destroy committed then the answer is its tombstone, which is in the audit trail, and start destroys the leftover keys', async (t) => {
  const h = await harness(t);
  const { m, logs } = await withFailingKeys(t, h);
  const owner = await h.user('tg-owner');
  const g = await m.createGroup(owner.principal, { name: 'tg-group', label: 'restricted' });
  for (let i = 0; i < 3; i++) await m.send(owner.principal, await h.compose(owner, g.id, `m${i}`));
  await m.flush();
  const live = deletedEvents(m, owner.principal);

  const ts = await m.deleteGroup(owner.principal, g.name, await h.deleteRequest(owner, `conversation:${g.id}`));
  t.equal(ts.count, 3);
  await t.rejects(m.history(owner.principal, g.id, {}), { code: 'CONVERSATION_NOT_FOUND' }, 'the group is gone');
  const [tomb, ...more] = await tombstones(h);
  t.same(more, []);
  t.equal(tomb?.seq, ts.audit?.index);
  t.equal(tomb?.data?.count, 3);
  t.same(live, [{ kind: 'deleted', data: { conversation: g.id } }]);
  t.match(logs, [{ event: 'messaging.deletion-after-commit-failed', errorCode: 'VAULT_FULL' }]);

  t.ok(await h.vault.keys.hasConversationKey(g.id), 'control: the failure left the conversation key');
  await m.close();
  const again = await h.restart();
  t.teardown(() => again.close());
  t.notOk(await h.vault.keys.hasConversationKey(g.id), 'start destroyed the conversation key');
  t.same(await h.vault.keys.db.all('SELECT msg_id FROM message_keys WHERE conv_id = ?', [g.id]), [], 'and every message key under it');
});

/** Waits (bounded) until `logs` has an entry of `event`. */
async function logged(logs: LogLine[], event: string, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 10))) {
    if (logs.some((l) => l.event === event)) return true;
  }
  return false;
}

t.test('when keys.db fails once after a message deletion committed then the running appliance destroys the key on a retry, without a restart', async (t) => {
  const h = await harness(t, { config: { lateDestructionRetryMs: 20 } });
  const { m, logs } = await withFailingKeys(t, h, 1);
  const a = await h.user('tl-alice');
  const b = await h.user('tl-bob');
  const conv = await m.direct(a.principal, b.login);
  const msg = await h.compose(a, conv.id, 'to be deleted');
  await m.send(a.principal, msg);
  const ts = await m.deleteMessage(a.principal, msg.id, await h.deleteRequest(a, `message:${msg.id}`));
  t.equal(ts.count, 1);
  t.match(logs, [{ event: 'messaging.deletion-after-commit-failed', errorCode: 'VAULT_FULL' }], 'the failure is logged');
  t.ok(await logged(logs, 'messaging.late-destruction-done'), 'a retry finished it');
  t.notOk((await h.vault.keys.locate([msg.id])).has(msg.id), 'the key is gone from keys.db while the appliance runs');
  await t.rejects(h.vault.keys.messageKey(msg.id), { code: 'VAULT_KEY_NOT_FOUND' });
});

t.test('when keys.db keeps failing after a group destroy committed then retries back off and the first that succeeds destroys the keys', async (t) => {
  const h = await harness(t, { config: { lateDestructionRetryMs: 20 } });
  const { m, logs } = await withFailingKeys(t, h, 3);
  const owner = await h.user('tk-owner');
  const g = await m.createGroup(owner.principal, { name: 'tk-group', label: 'restricted' });
  for (let i = 0; i < 3; i++) await m.send(owner.principal, await h.compose(owner, g.id, `m${i}`));
  await m.flush();
  await m.deleteGroup(owner.principal, g.name, await h.deleteRequest(owner, `conversation:${g.id}`));
  t.ok(await logged(logs, 'messaging.late-destruction-done'), 'finished after the failures');
  const retries = logs.filter((l) => l.event === 'messaging.late-destruction-failed');
  t.equal(retries.length, 2, 'the deletion failed once, then two retries failed');
  t.same(retries.map((l) => l.ms), [40, 80], 'each failure doubles the wait');
  t.notOk(await h.vault.keys.hasConversationKey(g.id), 'the conversation key is gone');
  t.same(await h.vault.keys.db.all('SELECT msg_id FROM message_keys WHERE conv_id = ?', [g.id]), [], 'and every message key under it');
});

t.test('when a deletion left its key and messaging closes before the retry then close destroys it', async (t) => {
  const h = await harness(t, { config: { lateDestructionRetryMs: 60_000 } });
  const { m, logs } = await withFailingKeys(t, h, 1);
  const a = await h.user('tc-alice');
  const b = await h.user('tc-bob');
  const conv = await m.direct(a.principal, b.login);
  const msg = await h.compose(a, conv.id, 'to be deleted');
  await m.send(a.principal, msg);
  await m.deleteMessage(a.principal, msg.id, await h.deleteRequest(a, `message:${msg.id}`));
  t.ok((await h.vault.keys.locate([msg.id])).has(msg.id), 'control: the key is still there before close');
  await m.close();
  t.notOk((await h.vault.keys.locate([msg.id])).has(msg.id), 'close made the last attempt');
  t.ok(logs.some((l) => l.event === 'messaging.late-destruction-done'));
});

t.test('when the tombstone cannot be appended then nothing is deleted', async (t) => {
  const h = await harness(t);
  const { a, b, conv } = await h.direct('tb-alice', 'tb-bob');
  const msg = await h.compose(a, conv.id, 'stays');
  await h.messaging.send(a.principal, msg);
  await h.vault.db.exec(`CREATE TEMP TRIGGER tb_boom BEFORE INSERT ON main.audit_log WHEN NEW.type = 'deletion' BEGIN SELECT RAISE(ABORT, 'tb-boom'); END`);
  await t.rejects(h.messaging.deleteMessage(a.principal, msg.id, await h.deleteRequest(a, `message:${msg.id}`)), { message: /tb-boom/ });
  const got = await h.messaging.message(b.principal, msg.id);
  t.equal(Buffer.from(got.body ?? '', 'base64').toString(), 'stays', 'the rows rolled back with the tombstone: the message still reads');
  t.same(await tombstones(h), []);

  await h.vault.db.exec('DROP TRIGGER temp.tb_boom');
  const ts = await h.messaging.deleteMessage(a.principal, msg.id, await h.deleteRequest(a, `message:${msg.id}`));
  t.equal((await tombstones(h))[0]?.seq, ts.audit?.index, 'the retry deletes it, with its tombstone');
});

/** Two groups with 1-day retention, one old message each, and the clock two days on. */
async function twoRetainedGroups(h: Harness, m: Messaging, tag: string) {
  const owner = await h.user(`${tag}-owner`);
  const groups = [];
  for (const n of ['one', 'two']) {
    const g = await m.createGroup(owner.principal, { name: `${tag}-${n}`, label: 'restricted', retentionDays: 1 });
    const msg = await h.compose(owner, g.id, `old in ${n}`);
    await m.send(owner.principal, msg);
    groups.push({ id: g.id, msg: msg.id });
  }
  await m.flush();
  h.clock.now = new Date(h.clock.now.getTime() + 2 * 86_400_000);
  // The sweep visits groups in this order (its own query).
  const order = await h.vault.db.all<{ id: string }>(
    `SELECT id FROM msg_conversations WHERE kind = 'group' AND retention_days IS NOT NULL`,
  );
  groups.sort((x, y) => order.findIndex((r) => r.id === x.id) - order.findIndex((r) => r.id === y.id));
  return { owner, first: groups[0]!, second: groups[1]! };
}

t.test('when keys.db fails after the first group of a retention sweep committed then the other groups are still swept, each with its tombstone', async (t) => {
  const h = await harness(t);
  const { m, logs } = await withFailingKeys(t, h, 1);
  const { owner, first, second } = await twoRetainedGroups(h, m, 'rk');
  const r = await m.sweep();
  t.equal(r.retention, 2, 'both groups swept');
  for (const g of [first, second]) await t.rejects(m.message(owner.principal, g.msg), { code: 'MESSAGE_NOT_FOUND' });
  const hash = await keyedHashFromKeyring(h.vault.keyring);
  const subjects = (await tombstones(h)).filter((e) => e.actor === 'system:retention').map((e) => e.subject);
  t.same(subjects, [await hash(`conversation:${first.id}`), await hash(`conversation:${second.id}`)]);
  t.match(logs, [{ event: 'messaging.deletion-after-commit-failed', errorCode: 'VAULT_FULL' }]);
  await t.rejects(h.vault.keys.messageKey(second.msg), { code: 'VAULT_KEY_NOT_FOUND' }, "the second group's key went");
});

t.test('when the first group of a retention sweep fails then it is left whole and the other groups are still swept', async (t) => {
  const h = await harness(t);
  const logs: LogLine[] = [];
  await h.messaging.close();
  const m = await h.restart({ log: (event, fields) => logs.push({ event, ...fields }) });
  t.teardown(() => m.close());
  const { owner, first, second } = await twoRetainedGroups(h, m, 'rf');
  await h.vault.db.exec(
    `CREATE TEMP TRIGGER rf_boom BEFORE DELETE ON main.msg_messages WHEN OLD.conversation = '${first.id}' BEGIN SELECT RAISE(ABORT, 'rf-boom'); END`,
  );
  const r = await m.sweep();
  t.equal(r.retention, 1);
  t.ok(await m.message(owner.principal, first.msg), 'the failed group rolled back: its message still reads');
  await t.rejects(m.message(owner.principal, second.msg), { code: 'MESSAGE_NOT_FOUND' }, 'the next group was swept');
  const hash = await keyedHashFromKeyring(h.vault.keyring);
  t.same(
    (await tombstones(h)).map((e) => e.subject),
    [await hash(`conversation:${second.id}`)],
    'only the swept group has a tombstone',
  );
  t.match(logs, [{ event: 'messaging.retention-failed', errorMessage: /rf-boom/ }]);
});
