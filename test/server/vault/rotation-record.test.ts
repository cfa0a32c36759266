/**
 * The record a committed master-key rotation keeps of the key it replaced (vault-key.prev.json,
 * server/vault/rotation-record.ts), at the vault's level: the caller's clean-up after the commit
 * runs with it and can be run again until it succeeds; a refused secret that a rotation explains
 * says so. The kill -9 at each step of the real command is test/server/ops/rotate-kill.test.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { initVault, readVaultKeyJson, unlockVault, VAULT_KEY_FILE, type VaultKeyJson } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

const PASS = 'a long enough passphrase';
const PREV = 'vault-key.prev.json';

t.test('when the clean-up after a rotation commit fails then the new key opens the vault, the record of the old key stays, and finishRotation runs the clean-up again and removes it', async (t) => {
  const dir = tmpDir(t);
  const v = await initVault({ dir, passphrase: PASS });
  await v.keyring.putSecret('s', new Uint8Array([7]));
  const before = readFileSync(join(dir, VAULT_KEY_FILE), 'utf8');
  const keyFilePath = join(tmpDir(t), 'new.key');

  const seen: VaultKeyJson[] = [];
  await t.rejects(
    v.rotateMasterKey(
      { keyFilePath },
      {
        async afterCommit(replaced) {
          seen.push(replaced);
          t.ok(existsSync(join(dir, PREV)), 'the record is on disk while the clean-up runs');
          throw Object.assign(new Error('EIO: injected by the test'), { code: 'EIO' });
        },
      },
    ),
    { code: 'EIO' },
  );
  t.same(seen, [JSON.parse(before)], 'the clean-up is given the vault-key.json the rotation replaced');
  t.same(await v.keyring.getSecret('s'), new Uint8Array([7]), 'the open vault works under the committed key');
  await v.close();
  t.equal(readFileSync(join(dir, PREV), 'utf8'), before, 'the record is the old vault-key.json');
  t.equal(readVaultKeyJson(dir).kind, 'keyfile', 'committed: vault-key.json names the new key');

  await t.rejects(unlockVault({ dir, passphrase: PASS }), {
    code: 'MASTER_KEY_WRONG',
    message: /master key this vault had before its rotation.*committed/,
  });
  const after = await unlockVault({ dir, keyFilePath });
  t.teardown(() => after.close());
  t.equal(after.rotationPending, false, 'nothing is pending: the vault serves with the new key');
  t.equal(after.rotationCleanupPending, true, 'but the committed rotation\'s clean-up is unfinished');
  // A caller that refuses to finish (ops: the secret it holds is not the replaced key) throws: the record stays.
  await t.rejects(
    after.finishRotation(async () => {
      throw Object.assign(new Error('not the replaced key'), { code: 'MASTER_KEY_WRONG' });
    }),
    { code: 'MASTER_KEY_WRONG' },
  );
  t.equal(readFileSync(join(dir, PREV), 'utf8'), before, 'a refused finish keeps the record as it was');
  t.equal(after.rotationCleanupPending, true);
  let ran = 0;
  t.equal(await after.finishRotation(async (replaced) => void (ran += replaced.kind === 'passphrase' ? 1 : 100)), true);
  t.equal(ran, 1, 'the clean-up ran with the old description');
  t.same(readdirSync(dir).filter((f) => f.startsWith('vault-key.')), [VAULT_KEY_FILE], 'the record is gone');
  t.equal(after.rotationCleanupPending, false);
  t.equal(await after.finishRotation(async () => void (ran += 1)), false, 'nothing left to finish');
  t.equal(ran, 1);
  await t.rejects(unlockVault({ dir, passphrase: PASS }), { code: 'MASTER_KEY_ARGUMENT' }, 'the plain refusal once the rotation is over');
});

t.test('when a rotation runs without an afterCommit hook then it leaves no record', async (t) => {
  const dir = tmpDir(t);
  const v = await initVault({ dir, passphrase: PASS });
  t.teardown(() => v.close());
  await v.rotateMasterKey({ passphrase: 'another long passphrase' });
  t.same(readdirSync(dir).filter((f) => f.startsWith('vault-key.')), [VAULT_KEY_FILE]);
});
