import t from 'tap';
import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KEYS_DB_FILE, VAULT_DB_FILE, VAULT_KEY_FILE, VAULT_PAGE_SIZE, WAL_AUTOCHECKPOINT_PAGES, WRITER_CACHE_KIB, initVault, open, seal, unlockVault } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

const PASS = 'a long enough passphrase';

t.test('when a vault is initialised then the dir is 0700, every file 0600, and it unlocks again with the passphrase', async (t) => {
  const dir = join(tmpDir(t), 'data');
  mkdirSync(dir);
  chmodSync(dir, 0o755); // too open: initVault tightens it
  const v = await initVault({ dir, passphrase: PASS });
  await v.keys.createConversationKey('c');
  const k = (await v.keys.createMessageKeys('c', ['m'])).get('m')!;
  const sealed = await seal(k, new Uint8Array([1]), 'x');
  await v.keyring.putSecret('s', new Uint8Array([2]));
  t.equal(statSync(dir).mode & 0o777, 0o700);
  for (const f of readdirSync(dir)) t.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  t.ok(readdirSync(dir).includes(VAULT_DB_FILE) && readdirSync(dir).includes(KEYS_DB_FILE) && readdirSync(dir).includes(VAULT_KEY_FILE));
  await v.checkpointAll();
  t.equal(statSync(join(dir, `${VAULT_DB_FILE}-wal`)).size, 0);
  t.equal(statSync(join(dir, `${KEYS_DB_FILE}-wal`)).size, 0);
  await v.close();
  const again = await unlockVault({ dir, passphrase: PASS });
  t.teardown(() => again.close());
  t.same(await open(await again.keys.messageKey('m'), sealed, 'x'), new Uint8Array([1]));
  t.same(await again.keyring.getSecret('s'), new Uint8Array([2]));
  t.same(await again.db.get('PRAGMA page_size'), { page_size: VAULT_PAGE_SIZE }, 'vault.db has the vault page size');
  t.equal(VAULT_PAGE_SIZE, 8192);
  // The writing connections' cache and checkpoint interval (vault.ts says why), on both files.
  for (const [name, db] of [['vault.db', again.db], ['keys.db', again.keys.db]] as const) {
    t.same(await db.get('PRAGMA cache_size'), { cache_size: -WRITER_CACHE_KIB }, `${name}: cache of ${WRITER_CACHE_KIB} KiB`);
    t.same(await db.get('PRAGMA wal_autocheckpoint'), { wal_autocheckpoint: WAL_AUTOCHECKPOINT_PAGES }, `${name}: checkpoint every ${WAL_AUTOCHECKPOINT_PAGES} pages`);
  }
});

t.test('when a vault is initialised twice in one directory then MASTER_KEY_EXISTS', async (t) => {
  const dir = tmpDir(t);
  const v = await initVault({ dir, keyFilePath: join(tmpDir(t), 'k') });
  t.teardown(() => v.close());
  await t.rejects(initVault({ dir, passphrase: PASS }), { code: 'MASTER_KEY_EXISTS' });
});

t.test('when the vault is unlocked with the wrong passphrase then MASTER_KEY_WRONG and nothing is opened', async (t) => {
  const dir = tmpDir(t);
  const v = await initVault({ dir, passphrase: PASS });
  await v.close();
  await t.rejects(unlockVault({ dir, passphrase: 'not the passphrase' }), { code: 'MASTER_KEY_WRONG' });
});

t.test('when a data backup is taken then it holds vault.db and vault-key.json, never keys.db', async (t) => {
  const dir = tmpDir(t);
  const v = await initVault({ dir, keyFilePath: join(tmpDir(t), 'k') });
  t.teardown(() => v.close());
  await v.keys.createConversationKey('c');
  const dest = join(tmpDir(t), 'backup');
  const written = await v.backupTo(dest);
  t.same(readdirSync(dest).sort(), [VAULT_DB_FILE, VAULT_KEY_FILE].sort());
  t.equal(written.length, 2);
  t.equal(statSync(dest).mode & 0o777, 0o700);
});

t.test('when the master key is rotated from a passphrase to a key file then only the new secret opens every key', async (t) => {
  const dir = tmpDir(t);
  const v = await initVault({ dir, passphrase: PASS });
  await v.keys.createConversationKey('c');
  const k = (await v.keys.createMessageKeys('c', ['m'])).get('m')!;
  const sealed = await seal(k, new Uint8Array([5]), 'x');
  await v.keyring.putSecret('s', new Uint8Array([6]));
  await v.keyring.ensureKey('audit-hmac');
  const keyFilePath = join(tmpDir(t), 'new.key');
  t.same(await v.rotateMasterKey({ keyFilePath }), { keyring: 2, conversationKeys: 1 });
  t.equal(v.rotationPending, false);
  t.same(await v.keyring.getSecret('s'), new Uint8Array([6]), 'the open vault keeps working');
  await v.close();
  await t.rejects(unlockVault({ dir, passphrase: PASS }), { code: 'MASTER_KEY_ARGUMENT' }, 'the vault is now a key-file vault');
  const again = await unlockVault({ dir, keyFilePath });
  t.teardown(() => again.close());
  t.same(await open(await again.keys.messageKey('m'), sealed, 'x'), new Uint8Array([5]));
  t.same(await again.keyring.getSecret('s'), new Uint8Array([6]));
});

t.test('when a rotation is interrupted after the keyring then the vault says so and running it again completes it', async (t) => {
  const dir = tmpDir(t);
  const v = await initVault({ dir, passphrase: PASS });
  await v.keys.createConversationKey('c');
  const k = (await v.keys.createMessageKeys('c', ['m'])).get('m')!;
  const sealed = await seal(k, new Uint8Array([8]), 'x');
  await v.keyring.putSecret('s', new Uint8Array([9]));
  // Simulate the crash: the new vault-key.next.json is written and the keyring re-wrapped, keys.db not yet.
  const { prepareMasterKey, writeVaultKeyJson, VAULT_KEY_NEXT_FILE } = await import('../../../server/vault/index.js');
  const NEW = 'the brand new passphrase';
  const prepared = await prepareMasterKey({ passphrase: NEW });
  writeVaultKeyJson(join(dir, VAULT_KEY_NEXT_FILE), prepared.config);
  await v.keyring.rewrapAll(prepared.masterKey);
  await v.close();

  const old = await unlockVault({ dir, passphrase: PASS });
  t.equal(old.rotationPending, true);
  await t.rejects(old.keyring.getSecret('s'), { code: 'VAULT_DECRYPT_FAILED' }, 'half-rotated keyring');
  await t.rejects(old.rotateMasterKey({ passphrase: 'some other passphrase' }), { code: 'MASTER_KEY_WRONG' });
  t.same(await old.rotateMasterKey({ passphrase: NEW }), { keyring: 0, conversationKeys: 1 }, 'resumed where it stopped');
  t.equal(old.rotationPending, false);
  await old.close();
  const fresh = await unlockVault({ dir, passphrase: NEW });
  t.teardown(() => fresh.close());
  t.same(await fresh.keyring.getSecret('s'), new Uint8Array([9]));
  t.same(await open(await fresh.keys.messageKey('m'), sealed, 'x'), new Uint8Array([8]));
});
