import t from 'tap';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  MasterKey,
  VAULT_KEY_FILE,
  createMasterKey,
  readVaultKeyJson,
  unlockMasterKey,
} from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

const PASS = 'correct horse battery staple';

/** The same data key wrapped under one MK unwraps under another MK only if they are the same key. */
async function sameKey(a: MasterKey, b: MasterKey): Promise<boolean> {
  const { wrapped } = await a.wrapNewKey('probe');
  return b.unwrapKey(wrapped, 'probe').then(
    () => true,
    () => false,
  );
}

t.test('when a passphrase master key is created then vault-key.json holds argon2id ≥ 64 MiB/t=3/p=1 and no key', async (t) => {
  const dir = tmpDir(t);
  const mk = await createMasterKey({ dir, passphrase: PASS });
  const cfg = readVaultKeyJson(dir);
  t.equal(cfg.kind, 'passphrase');
  if (cfg.kind !== 'passphrase') return;
  t.equal(cfg.kdf.alg, 'argon2id');
  t.ok(cfg.kdf.memoryKiB >= 65536 && cfg.kdf.iterations >= 3 && cfg.kdf.parallelism >= 1);
  t.equal(Buffer.from(cfg.kdf.salt, 'base64').length, 16);
  t.equal(statSync(join(dir, VAULT_KEY_FILE)).mode & 0o777, 0o600);
  const again = await unlockMasterKey({ dir, passphrase: PASS });
  t.ok(await sameKey(mk, again), 'the same passphrase gives the same MK');
});

t.test('when the passphrase is wrong then MASTER_KEY_WRONG', async (t) => {
  const dir = tmpDir(t);
  await createMasterKey({ dir, passphrase: PASS });
  await t.rejects(unlockMasterKey({ dir, passphrase: PASS + '!' }), { code: 'MASTER_KEY_WRONG' });
});

t.test('when a key file master key is created then the file is 32 base64 bytes, mode 0600, and unlocks', async (t) => {
  const dir = tmpDir(t);
  const keyFilePath = join(tmpDir(t), 'master.key');
  const mk = await createMasterKey({ dir, keyFilePath });
  t.equal(statSync(keyFilePath).mode & 0o777, 0o600);
  t.equal(Buffer.from(readFileSync(keyFilePath, 'utf8').trim(), 'base64').length, 32);
  t.equal(readVaultKeyJson(dir).kind, 'keyfile');
  t.notOk(readFileSync(join(dir, VAULT_KEY_FILE), 'utf8').includes(readFileSync(keyFilePath, 'utf8').trim()), 'key not in json');
  t.ok(await sameKey(mk, await unlockMasterKey({ dir, keyFilePath })));
});

t.test('when another key file is presented then MASTER_KEY_WRONG', async (t) => {
  const dir = tmpDir(t);
  const other = tmpDir(t);
  await createMasterKey({ dir, keyFilePath: join(other, 'a.key') });
  await createMasterKey({ dir: other, keyFilePath: join(other, 'b.key') });
  await t.rejects(unlockMasterKey({ dir, keyFilePath: join(other, 'b.key') }), { code: 'MASTER_KEY_WRONG' });
});

t.test('when a vault-key.json or key file already exists then MASTER_KEY_EXISTS', async (t) => {
  const dir = tmpDir(t);
  const kf = join(tmpDir(t), 'k.key');
  await createMasterKey({ dir, keyFilePath: kf });
  await t.rejects(createMasterKey({ dir, passphrase: PASS }), { code: 'MASTER_KEY_EXISTS' });
  await t.rejects(createMasterKey({ dir: tmpDir(t), keyFilePath: kf }), { code: 'MASTER_KEY_EXISTS' });
});

t.test('when the directory holds no vault-key.json then MASTER_KEY_MISSING', async (t) => {
  await t.rejects(unlockMasterKey({ dir: tmpDir(t), passphrase: PASS }), { code: 'MASTER_KEY_MISSING' });
});

t.test('when vault-key.json is damaged or weakened then MASTER_KEY_CONFIG_INVALID', async (t) => {
  const dir = tmpDir(t);
  await createMasterKey({ dir, passphrase: PASS });
  const path = join(dir, VAULT_KEY_FILE);
  const good = JSON.parse(readFileSync(path, 'utf8'));
  writeFileSync(path, JSON.stringify({ ...good, kdf: { ...good.kdf, memoryKiB: 1024 } }));
  await t.rejects(unlockMasterKey({ dir, passphrase: PASS }), { code: 'MASTER_KEY_CONFIG_INVALID', message: /memoryKiB/ });
  writeFileSync(path, '{not json');
  await t.rejects(unlockMasterKey({ dir, passphrase: PASS }), { code: 'MASTER_KEY_CONFIG_INVALID' });
});

t.test('when the key file is malformed, unreadable or group-readable then MASTER_KEY_FILE_INVALID', async (t) => {
  const dir = tmpDir(t);
  const kf = join(tmpDir(t), 'k.key');
  await createMasterKey({ dir, keyFilePath: kf });
  chmodSync(kf, 0o640);
  await t.rejects(unlockMasterKey({ dir, keyFilePath: kf }), { code: 'MASTER_KEY_FILE_INVALID', message: /0600/ });
  chmodSync(kf, 0o600);
  writeFileSync(kf, 'c2hvcnQ=\n');
  await t.rejects(unlockMasterKey({ dir, keyFilePath: kf }), { code: 'MASTER_KEY_FILE_INVALID', message: /32 bytes/ });
  await t.rejects(unlockMasterKey({ dir, keyFilePath: join(dir, 'absent.key') }), { code: 'MASTER_KEY_FILE_INVALID' });
  await t.rejects(createMasterKey({ dir: tmpDir(t), keyFilePath: join(dir, 'no', 'such', 'dir.key') }), {
    code: 'MASTER_KEY_FILE_INVALID',
  });
});

t.test('when neither, both, a short passphrase or the wrong kind is given then MASTER_KEY_ARGUMENT', async (t) => {
  const dir = tmpDir(t);
  await t.rejects(createMasterKey({ dir } as never), { code: 'MASTER_KEY_ARGUMENT' });
  await t.rejects(createMasterKey({ dir, passphrase: PASS, keyFilePath: join(dir, 'k') } as never), { code: 'MASTER_KEY_ARGUMENT' });
  await t.rejects(createMasterKey({ dir, passphrase: 'short' }), { code: 'MASTER_KEY_ARGUMENT', message: /12/ });
  await t.rejects(createMasterKey({ dir, passphrase: PASS, argon2: { memoryKiB: 1024 } }), { code: 'MASTER_KEY_ARGUMENT' });
  await createMasterKey({ dir, passphrase: PASS });
  await t.rejects(unlockMasterKey({ dir, keyFilePath: join(dir, 'k') }), { code: 'MASTER_KEY_ARGUMENT', message: /passphrase/ });
  await t.rejects(MasterKey.fromBytes(new Uint8Array(16)), { code: 'MASTER_KEY_ARGUMENT' });
});

t.test('when a key is wrapped for one purpose then it does not unwrap for another (AAD binding)', async (t) => {
  const mk = await MasterKey.fromBytes(new Uint8Array(32).fill(1));
  const { wrapped } = await mk.wrapNewKey('ck:conv-a');
  await mk.unwrapKey(wrapped, 'ck:conv-a');
  await t.rejects(mk.unwrapKey(wrapped, 'ck:conv-b'), { code: 'VAULT_DECRYPT_FAILED' });
  await t.rejects(mk.unwrapKey(wrapped, 'keyring:key:conv-a'), { code: 'VAULT_DECRYPT_FAILED' });
  await t.rejects(mk.unwrapKey(wrapped.subarray(1), 'ck:conv-a'), { code: 'VAULT_DECRYPT_FAILED' });
});
