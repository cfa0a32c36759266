/**
 * The name a download takes without --out (client-cli/messaging/local-name.ts): the sender chose
 * the signed name, so it is kept to one harmless file name in the current folder, on Linux and on
 * Windows.
 */
import fc from 'fast-check';
import t from 'tap';
import { localName } from '../../../client-cli/messaging/local-name.js';

t.test('when a signed name is an ordinary file name then it is kept', async (t) => {
  for (const n of ['report.pdf', 'Отчёт 2026.docx', 'a b (2).tar.gz', 'x']) t.equal(localName(n), n);
});

t.test('when a signed name would leave the folder, hide, run or mislead then it is made safe', async (t) => {
  const cases: [string, string][] = [
    ['../../etc/passwd', 'passwd'],
    ['..\\..\\Windows\\win.ini', 'win.ini'],
    ['..', 'attachment'],
    ['.', 'attachment'],
    ['', 'attachment'],
    ['.bash_login', 'bash_login'],
    ['...profile', 'profile'],
    ['report.pdf.', 'report.pdf'],
    ['report.pdf   ', 'report.pdf'],
    ['a\nb\x1b[2J.txt', 'a_b_[2J.txt'],
    ['invoice\u202efdp.exe', 'invoice_fdp.exe'],
    ['what?<>:"|*.txt', 'what_______.txt'],
    ['CON', '_CON'],
    ['nul.txt', '_nul.txt'],
    ['com1.log', '_com1.log'],
    ['console.log', 'console.log'],
  ];
  for (const [signed, local] of cases) t.equal(localName(signed), local, JSON.stringify(signed));
  const long = localName(`${'a'.repeat(300)}.pdf`);
  t.equal(long.length, 200);
  t.ok(long.endsWith('.pdf'), 'a long name keeps its extension');
  t.equal(localName(`${'a'.repeat(199)}.${'b'.repeat(50)}`), 'a'.repeat(199), 'and is cut without a trailing dot or space');
});

t.test('when any name is given then the result is one plain, non-empty name in this folder', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 })), (signed) => {
        const n = localName(signed);
        return (
          n.length > 0 &&
          n.length <= 200 &&
          !/[/\\]/.test(n) &&
          !n.startsWith('.') &&
          // eslint-disable-next-line no-control-regex
          !/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069<>:"|?*]/.test(n) &&
          !/[.\s]$/.test(n) &&
          !/^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\.|$)/i.test(n)
        );
      }),
      { numRuns: 2000 },
    ),
  );
});
