import t from 'tap';
import { generateDataKey, open, seal, SEAL_OVERHEAD, VaultError } from '../../../server/vault/index.js';

const enc = new TextEncoder();

t.test('when a plaintext is sealed then it opens with the same key and AAD, in the documented layout', async (t) => {
  const key = await generateDataKey();
  const pt = enc.encode('orders for tomorrow');
  const iv = new Uint8Array(12).fill(7);
  const sealed = await seal(key, pt, 'body:m1', () => iv.slice());
  t.equal(sealed.length, pt.length + SEAL_OVERHEAD);
  t.equal(sealed[0], 1, 'version byte');
  t.same([...sealed.subarray(1, 13)], [...iv], 'IV follows the version');
  t.same(await open(key, sealed, 'body:m1'), pt);
  const again = await seal(key, pt, 'body:m1');
  t.not(Buffer.from(again).toString('hex'), Buffer.from(await seal(key, pt, 'body:m1')).toString('hex'), 'random IVs differ');
});

t.test('when any byte of a sealed blob is flipped then VAULT_DECRYPT_FAILED', async (t) => {
  const key = await generateDataKey();
  const sealed = await seal(key, enc.encode('x'.repeat(40)), 'aad');
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i]! ^= 0x01;
    await t.rejects(open(key, bad, 'aad'), { code: 'VAULT_DECRYPT_FAILED' }, `byte ${i}`);
  }
});

t.test('when the AAD or key differs, or the blob is truncated, then VAULT_DECRYPT_FAILED with the cause kept', async (t) => {
  const key = await generateDataKey();
  const other = await generateDataKey();
  const sealed = await seal(key, enc.encode('secret'), 'dek:m1');
  // One at a time: both made up front, the second could reject while the first is awaited, with
  // no handler yet (an unhandled rejection that failed CI once).
  for (const attempt of [() => open(key, sealed, 'dek:m2'), () => open(other, sealed, 'dek:m1')]) {
    try {
      await attempt();
      t.fail('opened');
    } catch (err) {
      t.type(err, VaultError);
      t.equal((err as VaultError).code, 'VAULT_DECRYPT_FAILED');
      t.ok((err as Error).cause, 'WebCrypto error kept as cause');
    }
  }
  await t.rejects(open(key, sealed.subarray(0, 20), 'dek:m1'), { code: 'VAULT_DECRYPT_FAILED', message: /too short/ });
});
