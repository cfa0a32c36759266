/** Prompts: environment first, no echo on a terminal, fail fast without one. */
import { PassThrough } from 'node:stream';
import t from 'tap';
import { terminalPrompter } from '../../client-cli/prompt.js';
import { exitCodeFor } from '../../client-cli/exit-codes.js';

/** A fake terminal: stdin we type into, stderr we read back. */
function terminal(): { input: NodeJS.ReadStream; output: NodeJS.WriteStream; typed: () => string; type: (s: string) => void } {
  const input = Object.assign(new PassThrough(), { isTTY: true }) as unknown as NodeJS.ReadStream;
  const output = new PassThrough() as unknown as NodeJS.WriteStream;
  let seen = '';
  (output as unknown as PassThrough).on('data', (d: Buffer) => (seen += d.toString('utf8')));
  return { input, output, typed: () => seen, type: (s) => void (input as unknown as PassThrough).write(s) };
}

t.test('when the environment variable is set then it answers without a terminal', async (t) => {
  const p = terminalPrompter({ env: { SIGIL_PASSWORD: 'from-env' }, input: Object.assign(new PassThrough(), { isTTY: false }) as never });
  t.equal(await p.secret('Password', 'SIGIL_PASSWORD'), 'from-env');
  t.equal(await p.newSecret('New password', 'SIGIL_PASSWORD'), 'from-env');
});

t.test('when there is no terminal and no variable then PROMPT_UNAVAILABLE names the variable (exit 2)', async (t) => {
  const p = terminalPrompter({ env: {}, input: Object.assign(new PassThrough(), { isTTY: false }) as never });
  const err = await p.secret('Password', 'SIGIL_PASSWORD').catch((e: unknown) => e);
  t.match(err, { code: 'PROMPT_UNAVAILABLE', message: /Password is needed but stdin is not a terminal; set SIGIL_PASSWORD/ });
  t.equal(exitCodeFor(err), 2);
  t.equal(await p.confirm('Proceed?'), false, 'confirm without a terminal is no');
});

t.test('when typing a secret on a terminal then it is returned and never echoed', async (t) => {
  const term = terminal();
  const p = terminalPrompter({ env: {}, input: term.input, output: term.output });
  const answer = p.secret('Password', 'SIGIL_PASSWORD');
  setImmediate(() => term.type('s3cret-typed\r'));
  t.equal(await answer, 's3cret-typed');
  t.match(term.typed(), /Password: /);
  t.notMatch(term.typed(), /s3cret/, 'the secret does not appear on the terminal');
});

t.test('when the two entries of a new secret differ then PASSWORD_MISMATCH (exit 2)', async (t) => {
  const term = terminal();
  const p = terminalPrompter({ env: {}, input: term.input, output: term.output });
  const answer = p.newSecret('New password', 'SIGIL_NEW_PASSWORD').catch((e: unknown) => e);
  setImmediate(() => {
    term.type('first-entry\r');
    setTimeout(() => term.type('second-entry\r'), 50);
  });
  const err = await answer;
  t.match(err, { code: 'PASSWORD_MISMATCH' });
  t.equal(exitCodeFor(err), 2);
});

t.test('when the two entries match then the new secret is returned', async (t) => {
  const term = terminal();
  const p = terminalPrompter({ env: {}, input: term.input, output: term.output });
  const answer = p.newSecret('New password', 'SIGIL_NEW_PASSWORD');
  setImmediate(() => {
    term.type('same-entry\r');
    setTimeout(() => term.type('same-entry\r'), 50);
  });
  t.equal(await answer, 'same-entry');
  t.match(term.typed(), /New password \(again\): /);
});

t.test('when confirming on a terminal then y means yes and anything else no', async (t) => {
  for (const [typed, expected] of [['y\r', true], ['yes\r', true], ['\r', false], ['n\r', false]] as const) {
    const term = terminal();
    const p = terminalPrompter({ env: {}, input: term.input, output: term.output });
    const answer = p.confirm('Proceed?');
    setImmediate(() => term.type(typed));
    t.equal(await answer, expected, JSON.stringify(typed));
  }
});
