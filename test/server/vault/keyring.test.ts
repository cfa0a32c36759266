import t, { type Test } from 'tap';
import { join } from 'node:path';
import { Db, Keyring, MasterKey, open, seal } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

const mkOf = (b: number) => MasterKey.fromBytes(new Uint8Array(32).fill(b));

async function setup(t: Test) {
  const db = await Db.open(join(tmpDir(t), 'vault.db'));
  t.teardown(() => db.close());
  const mk = await mkOf(1);
  return { db, mk, ring: await Keyring.open(db, mk, { now: () => new Date('2026-01-02T03:04:05Z') }) };
}

t.test('when ensureKey is called twice, even concurrently, then both return the same stored key', async (t) => {
  const { db, mk, ring } = await setup(t);
  const [a, b] = await Promise.all([ring.ensureKey('audit-hmac'), ring.ensureKey('audit-hmac')]);
  const sealed = await seal(a, new Uint8Array([1, 2, 3]), 'x');
  t.same(await open(b, sealed, 'x'), new Uint8Array([1, 2, 3]));
  const fresh = await Keyring.open(db, mk);
  t.same(await open(await fresh.getKey('audit-hmac'), sealed, 'x'), new Uint8Array([1, 2, 3]), 'persisted');
  t.same(await db.all('SELECT name, kind, created_at FROM keyring'), [{ name: 'audit-hmac', kind: 'key', created_at: '2026-01-02T03:04:05.000Z' }]);
});

t.test('when a secret is stored then it reads back, is sealed at rest, and is not replaced silently', async (t) => {
  const { db, ring } = await setup(t);
  const secret = new TextEncoder().encode('pkcs8-passphrase-XYZZY');
  await ring.putSecret('ca-secrets', secret);
  t.same(await ring.getSecret('ca-secrets'), secret);
  const row = await db.get<{ sealed: Uint8Array }>('SELECT sealed FROM keyring');
  t.equal(Buffer.from(row!.sealed).indexOf('XYZZY'), -1, 'not in clear');
  await t.rejects(ring.putSecret('ca-secrets', new Uint8Array([1])), { code: 'VAULT_KEY_EXISTS' });
  await ring.putSecret('ca-secrets', new Uint8Array([1]), { replace: true });
  t.same(await ring.getSecret('ca-secrets'), new Uint8Array([1]));
  t.equal(await ring.hasSecret('ca-secrets'), true);
  t.equal(await ring.deleteSecret('ca-secrets'), true);
  t.equal(await ring.hasSecret('ca-secrets'), false);
});

t.test('when a key or secret does not exist then VAULT_KEY_NOT_FOUND', async (t) => {
  const { ring } = await setup(t);
  await t.rejects(ring.getKey('backup'), { code: 'VAULT_KEY_NOT_FOUND' });
  await t.rejects(ring.getSecret('backup'), { code: 'VAULT_KEY_NOT_FOUND' });
});

t.test('when a sealed secret is copied under another name then it does not open', async (t) => {
  const { db, ring } = await setup(t);
  await ring.putSecret('a', new Uint8Array([9]));
  await db.run("INSERT INTO keyring (name, kind, sealed, created_at) SELECT 'b', kind, sealed, created_at FROM keyring WHERE name = 'a'");
  await t.rejects(ring.getSecret('b'), { code: 'VAULT_DECRYPT_FAILED' });
});

t.test('when a name is not a plain identifier then MASTER_KEY_ARGUMENT', async (t) => {
  const { ring } = await setup(t);
  await t.rejects(ring.putSecret('../etc', new Uint8Array([1])), { code: 'MASTER_KEY_ARGUMENT' });
});

t.test('when rewrapAll runs then the new master key opens everything and the old one nothing', async (t) => {
  const { db, ring } = await setup(t);
  const key = await ring.ensureKey('backup');
  await ring.putSecret('s', new Uint8Array([4, 2]));
  const sealed = await seal(key, new Uint8Array([7]), 'x');
  const next = await mkOf(2);
  t.equal(await ring.rewrapAll(next), 2);
  const viaNew = await Keyring.open(db, next);
  t.same(await viaNew.getSecret('s'), new Uint8Array([4, 2]));
  t.same(await open(await viaNew.getKey('backup'), sealed, 'x'), new Uint8Array([7]), 'the data key itself is unchanged');
  const viaOld = await Keyring.open(db, await mkOf(1));
  await t.rejects(viaOld.getSecret('s'), { code: 'VAULT_DECRYPT_FAILED' });
});

t.test('when several parts ask for a shared secret at once then it is made once and all get the same; an existing one is kept', async (t) => {
  const { ring } = await setup(t);
  const got = await Promise.all([ring.ensureSecret('audit-hmac'), ring.ensureSecret('audit-hmac'), ring.ensureSecret('audit-hmac')]);
  t.equal(got[0]!.length, 32);
  t.same(got[1], got[0]);
  t.same(got[2], got[0]);
  t.same(await ring.getSecret('audit-hmac'), got[0], 'stored');
  await ring.putSecret('kept', new Uint8Array([7, 7]));
  t.same(await ring.ensureSecret('kept'), new Uint8Array([7, 7]), 'an existing secret is not replaced');
});
