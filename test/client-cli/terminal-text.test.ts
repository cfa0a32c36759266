/**
 * Words of others never reach the terminal raw: table cells and fields (a downloaded file's name,
 * a server's message) and the `error:` line (which may quote input or a sender's file name) write
 * control characters as `\xNN`; LF and TAB stay as they are in free text.
 */
import t from 'tap';
import { createOutput } from '../../client-cli/output.js';
import { escapeControls } from '../../client-cli/terminal-text.js';
import { runCli } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

t.test('when text holds control characters then they are written as \\xNN, LF and TAB kept', async (t) => {
  t.equal(escapeControls('a\x1b]0;owned\x07b\r\x7f\x9b'), 'a\\x1b]0;owned\\x07b\\x0d\\x7f\\x9b');
  t.equal(escapeControls('line\n\tnext'), 'line\n\tnext');
});

t.test('when a table or fields show a value with escapes then the terminal gets them escaped', async (t) => {
  let out = '';
  const o = createOutput({ write: (s: string) => (out += s) }, { write: () => true });
  o.fields([['attachment', 'report\x1b[2J.pdf']]);
  o.table([{ name: 'x\x1b[1;1Hy' }], [['name', 'FILE']]);
  t.notMatch(out, /\x1b/);
  t.match(out, /attachment: report\\x1b\[2J\.pdf\n/);
  t.match(out, /x\\x1b\[1;1Hy\n/);
});

t.test('when the error line quotes input with escapes then it is one line with them escaped', async (t) => {
  const profile = tmpDir(t, 'sigil-cli-escape-');
  const r = await runCli(['delete', '--conversation', 'a\x1b[2Jb', '--yes'], { profile });
  t.equal(r.code, 2, r.stderr);
  t.equal(r.stderr, 'error: recipient "a\\x1b[2Jb" is neither a login nor #group\n');
});
