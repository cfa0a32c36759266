/**
 * The forensic proof of irreversible deletion (issue 4): write messages and a file with unique
 * markers, note their ciphertexts and wrapped keys as stored, take a backup, delete, close the
 * appliance, then scan every file under the data directory and the backup. Negative controls
 * find the ciphertexts before the deletion, so the scan can fail.
 */
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Db, unlockVault } from '../../../server/vault/index.js';
import { scanTree } from '../../helpers/forensics.js';
import { harness, sha384b64, type Harness, type User } from './harness.js';
import { streamOf } from '../../helpers/streams.js';

const enc = new TextEncoder();

interface Stored {
  ciphertexts: Uint8Array[];
  wrapped: Uint8Array[];
  keyIds: string[];
}

/** Raw stored bytes of the given messages (and their files) and of the keys that open them. */
async function stored(h: Harness, ids: string[], convId?: string): Promise<Stored> {
  const ciphertexts: Uint8Array[] = [];
  const wrapped: Uint8Array[] = [];
  const keyIds: string[] = [];
  for (const id of ids) {
    const r = await h.vault.db.get<{ sealed: Uint8Array }>('SELECT sealed FROM msg_messages WHERE id = ?', [id]);
    if (!r) throw new Error(`no row ${id}`);
    ciphertexts.push(r.sealed);
    keyIds.push(id);
    for (const f of await h.vault.db.all<{ id: string }>('SELECT id FROM msg_files WHERE message = ?', [id])) {
      keyIds.push(`file:${f.id}`);
      for (const c of await h.vault.db.all<{ data: Uint8Array }>('SELECT data FROM msg_file_chunks WHERE file = ?', [f.id])) {
        ciphertexts.push(c.data);
      }
    }
  }
  for (const k of keyIds) {
    const w = await h.vault.keys.db.get<{ wrapped: Uint8Array }>('SELECT wrapped FROM message_keys WHERE msg_id = ?', [k]);
    if (!w) throw new Error(`no key ${k}`);
    wrapped.push(w.wrapped);
  }
  if (convId) {
    const ck = await h.vault.keys.db.get<{ wrapped: Uint8Array }>('SELECT wrapped FROM conversation_keys WHERE conv_id = ?', [convId]);
    if (!ck) throw new Error('no conversation key');
    wrapped.push(ck.wrapped);
  }
  return { ciphertexts, wrapped, keyIds };
}

/** Sends a message with a marker body and a marker file attached. */
async function sendWithFile(h: Harness, u: User, conv: string, marker: string, label: 'restricted' | 'secret' = 'restricted') {
  const content = enc.encode(`file content ${marker}-FILE `.repeat(5000));
  const up = await h.messaging.upload(u.principal, conv, streamOf(content), content.length);
  const msg = await h.compose(u, conv, `body ${marker}-BODY`, {
    label,
    attachments: [{ id: up.fileId, name: `${marker}-NAME.txt`, sha384: await sha384b64(content), size: content.length }],
  });
  await h.messaging.send(u.principal, msg);
  return msg.id;
}

async function sendPlain(h: Harness, u: User, conv: string, marker: string) {
  const msg = await h.compose(u, conv, `body ${marker}-BODY`);
  await h.messaging.send(u.principal, msg);
  return msg.id;
}

/**
 * The common proof: before deletion the ciphertexts are found (control), markers never; after
 * deletion and close, nothing of it in the data dir; the backup holds no marker and no wrapped
 * key, and the reopened key store has no key for any of it.
 */
async function prove(
  t: Test,
  h: Harness,
  markers: string[],
  s: Stored,
  del: () => Promise<unknown>,
  opts: { convId?: string; survivor?: { id: string; reader: User } } = {},
): Promise<void> {
  const backupDir = join(h.dir, '..', 'backup');
  const before = scanTree(h.dir, [...s.ciphertexts, ...s.wrapped]);
  t.ok(before.length > 0, 'control: the stored ciphertexts and wrapped keys are found before deletion');
  t.same(scanTree(h.dir, markers), [], 'plaintext markers are never in any file, even before deletion');
  await h.vault.backupTo(backupDir);
  t.ok(scanTree(backupDir, s.ciphertexts).length > 0, 'control: the backup holds the ciphertexts');

  await del();
  // Right after the call returned, with the appliance still running (live WAL and -shm files).
  t.same(scanTree(h.dir, s.ciphertexts), [], 'live: no ciphertext in any file once the deletion returned');
  t.same(scanTree(h.dir, s.wrapped), [], 'live: no wrapped key in any file once the deletion returned');
  await h.close();

  t.same(scanTree(h.dir, markers), [], 'no marker anywhere under the data dir');
  t.same(scanTree(h.dir, s.ciphertexts), [], 'no ciphertext anywhere under the data dir (db, WAL, shm)');
  t.same(scanTree(h.dir, s.wrapped), [], 'no wrapped key anywhere under the data dir');
  t.same(scanTree(backupDir, markers), [], 'no marker in the earlier backup');
  t.same(scanTree(backupDir, s.wrapped), [], 'no wrapped key in the earlier backup (keys.db is never backed up)');

  // Nothing decrypts: reopen the appliance's vault and ask for every key.
  const vault = await unlockVault({ dir: h.dir, keyFilePath: join(h.dir, '..', 'master.key') });
  try {
    for (const k of s.keyIds) await t.rejects(vault.keys.messageKey(k), { code: 'VAULT_KEY_NOT_FOUND' }, `key ${k} is gone`);
    if (opts.convId) t.notOk(await vault.keys.hasConversationKey(opts.convId), 'the conversation key is gone');
    // The backup's rows still exist but nothing opens them.
    const copy = await Db.open(join(backupDir, 'vault.db'), { readonly: true });
    const rows = await copy.all<{ id: string }>('SELECT id FROM msg_messages');
    await copy.close();
    const gone = rows.filter((r) => s.keyIds.includes(r.id));
    t.ok(gone.length > 0, 'control: the backup still lists the deleted messages');
    for (const r of gone) await t.rejects(vault.keys.messageKey(r.id), { code: 'VAULT_KEY_NOT_FOUND' });
    if (opts.survivor) {
      await t.resolves(vault.keys.messageKey(opts.survivor.id), 'a neighbouring message is still readable');
    }
  } finally {
    await vault.close();
  }
}

// Each proof twice: messages sealed on the main thread (an injected checker) and sealed in a
// check worker, as the appliance does (check-pool.ts).
for (const workers of [false, true]) {
  const mode = workers ? ' (sealed in a check worker)' : '';
  t.test(`when one message is deleted then nothing of it survives and its neighbour does${mode}`, async (t) => {
    const h = await harness(t, { workers });
    const a = await h.user('f1-alice');
    const b = await h.user('f1-bob');
    const conv = await h.messaging.direct(a.principal, b.login);
    const target = await sendWithFile(h, a, conv.id, 'ZQX-ONE-7741');
    const survivor = await sendPlain(h, a, conv.id, 'KEEP-ONE-1188');
    const s = await stored(h, [target]);
    const req = await h.deleteRequest(a, `message:${target}`);
    await prove(t, h, ['ZQX-ONE-7741'], s, async () => {
      const ts = await h.messaging.deleteMessage(a.principal, target, req);
      t.equal(ts.count, 1);
      t.equal(ts.deletedBy, a.login);
      t.notMatch(ts.target, target, 'tombstone target is a keyed hash, not the id');
      await t.rejects(h.messaging.message(b.principal, target), { code: 'MESSAGE_NOT_FOUND' });
      const left = await h.messaging.message(b.principal, survivor);
      t.match(Buffer.from(left.body!, 'base64').toString(), /KEEP-ONE-1188/);
    }, { survivor: { id: survivor, reader: b } });
  });

  t.test(`when a direct conversation is deleted then nothing of it survives${mode}`, async (t) => {
    const h = await harness(t, { workers });
    const a = await h.user('f2-alice');
    const b = await h.user('f2-bob');
    const conv = await h.messaging.direct(a.principal, b.login);
    const ids = [
      await sendWithFile(h, a, conv.id, 'ZQX-DIRECT-2231'),
      await sendPlain(h, b, conv.id, 'ZQX-DIRECT-REPLY-5520'),
    ];
    const s = await stored(h, ids, conv.id);
    const req = await h.deleteRequest(b, `conversation:${conv.id}`);
    await prove(t, h, ['ZQX-DIRECT-2231', 'ZQX-DIRECT-REPLY-5520'], s, async () => {
      const ts = await h.messaging.deleteConversation(b.principal, conv.id, req);
      t.equal(ts.count, 2);
      await t.rejects(h.messaging.history(a.principal, conv.id, {}), { code: 'CONVERSATION_NOT_FOUND' });
    }, { convId: conv.id });
  });

  t.test(`when a whole group is destroyed then nothing of it survives${mode}`, async (t) => {
    const h = await harness(t, { workers });
    const owner = await h.user('f3-owner');
    const member = await h.user('f3-member');
    const g = await h.messaging.createGroup(owner.principal, { name: 'f3-group', label: 'secret' });
    await h.messaging.addMember(owner.principal, g.name, { login: member.login });
    const ids = [
      await sendWithFile(h, owner, g.id, 'ZQX-GROUP-9912', 'secret'),
      await sendPlain(h, member, g.id, 'ZQX-GROUP-REPLY-3307'),
    ];
    const s = await stored(h, ids, g.id);
    const req = await h.deleteRequest(owner, `conversation:${g.id}`);
    await prove(t, h, ['ZQX-GROUP-9912', 'ZQX-GROUP-REPLY-3307'], s, async () => {
      await t.rejects(
        h.messaging.deleteGroup(member.principal, g.name, await h.deleteRequest(member, `conversation:${g.id}`)),
        { code: 'FORBIDDEN' },
        'a plain member may not destroy the group',
      );
      const ts = await h.messaging.deleteGroup(owner.principal, g.name, req);
      t.equal(ts.count, 2);
      await t.rejects(h.messaging.group(owner.principal, g.name), { code: 'GROUP_NOT_FOUND' });
      const entries = await h.audit.entries(0, 10_000);
      const tomb = entries.find((e) => e.type === 'deletion');
      t.ok(tomb, 'a tombstone is in the audit trail');
      t.equal(tomb?.subject, ts.target);
      t.ok(typeof tomb?.data?.statementSignature === 'string', 'with the deleter signature');
    }, { convId: g.id });
  });
}
