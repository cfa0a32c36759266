/**
 * rotate-master-key killed outright (SIGKILL) at each step, in a real child process running the
 * real command (fixtures/rotate-kill-child.ts freezes it inside the syscall that marks the step).
 * Whatever step it dies at, the operator must find one of two ways out, each said in one line:
 * `start` opens the vault with the key that is committed, and the same rotate command run again
 * finishes the job — with `--shred-old-key-file`, the shred too.
 *
 * Review defect 6: killed after the final rename (vault-key.next.json over vault-key.json)
 * but before the command's clean-up ended, the same command answered MASTER_KEY_WRONG for ever
 * (it unlocked with the old secret, which the committed vault-key.json refuses), and the old key
 * file it was told to shred stayed on the operator's media.
 */
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { AuditLog } from '../../../server/audit/index.js';
import { loadConfig, openAppliance, PATHS, type MasterKeySource } from '../../../server/index.js';
import { buildProgram, type MainIo } from '../../../server/main.js';
import { Db } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';
import { live, runOps } from './fixture.js';
import { killAtStep, type Killed } from './helpers/kill-at-step.js';

const CHILD = fileURLToPath(new URL('./fixtures/rotate-kill-child.ts', import.meta.url));

/** Steps before the commit: vault-key.next.json exists, vault-key.json still names the old key. */
const BEFORE_COMMIT = ['next-renamed', 'keys-db-next', 'record-written'] as const;
/** Steps from the final rename on: vault-key.json names the new key. */
const AFTER_COMMIT = ['renamed', 'dir-synced', 'old-key-tried', 'shred-overwritten', 'shred-unlinked', 'before-release'] as const;
/** The steps from the commit on at which the old key file still holds the old key. */
const OLD_KEY_INTACT = new Set<string>(['renamed', 'dir-synced', 'old-key-tried']);


/** Runs `sigil-server <argv>` in the child until it reaches `step`, then SIGKILLs it. */
const rotateAndKill = (step: string, oldKey: string, argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Killed> =>
  killAtStep(CHILD, step, [step, oldKey, '--', ...argv], env);

/** A stopped appliance with a conversation and a message: the template each step copies. */
async function template(t: Test): Promise<string> {
  const L = await live(t);
  const conv = (await L.h.as(L.alice)('/v1/conversations/direct', { body: { peer: L.bob.login } })).body.id as string;
  await L.send(L.alice, conv, 'before the rotation');
  await L.stopKeepingData();
  return L.dataDir;
}

/**
 * A copy of the template, its master key moved to `media/old.key` as an operator keeps it (the
 * new key goes to `media/new.key`), and the command that rotates it, shredding the old file.
 */
function copyOf(t: Test, tpl: string): { dataDir: string; oldKey: string; newKey: string; argv: string[] } {
  const root = tmpDir(t, 'sigil-rotkill-');
  const dataDir = join(root, 'data');
  cpSync(tpl, dataDir, { recursive: true });
  const media = join(root, 'media');
  cpSync(join(dataDir, PATHS.masterKeyFile), join(media, 'old.key'));
  const oldKey = join(media, 'old.key');
  const newKey = join(media, 'new.key');
  const argv = ['rotate-master-key', '--data', dataDir, '--master-key-file', oldKey, '--new-master-key-file', newKey, '--shred-old-key-file'];
  return { dataDir, oldKey, newKey, argv };
}

/** The real `sigil-server start` command, in this process, stopped once it listens: its log lines. */
async function serve(dataDir: string, keyFile: string): Promise<Record<string, unknown>[]> {
  let stderr = '';
  const io: MainIo = { stdout: () => undefined, stderr: (s) => void (stderr += s), env: {}, onSignal: () => undefined };
  let started: { stop: () => Promise<void> } | undefined;
  const done = buildProgram(io, (s) => (started = s)).parseAsync(['start', '--data', dataDir, '--master-key-file', keyFile], { from: 'user' });
  const failed = done.then(() => new Error('start ended before it listened'), (err: unknown) => err);
  const deadline = Date.now() + 30_000;
  while (!started && Date.now() < deadline) {
    const early = await Promise.race([failed, new Promise((r) => setTimeout(r, 50))]);
    if (early) throw early;
  }
  if (!started) throw new Error(`start did not listen: ${stderr}`);
  await started.stop();
  await done;
  return stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** What `sigil-server start` does before it listens: open the appliance with a master key. */
async function start(dataDir: string, masterKey: MasterKeySource): Promise<void> {
  const config = await loadConfig(join(dataDir, PATHS.config));
  const appliance = await openAppliance({ dataDir, config, masterKey });
  await appliance.close();
}

async function rotationEntries(dataDir: string): Promise<number> {
  const db = await Db.open(join(dataDir, 'vault', 'vault.db'));
  try {
    return (await (await AuditLog.open(db)).query({ type: 'vault.master-key-rotated' })).length;
  } finally {
    await db.close();
  }
}

/** Nothing of a rotation is left: no pending description, no record of the old key, no temp file. */
function leftovers(dataDir: string, newKey: string): string[] {
  const vault = readdirSync(join(dataDir, 'vault')).filter((f) => f.startsWith('vault-key.') && f !== 'vault-key.json');
  return [...vault, ...(existsSync(`${newKey}.tmp`) ? [`${newKey}.tmp`] : [])];
}

// One appliance for every case below; each works on a copy of its data directory.
const tpl = await template(t);

t.test('when a rotation is SIGKILLed at any step from its final rename on then start opens with the new key and the same command finishes it, shred included', async (t) => {
  for (const step of AFTER_COMMIT) {
    await t.test(`killed at ${step}`, async (t) => {
      const { dataDir, oldKey, newKey, argv } = copyOf(t, tpl);
      const killed = await rotateAndKill(step, oldKey, argv);
      t.equal(killed.signal, 'SIGKILL', `killed: ${killed.stderr}`);
      t.match(killed.stdout, `STEP ${step}\n`, 'at the step');
      t.notOk(existsSync(join(dataDir, 'vault', 'vault-key.next.json')), 'the rotation is committed');

      await start(dataDir, { keyFilePath: newKey });
      t.pass('start opens the vault with the new (committed) key');
      if (OLD_KEY_INTACT.has(step)) {
        // The old key is refused, and the refusal says why and what to do.
        await t.rejects(start(dataDir, { keyFilePath: oldKey }), {
          code: 'MASTER_KEY_WRONG',
          message: /before .*rotation.* committed.*rotate-master-key/,
        });
      }

      const again = await runOps([...argv, '--json']);
      if (step === 'before-release') {
        // Killed before its claim's release, the run had done everything, its record included:
        // nothing on disk tells this from two secrets swapped, so it is refused, not "done".
        t.equal(again.code, 1, 'a rotation that had finished is not reported as a success');
        t.match(again.error, { code: 'MASTER_KEY_FILE_INVALID', message: /new secret already opens this vault: the rotation has finished, or the two secrets are swapped; nothing was changed/ });
      } else {
        t.equal(again.code, 0, `the same command finishes it: ${again.stderr}${JSON.stringify(again.error ?? '')}`);
        const lines = again.stderr.split('\n').filter(Boolean);
        t.equal(lines.length, 1, 'one log line');
        t.match(JSON.parse(lines[0]!).msg, /earlier run had committed it.*clean-up, done now/, `it says what it found: ${lines[0]}`);
        t.match(again.json(), { resumed: true, alreadyCommitted: true, keyring: 0, conversationKeys: 0, oldSecretRefused: true, oldKeyFileShredded: true });
      }
      t.notOk(existsSync(oldKey), 'the old key file is shredded');
      t.same(leftovers(dataDir, newKey), [], 'nothing of the rotation is left');
      t.equal(await rotationEntries(dataDir), 1, 'one audit entry: it came with the keyring');
      const chk = await runOps(['check', '--data', dataDir, '--master-key-file', newKey, '--json']);
      t.equal(chk.code, 0, chk.stdout);
      t.match(chk.json().items.find((i: { name: string }) => i.name === 'master-key'), { status: 'pass' });
      const vaultKey = readFileSync(join(dataDir, 'vault', 'vault-key.json'), 'utf8');
      const human = await runOps(argv);
      t.equal(human.code, 1, 'a further run is refused: the rotation is over');
      t.match(human.error?.message, /the rotation has finished, or the two secrets are swapped; nothing was changed/);
      t.equal(readFileSync(join(dataDir, 'vault', 'vault-key.json'), 'utf8'), vaultKey, 'and changes nothing');
    });
  }
});

t.test('when a rotation is SIGKILLed before its final rename then start refuses both keys saying why and the same command finishes it, shred included', async (t) => {
  for (const step of BEFORE_COMMIT) {
    await t.test(`killed at ${step}`, async (t) => {
      const { dataDir, oldKey, newKey, argv } = copyOf(t, tpl);
      const killed = await rotateAndKill(step, oldKey, argv);
      t.equal(killed.signal, 'SIGKILL', `killed: ${killed.stderr}`);
      t.match(killed.stdout, `STEP ${step}\n`, 'at the step');
      t.ok(existsSync(join(dataDir, 'vault', 'vault-key.next.json')), 'the rotation is pending');

      await t.rejects(start(dataDir, { keyFilePath: oldKey }), { code: 'ROTATION_PENDING' }, 'the old key opens, start refuses to serve');
      // At next-renamed the new key is still at its temp name (linked to its path next): nothing to try.
      if (existsSync(newKey)) {
        await t.rejects(
          start(dataDir, { keyFilePath: newKey }),
          { code: 'MASTER_KEY_WRONG', message: /new master key of a rotation that has not finished.*rotate-master-key/ },
          'the new key is not yet the vault key, and the refusal says the rotation is unfinished',
        );
      }

      const again = await runOps([...argv, '--json']);
      t.equal(again.code, 0, `the same command finishes it: ${again.stderr}${JSON.stringify(again.error ?? '')}`);
      t.match(again.json(), { resumed: true, alreadyCommitted: false, oldSecretRefused: true, oldKeyFileShredded: true });
      t.notOk(existsSync(oldKey), 'the old key file is shredded');
      t.same(leftovers(dataDir, newKey), [], 'nothing of the rotation is left');
      t.equal(await rotationEntries(dataDir), 1, 'one audit entry');
      const chk = await runOps(['check', '--data', dataDir, '--master-key-file', newKey, '--json']);
      t.equal(chk.code, 0, chk.stdout);
    });
  }
});

t.test('when a committed rotation is finished with --shred-old-key-file naming a file that is not the replaced key then that file is kept and the refusal says why', async (t) => {
  const { dataDir, oldKey, newKey, argv } = copyOf(t, tpl);
  const killed = await rotateAndKill('renamed', oldKey, argv);
  t.equal(killed.signal, 'SIGKILL');

  // Another master key (an earlier one, kept for old backups) given by mistake as the old one.
  const other = join(tmpDir(t), 'other.key');
  writeFileSync(other, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const otherText = readFileSync(other, 'utf8');
  const wrong = await runOps(['rotate-master-key', '--data', dataDir, '--master-key-file', other, '--new-master-key-file', newKey, '--shred-old-key-file']);
  t.equal(wrong.code, 1);
  t.match(wrong.error, { code: 'MASTER_KEY_WRONG', message: /new secret already opens this vault, but the current one is not the master key its rotation replaced/ });
  t.equal(readFileSync(other, 'utf8'), otherText, 'the file is untouched');

  // The rotation's record is still there: the right command finishes it.
  t.ok(existsSync(join(dataDir, 'vault', 'vault-key.prev.json')), 'the record is kept');
  const right = await runOps([...argv, '--json']);
  t.equal(right.code, 0, right.stderr);
  t.equal(right.json().oldKeyFileShredded, true);
  t.notOk(existsSync(oldKey));

  // A vault rotated before the record existed (an older sigil-server killed after the rename):
  // nothing proves the old key is the one replaced, nor that the rotation is not simply over
  // or the secrets swapped, so the command is refused and shreds nothing: start with the new
  // key; the old key file is the operator's to destroy.
  const legacy = copyOf(t, tpl);
  t.equal((await rotateAndKill('renamed', legacy.oldKey, legacy.argv)).signal, 'SIGKILL');
  const record = join(legacy.dataDir, 'vault', 'vault-key.prev.json');
  t.ok(existsSync(record), 'the record of the replaced key');
  rmSync(record); // what the older code left: no record
  for (const run of [legacy.argv, legacy.argv.filter((a) => a !== '--shred-old-key-file')]) {
    const noProof = await runOps(run);
    t.equal(noProof.code, 1);
    t.match(noProof.error, { code: 'MASTER_KEY_WRONG', message: /new secret already opens this vault: the rotation has finished, or the two secrets are swapped/ });
    t.equal(noProof.stdout, '', 'no success is printed');
    t.ok(existsSync(legacy.oldKey), 'kept');
  }
  await start(legacy.dataDir, { keyFilePath: legacy.newKey });
  t.pass('start opens the vault with the new key');
});

// Review of bfedd0b, defect 2: a finishing run with a wrong old key was taken for this rotation's
// own: it answered alreadyCommitted, exit 0, and removed the record, after which the right key
// file could never be shredded ("not the master key this rotation replaced (no record…)").
t.test('when a committed rotation is run again with an old key that is not the one it replaced then it is refused, the record is kept, and the right command still shreds the old key', async (t) => {
  const { dataDir, oldKey, newKey, argv } = copyOf(t, tpl);
  t.equal((await rotateAndKill('renamed', oldKey, argv)).signal, 'SIGKILL');
  const record = join(dataDir, 'vault', 'vault-key.prev.json');
  const recordText = readFileSync(record, 'utf8');

  const other = join(tmpDir(t), 'some-other.key');
  writeFileSync(other, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const missing = join(tmpDir(t), 'missing.key');
  for (const [current, code] of [
    [other, 'MASTER_KEY_WRONG'],
    // A key file that holds no key proves nothing without --shred-old-key-file.
    [missing, 'MASTER_KEY_FILE_INVALID'],
  ] as const) {
    const wrong = await runOps(['rotate-master-key', '--data', dataDir, '--master-key-file', current, '--new-master-key-file', newKey, '--json']);
    t.equal(wrong.code, 1, `refused: ${wrong.stdout}`);
    t.match(wrong.error, { code, message: /new secret already opens this vault, but the current one is not the master key its rotation replaced.*nothing was changed/ });
    t.equal(readFileSync(record, 'utf8'), recordText, 'the record is kept as it was');
  }
  t.ok(existsSync(oldKey), 'the old key file is still there');

  const right = await runOps([...argv, '--json']);
  t.equal(right.code, 0, `${right.stderr}${JSON.stringify(right.error ?? '')}`);
  t.match(right.json(), { alreadyCommitted: true, resumed: true, oldKeyFileShredded: true });
  t.notOk(existsSync(oldKey), 'the old key file is shredded');
  t.same(leftovers(dataDir, newKey), []);
});

// Review of bfedd0b, defect 1: "current secret refused, new secret opens" was taken as proof that
// an earlier run had committed this rotation. Two secrets given the wrong way round look exactly
// like that: exit 0, "nothing to do … the old key file was overwritten and deleted", nothing done.
t.test('when the current and new secrets are swapped then the rotation is refused with the current secret\'s refusal and a hint, and nothing is changed or shredded', async (t) => {
  // Key files: the vault's key named as the new one, a path that holds nothing as the current.
  const { dataDir, oldKey: currentKey, newKey: absent } = copyOf(t, tpl);
  const vaultKey = join(dataDir, 'vault', 'vault-key.json');
  const before = readFileSync(vaultKey, 'utf8');
  const keyText = readFileSync(currentKey, 'utf8');
  for (const json of [[], ['--json']]) {
    const r = await runOps(['rotate-master-key', '--data', dataDir, '--master-key-file', absent, '--new-master-key-file', currentKey, '--shred-old-key-file', ...json]);
    t.equal(r.code, 1, `refused: ${r.stdout}`);
    t.match(r.error, {
      code: 'MASTER_KEY_FILE_INVALID',
      message: /new secret already opens this vault: the rotation has finished, or the two secrets are swapped; nothing was changed/,
    });
    t.equal(r.stdout, '', 'no success, no "overwritten and deleted" is printed');
  }
  t.equal(readFileSync(vaultKey, 'utf8'), before, 'vault-key.json unchanged');
  t.equal(readFileSync(currentKey, 'utf8'), keyText, 'the key file is untouched');
  t.notOk(existsSync(absent), 'nothing written where the current key was named');
  t.same(leftovers(dataDir, absent), []);

  // Passphrases: the vault under P1, then P2 given as the current one and P1 as the new one.
  const P1 = 'the first passphrase of this vault';
  const P2 = 'a passphrase this vault never had';
  const toP1 = await runOps(['rotate-master-key', '--data', dataDir, '--master-key-file', currentKey], { SIGIL_NEW_MASTER_PASSPHRASE: P1 });
  t.equal(toP1.code, 0, toP1.stderr);
  const underP1 = readFileSync(vaultKey, 'utf8');
  const swapped = await runOps(['rotate-master-key', '--data', dataDir, '--json'], { SIGIL_MASTER_PASSPHRASE: P2, SIGIL_NEW_MASTER_PASSPHRASE: P1 });
  t.equal(swapped.code, 1, `refused: ${swapped.stdout}`);
  t.match(swapped.error, { code: 'MASTER_KEY_WRONG', message: /new secret already opens this vault: the rotation has finished, or the two secrets are swapped/ });
  t.equal(readFileSync(vaultKey, 'utf8'), underP1, 'vault-key.json unchanged');
  t.equal(await rotationEntries(dataDir), 1, 'no audit entry added');
  await start(dataDir, { passphrase: P1 });
  t.pass('P1 still opens the vault');
});

// Review of bfedd0b, defect 3: `check` passed, and `start` said nothing, while a committed
// rotation's clean-up (old secret refused, --shred-old-key-file) was unfinished.
t.test('when a committed rotation\'s clean-up is unfinished then check warns on master-key (exit 0) and start logs a warning; both are quiet once it is finished', async (t) => {
  const { dataDir, oldKey, newKey, argv } = copyOf(t, tpl);
  t.equal((await rotateAndKill('renamed', oldKey, argv)).signal, 'SIGKILL');

  const chk = await runOps(['check', '--data', dataDir, '--master-key-file', newKey, '--json']);
  t.equal(chk.code, 0, 'a warning, not a failure: the appliance serves under the committed key');
  t.match(chk.json().items.find((i: { name: string }) => i.name === 'master-key'), {
    status: 'warn',
    detail: /rotation was committed but its clean-up .*did not finish.*run the same rotate-master-key command again/,
  });
  const human = await runOps(['check', '--data', dataDir, '--master-key-file', newKey]);
  t.match(human.stdout, /^WARN\s+master-key\s/m);
  t.notMatch(human.stdout, /^PASS\s+master-key/m);
  const CLEAN_UP = /rotation was committed but its clean-up .*did not finish.*rotate-master-key command again/;
  t.ok((await serve(dataDir, newKey)).some((l) => CLEAN_UP.test(String(l.msg)) && l.level === 'warn'), 'start warns');

  t.equal((await runOps(argv)).code, 0, 'the same command finishes it');
  const after = await runOps(['check', '--data', dataDir, '--master-key-file', newKey, '--json']);
  t.match(after.json().items.find((i: { name: string }) => i.name === 'master-key'), { status: 'pass' });
  t.notOk((await serve(dataDir, newKey)).some((l) => CLEAN_UP.test(String(l.msg))), 'start says nothing of it');
});

t.test('when a rotation from a key file to a passphrase is SIGKILLed right after its final rename then the old key file is refused saying why and the same command finishes it', async (t) => {
  const { dataDir, oldKey } = copyOf(t, tpl);
  const pass = 'the passphrase after the rotation';
  const env = { SIGIL_NEW_MASTER_PASSPHRASE: pass };
  const argv = ['rotate-master-key', '--data', dataDir, '--master-key-file', oldKey, '--shred-old-key-file'];
  t.equal((await rotateAndKill('renamed', oldKey, argv, env)).signal, 'SIGKILL');

  await start(dataDir, { passphrase: pass });
  t.pass('start opens the vault with the new passphrase');
  // A key file where the vault now wants a passphrase: not a usage error, the replaced key.
  await t.rejects(start(dataDir, { keyFilePath: oldKey }), { code: 'MASTER_KEY_WRONG', message: /before its rotation.*committed/ });

  const again = await runOps([...argv, '--json'], env);
  t.equal(again.code, 0, `${again.stderr}${JSON.stringify(again.error ?? '')}`);
  t.match(again.json(), { kind: 'passphrase', resumed: true, alreadyCommitted: true, oldKeyFileShredded: true });
  t.notOk(existsSync(oldKey), 'the old key file is shredded');
  t.equal(await rotationEntries(dataDir), 1);
  const chk = await runOps(['check', '--data', dataDir, '--json'], { SIGIL_MASTER_PASSPHRASE: pass });
  t.equal(chk.code, 0, chk.stdout);
});

// A new rotation started while an earlier one's clean-up still waits replaces that rotation's
// record at its commit: the key the earlier one replaced can then never be proven or shredded by
// the command. Fifteenth session: said in the result and as a warning, never silently.
t.test('when a new rotation runs while an earlier one never finished its clean-up then it says the earlier clean-up is dropped', async (t) => {
  const { dataDir, oldKey, newKey, argv } = copyOf(t, tpl);
  const killed = await rotateAndKill('renamed', oldKey, argv);
  t.equal(killed.signal, 'SIGKILL', `killed: ${killed.stderr}`);
  t.ok(existsSync(join(dataDir, 'vault', 'vault-key.prev.json')), 'the earlier rotation waits for its clean-up');
  const newer = join(dirname(newKey), 'newer.key');
  const r = await runOps(['rotate-master-key', '--data', dataDir, '--master-key-file', newKey, '--new-master-key-file', newer, '--json']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.json(), { alreadyCommitted: false, earlierCleanupDropped: true });
  t.match(r.stderr, /earlier master-key rotation had not finished its clean-up.*destroy that old key file yourself/);
  t.ok(existsSync(oldKey), 'the earlier old key file is not touched: it is the operator’s to destroy');
  t.same(leftovers(dataDir, newer), [], 'no record is left');
  const quiet = await runOps(['rotate-master-key', '--data', dataDir, '--master-key-file', newer, '--new-master-key-file', join(dirname(newKey), 'newest.key'), '--json']);
  t.equal(quiet.code, 0, quiet.stderr);
  t.match(quiet.json(), { earlierCleanupDropped: false }, 'a rotation after a finished one drops nothing');
  // Both were ordinary rotations: each says "rotated", never that it finished an earlier run's
  // commit (1951157 put the warning between that if and its else, so every rotation said so).
  for (const run of [r, quiet]) {
    const msgs = run.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l).msg as string);
    t.ok(msgs.includes('master key rotated'), `it says it rotated: ${msgs.join(' | ')}`);
    t.notOk(msgs.some((m) => m.startsWith('master-key rotation finished')), 'and not that it finished an earlier run');
  }
});
