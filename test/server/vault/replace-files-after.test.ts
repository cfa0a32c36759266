/**
 * replaceFilesAfter (vault/durable-file.ts), on real files: the new contents are in place, in the
 * given mode, only after `between` succeeded, and its result comes back; when `between` or a write
 * fails, every file keeps its old content and no temp file is left beside them.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { replaceFilesAfter } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

t.test('when between succeeds then both files are replaced after it, and its result is returned', async (t) => {
  const dir = tmpDir(t, 'sigil-replace-');
  const a = join(dir, 'a.pem');
  const b = join(dir, 'b.pem');
  writeFileSync(a, 'old a');
  writeFileSync(b, 'old b');
  const seen: string[] = [];
  const r = await replaceFilesAfter(
    [
      { path: a, data: 'new a', mode: 0o644 },
      { path: b, data: 'new b', mode: 0o600 },
    ],
    async () => {
      seen.push(readFileSync(a, 'utf8'), readFileSync(b, 'utf8'));
      return 42;
    },
  );
  t.equal(r, 42);
  t.same(seen, ['old a', 'old b'], 'nothing replaced while between runs');
  t.equal(readFileSync(a, 'utf8'), 'new a');
  t.equal(readFileSync(b, 'utf8'), 'new b');
  t.equal(statSync(b).mode & 0o777, 0o600);
  t.same(readdirSync(dir).sort(), ['a.pem', 'b.pem'], 'no temp file left');
});

t.test('when between or a write fails then nothing is replaced and no temp file is left', async (t) => {
  const dir = tmpDir(t, 'sigil-replace-');
  const a = join(dir, 'a.pem');
  writeFileSync(a, 'old a');
  await t.rejects(
    replaceFilesAfter([{ path: a, data: 'new a', mode: 0o644 }], async () => {
      throw new Error('audit append failed');
    }),
    /audit append failed/,
  );
  t.equal(readFileSync(a, 'utf8'), 'old a');
  t.same(readdirSync(dir), ['a.pem']);

  // The second file's folder does not exist: its temp file cannot be written, even by root.
  let ran = false;
  await t.rejects(
    replaceFilesAfter(
      [
        { path: a, data: 'new a', mode: 0o644 },
        { path: join(dir, 'missing', 'b.pem'), data: 'new b', mode: 0o644 },
      ],
      async () => {
        ran = true;
      },
    ),
    { code: 'ENOENT' },
  );
  t.notOk(ran, 'between does not run when a write failed');
  t.equal(readFileSync(a, 'utf8'), 'old a');
  t.same(readdirSync(dir), ['a.pem'], 'the first file\'s temp is removed too');
});
