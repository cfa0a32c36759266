/**
 * Words of others never reach the terminal raw: table cells and fields (a downloaded file's name,
 * a server's message) and the `error:` line (which may quote input or a sender's file name) write
 * control characters as `\xNN`; LF and TAB stay as they are in free text, and are escaped too
 * where a value must stay on one line (cells, fields, names, titles, the error line).
 */
import t from 'tap';
import { createOutput } from '../../client-cli/output.js';
import { escapeControls, oneLine } from '../../client-cli/terminal-text.js';
import { runCli } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

t.test('when text holds control characters then they are written as \\xNN, LF and TAB kept', async (t) => {
  t.equal(escapeControls('a\x1b]0;owned\x07b\r\x7f\x9b'), 'a\\x1b]0;owned\\x07b\\x0d\\x7f\\x9b');
  t.equal(escapeControls('line\n\tnext'), 'line\n\tnext');
});

t.test('when text must stay on one line then line and column breaks and bidi controls are escaped too', async (t) => {
  t.equal(oneLine('a\nb\tc\r\u2028\u2029'), 'a\\x0ab\\x09c\\x0d\\u{2028}\\u{2029}');
  t.equal(oneLine('\u202eabc\u2066x\u2069'), '\\u{202e}abc\\u{2066}x\\u{2069}', 'no bidirectional override or isolate reorders what is shown');
  t.equal(escapeControls('\u202eabc\nx'), '\\u{202e}abc\nx', 'free text keeps its lines, not the override');
  t.equal(oneLine('Müller — 東京 ✓'), 'Müller — 東京 ✓', 'other text is untouched');
  t.equal(oneLine(oneLine('a\x1b\n')), oneLine('a\x1b\n'), 'escaping twice changes nothing');
});

t.test('when a line or note carries controls then they are escaped as a last guard, its line breaks kept', async (t) => {
  let out = '';
  let err = '';
  const o = createOutput({ write: (s: string) => (out += s) }, { write: (s: string) => (err += s) });
  o.line('served \x1b[2J text\n    next');
  o.note('server said \x07');
  t.equal(out, 'served \\x1b[2J text\n    next\n');
  t.equal(err, 'server said \\x07\n');
});

t.test('when a table or fields show a value with escapes then the terminal gets them escaped', async (t) => {
  let out = '';
  const o = createOutput({ write: (s: string) => (out += s) }, { write: () => true });
  o.fields([['attachment', 'report\x1b[2J.pdf']]);
  o.table([{ name: 'x\x1b[1;1Hy' }], [['name', 'FILE']]);
  t.notMatch(out, /\x1b/);
  t.match(out, /attachment: report\\x1b\[2J\.pdf\n/);
  t.match(out, /x\\x1b\[1;1Hy\n/);
  out = '';
  o.table([{ name: 'a\nb' }, { name: 'c' }], [['name', 'FILE']]);
  t.equal(out, 'FILE\na\\x0ab\nc\n', 'a value with a line break stays in its row');
});

t.test('when the error line quotes input with escapes then it is one line with them escaped', async (t) => {
  const profile = tmpDir(t, 'sigil-cli-escape-');
  const r = await runCli(['delete', '--conversation', 'a\x1b[2Jb', '--yes'], { profile });
  t.equal(r.code, 2, r.stderr);
  t.equal(r.stderr, 'error: recipient "a\\x1b[2Jb" is neither a login nor #group\n');
});
