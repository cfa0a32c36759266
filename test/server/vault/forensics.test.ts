/**
 * Irreversible deletion, proven on the files themselves: after a conversation (or one message)
 * is destroyed, a byte scan of every file in the data directory finds none of its ciphertext
 * and none of its wrapped keys, and a backup of vault.db taken before the deletion holds
 * ciphertext that nothing can open any more.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Db, initVault, open, seal, unlockVault, type Vault } from '../../../server/vault/index.js';
import { listFiles, scanTree } from '../../helpers/forensics.js';
import { tmpDir } from '../../helpers/tmp.js';

const enc = new TextEncoder();

interface Fixture {
  data: string;
  keyFile: string;
  vault: Vault;
  /** Per message: its marker text, stored ciphertext, wrapped DEK. */
  msgs: Map<string, { conv: string; marker: string; ct: Uint8Array; wrapped: Uint8Array }>;
  wrappedCk: Map<string, Uint8Array>;
}

/** Two conversations of 12 messages each; some bodies span SQLite overflow pages. */
async function fixture(t: Test): Promise<Fixture> {
  const data = join(tmpDir(t), 'data');
  const keyFile = join(tmpDir(t), 'master.key'); // on "removable media", outside the data dir
  const vault = await initVault({ dir: data, keyFilePath: keyFile });
  t.teardown(() => (vault.db.closed ? undefined : vault.close()));
  await vault.db.exec('CREATE TABLE messages (id TEXT PRIMARY KEY, conv_id TEXT NOT NULL, body BLOB NOT NULL) STRICT');
  const msgs: Fixture['msgs'] = new Map();
  for (const conv of ['alpha', 'bravo']) {
    await vault.keys.createConversationKey(conv);
    const ids = Array.from({ length: 12 }, (_, i) => `${conv}-${i}`);
    const keys = await vault.keys.createMessageKeys(conv, ids); // keys committed before rows
    await vault.db.transaction(async (tx) => {
      for (const id of ids) {
        const marker = `MARKER-${id}-${randomBytes(8).toString('hex')}`;
        const body = id.endsWith('-3') ? `${marker} ${'long body '.repeat(1200)}` : marker;
        const ct = await seal(keys.get(id)!, enc.encode(body), `body:${id}`);
        await tx.run('INSERT INTO messages (id, conv_id, body) VALUES (?, ?, ?)', [id, conv, ct]);
        msgs.set(id, { conv, marker, ct, wrapped: new Uint8Array() });
      }
    });
  }
  for (const r of await vault.keys.db.all<{ msg_id: string; wrapped: Uint8Array }>('SELECT msg_id, wrapped FROM message_keys')) {
    msgs.get(r.msg_id)!.wrapped = new Uint8Array(r.wrapped);
  }
  const wrappedCk = new Map<string, Uint8Array>();
  for (const r of await vault.keys.db.all<{ conv_id: string; wrapped: Uint8Array }>('SELECT conv_id, wrapped FROM conversation_keys')) {
    wrappedCk.set(r.conv_id, new Uint8Array(r.wrapped));
  }
  return { data, keyFile, vault, msgs, wrappedCk };
}

/**
 * Needles for one message: its first ciphertext fragment and wrapped DEK (always contiguous on
 * disk: the control finds them), then further 16-byte fragments every 500 bytes of the
 * ciphertext (a long body spans overflow pages, so the whole blob is never one run of bytes).
 */
function needlesOf(m: { ct: Uint8Array; wrapped: Uint8Array }): Uint8Array[] {
  const out = [m.ct.subarray(13, 29), m.wrapped, m.wrapped.subarray(13, 29)];
  for (let at = 500; at + 16 <= m.ct.length; at += 500) out.push(m.ct.subarray(at, at + 16));
  return out;
}
const CONTROL = 3; // needlesOf's first three are found whenever the message is stored

t.test('when nothing is deleted yet then the scan finds the ciphertexts and wrapped keys (negative control) but no plaintext', async (t) => {
  const f = await fixture(t);
  const all = [...f.msgs.values()];
  const hits = scanTree(f.data, all.flatMap((m) => needlesOf(m).slice(0, CONTROL)));
  const found = new Set(hits.map((h) => h.needleIndex));
  t.equal(found.size, all.length * CONTROL, 'every ciphertext and wrapped key is found on disk');
  t.ok(hits.some((h) => h.file.endsWith('keys.db') || h.file.endsWith('keys.db-wal')), 'wrapped keys live in keys.db');
  t.same(scanTree(f.data, all.map((m) => m.marker)), [], 'no marker is stored in clear');
  t.same(scanTree(f.data, [...f.wrappedCk.values()]).length > 0, true, 'the wrapped CKs are found');
});

t.test('when a conversation is destroyed then no file holds its ciphertext or keys and a prior backup cannot be opened', async (t) => {
  const f = await fixture(t);
  const backup = tmpDir(t);
  const written = await f.vault.backupTo(backup);
  t.same(listFiles(backup).sort(), [...written].sort());
  t.notOk(listFiles(backup).some((p) => p.includes('keys.db')), 'keys.db is never in a data backup');

  // Deletion in the architecture's order: rows first, then keys, each database checkpointed.
  await f.vault.db.run("DELETE FROM messages WHERE conv_id = 'alpha'");
  await f.vault.db.checkpointTruncate();
  t.same(await f.vault.keys.destroyConversation('alpha'), { messageKeys: 12, conversationKey: true });

  const alpha = [...f.msgs.entries()].filter(([, m]) => m.conv === 'alpha');
  const bravo = [...f.msgs.entries()].filter(([, m]) => m.conv === 'bravo');

  // Before closing: the live files already hold nothing of alpha.
  t.same(scanTree(f.data, [...alpha.flatMap(([, m]) => needlesOf(m)), f.wrappedCk.get('alpha')!]), [], 'live files');
  await f.vault.close();
  const files = listFiles(f.data);
  t.comment(`scanned: ${files.map((p) => p.slice(f.data.length + 1)).join(', ')}`);
  t.same(scanTree(f.data, [...alpha.flatMap(([, m]) => needlesOf(m)), f.wrappedCk.get('alpha')!]), [], 'after close');
  // The positive control in the same scan: bravo is still there.
  const bravoHits = new Set(scanTree(f.data, bravo.map(([, m]) => m.ct.subarray(13, 29))).map((h) => h.needleIndex));
  t.equal(bravoHits.size, bravo.length, 'the other conversation is untouched');

  // The backup taken before the deletion still has alpha's ciphertext: the live keystore cannot open it.
  const live = await unlockVault({ dir: f.data, keyFilePath: f.keyFile });
  t.teardown(() => live.close());
  const old = await Db.open(join(backup, 'vault.db'));
  t.teardown(() => old.close());
  const rows = await old.all<{ id: string; body: Uint8Array }>("SELECT id, body FROM messages WHERE conv_id = 'alpha'");
  t.equal(rows.length, 12, 'the backup holds the deleted ciphertexts');
  for (const r of rows) {
    await t.rejects(live.keys.messageKey(r.id), { code: 'VAULT_KEY_NOT_FOUND' }, `no key for ${r.id}`);
  }
  const b = (await old.get<{ id: string; body: Uint8Array }>("SELECT id, body FROM messages WHERE id = 'bravo-3'"))!;
  t.match(new TextDecoder().decode(await open(await live.keys.messageKey(b.id), b.body, `body:${b.id}`)), /^MARKER-bravo-3-/, 'undeleted messages in the backup still open');
});

t.test('when one message is destroyed then only its ciphertext and DEK disappear', async (t) => {
  const f = await fixture(t);
  const target = 'bravo-3'; // the one with overflow pages
  await f.vault.db.run('DELETE FROM messages WHERE id = ?', [target]);
  await f.vault.db.checkpointTruncate();
  t.equal(await f.vault.keys.destroyMessageKeys([target]), 1);
  await f.vault.close();
  t.same(scanTree(f.data, needlesOf(f.msgs.get(target)!)), [], 'nothing of the destroyed message');
  const neighbours = [...f.msgs.entries()].filter(([id]) => id !== target);
  const found = new Set(scanTree(f.data, neighbours.map(([, m]) => m.wrapped)).map((h) => h.needleIndex));
  t.equal(found.size, neighbours.length, 'every other DEK is still stored');
});
