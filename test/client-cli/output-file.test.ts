/**
 * client-cli/output-file.ts: what the CLI writes whole (a PKCS#12, an envelope, the profile's key
 * and session) is a new file of its own mode renamed over the target. Review: `writeFile(path,
 * data, { mode: 0o600 })` over an existing 0644 file kept 0644 (the mode applies only when a file
 * is created), so a PKCS#12 or a one-time password stayed world-readable.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { OutputFileError, stageFile, writeFileAtomic } from '../../client-cli/output-file.js';
import { Profile } from '../../client-cli/profile.js';
import { tmpDir } from '../helpers/tmp.js';

const posix = process.platform !== 'win32';
const modeOf = (p: string): number => statSync(p).mode & 0o777;

t.test('when a secret is written over an existing world-readable file then the file is 0600 with the new content', { skip: !posix && 'POSIX modes' }, async (t) => {
  const dir = tmpDir(t);
  const target = join(dir, 'bkim.p12');
  writeFileSync(target, 'old', { mode: 0o644 });
  t.equal(modeOf(target), 0o644, 'control: the old file is world-readable');
  await writeFileAtomic(target, new Uint8Array([1, 2, 3]), { mode: 0o600 });
  t.equal(modeOf(target), 0o600);
  t.same([...readFileSync(target)], [1, 2, 3]);
  t.same(readdirSync(dir), ['bkim.p12'], 'no hidden file left beside it');
});

t.test('when the target is a symbolic link then the link is replaced and the file it points at is untouched', { skip: !posix && 'symlinks' }, async (t) => {
  const dir = tmpDir(t);
  const elsewhere = join(dir, 'elsewhere.txt');
  writeFileSync(elsewhere, 'not yours', { mode: 0o644 });
  const target = join(dir, 'out.html');
  symlinkSync(elsewhere, target);
  await writeFileAtomic(target, 'secret', { mode: 0o600 });
  t.notOk(lstatSync(target).isSymbolicLink(), 'the name is now a regular file');
  t.equal(readFileSync(target, 'utf8'), 'secret');
  t.equal(modeOf(target), 0o600);
  t.equal(readFileSync(elsewhere, 'utf8'), 'not yours', 'nothing written through the link');
  t.equal(modeOf(elsewhere), 0o644);
});

t.test('when the target cannot be written then OUTPUT_UNWRITABLE names it and nothing is left', async (t) => {
  const dir = tmpDir(t);
  const missing = join(dir, 'no-such-folder', 'x.p12');
  const err = await stageFile(missing, { mode: 0o600 }).catch((e: unknown) => e);
  t.type(err, OutputFileError);
  t.match(err, { code: 'OUTPUT_UNWRITABLE', message: `cannot write ${missing}: its folder does not exist` });
  mkdirSync(join(dir, 'a-folder'));
  await t.rejects(writeFileAtomic(join(dir, 'a-folder'), 'x', { mode: 0o600 }), { code: 'OUTPUT_UNWRITABLE', message: /it is a folder/ });
  t.same(readdirSync(dir), ['a-folder'], 'no hidden file left');
});

t.test('when a staged file is discarded then the target is as it was', async (t) => {
  const dir = tmpDir(t);
  const target = join(dir, 'req.csr.pem');
  writeFileSync(target, 'before');
  const s = await stageFile(target, { mode: 0o644 });
  await s.write('after');
  t.equal(readFileSync(target, 'utf8'), 'before', 'written, not yet committed: the target is unchanged');
  await s.discard();
  await s.discard();
  t.equal(readFileSync(target, 'utf8'), 'before');
  t.same(readdirSync(dir), ['req.csr.pem']);
});

t.test('when the profile writes its key and session over loose files then they become 0600', { skip: !posix && 'POSIX modes' }, async (t) => {
  const dir = tmpDir(t);
  const profile = new Profile(join(dir, 'p'));
  await profile.write('config', '{}\n');
  for (const file of ['key', 'session'] as const) {
    writeFileSync(profile.path(file), 'old', { mode: 0o644 });
    await profile.write(file, `new ${file}`);
    t.equal(modeOf(profile.path(file)), 0o600, file);
    t.equal(readFileSync(profile.path(file), 'utf8'), `new ${file}`);
  }
  t.equal(modeOf(profile.path('config')), 0o644, 'public files stay readable');
  t.same(readdirSync(profile.dir).sort(), ['config.json', 'key.p8.pem', 'session.json']);
});
