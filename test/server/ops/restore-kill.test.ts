/**
 * restore --without-keys (a new machine, keys.db lost) killed outright (SIGKILL) after its swap,
 * in a real child process running the real command (fixtures/restore-kill-child.ts freezes it
 * inside the fs call that marks the step). The module promises that from the swap on the restore
 * finishes; a kill -9 or a power cut cannot be finished by the process itself, so the same command
 * run again must finish it (or, the restore having been complete but for its sweep of the new,
 * empty keys.db, refuse to replace that keys.db) — and then the appliance opens.
 *
 * Review finding: killed once keys.db had been created but before the public files were written
 * from the manifest, the directory had a keys.db and no appliance.json: `start` could not read it,
 * the same command was refused (RESTORE_ARGUMENT, keys.db exists) and so was the command without
 * --without-keys (OPS_DATA_MISSING, no appliance): no way out short of deleting files by hand.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { tmpDir } from '../../helpers/tmp.js';
import { live, reopen, runOps } from './fixture.js';
import { killAtStep } from './helpers/kill-at-step.js';

const CHILD = fileURLToPath(new URL('./fixtures/restore-kill-child.ts', import.meta.url));

/** Runs `sigil-server <argv>` in the child until it reaches `step`, then SIGKILLs it. */
const restoreAndKill = (step: string, argv: string[]) => killAtStep(CHILD, step, [step, '--', ...argv]);

t.test('when restore --without-keys is killed after its swap then the same command run again finishes it and the appliance opens', async (t) => {
  const L = await live(t);
  const { h, alice, dataDir, keyFile } = L;
  const out = join(tmpDir(t, 'sigil-rkill-'), 'dr.sbk');
  t.equal((await runOps(['backup', '--data', dataDir, '--out', out])).code, 0);
  await L.stopKeepingData();

  for (const step of ['swapped', 'keys-opened', 'appliance-json']) {
    await t.test(step, async (t) => {
      const fresh = join(tmpDir(t, 'sigil-rkill-new-'), 'data');
      const argv = ['restore', '--data', fresh, '--in', out, '--yes', '--without-keys', '--master-key-file', keyFile];
      const killed = await restoreAndKill(step, argv);
      t.equal(killed.signal, 'SIGKILL', `killed at ${step}: ${killed.stdout} ${killed.stderr}`);

      const again = await runOps(argv);
      const complete = again.error?.code === 'RESTORE_ARGUMENT' && existsSync(join(fresh, 'appliance.json'));
      t.ok(again.code === 0 || complete, `the same command finishes the restore: ${again.error?.code} ${again.error?.message}`);
      t.ok(existsSync(join(fresh, 'appliance.json')), 'appliance.json is written');
      const chk = await runOps(['check', '--data', fresh, '--master-key-file', keyFile, '--json']);
      t.equal(chk.code, 0, chk.stdout);
      const app = await reopen(fresh, { keyFilePath: keyFile }, h.app.caPem);
      t.teardown(() => app.close());
      t.equal((await (await app.as(alice))('/v1/conversations/direct', { body: { peer: L.bob.login } })).status, 200, 'the restored appliance serves');
    });
  }
});
