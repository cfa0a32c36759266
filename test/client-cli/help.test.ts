/**
 * Every command's help carries EXAMPLES and EXIT CODES (STYLE.md, step CLI), and flag errors
 * name the flag and list the allowed values, exiting 2.
 */
import t from 'tap';
import { buildProgram, allCommands, commandPath } from '../../client-cli/program.js';
import { terminalPrompter } from '../../client-cli/prompt.js';
import { runCli } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

const io = {
  stdout: { write: () => true },
  stderr: { write: () => true },
  env: {},
  prompter: terminalPrompter({ env: {} }),
  now: () => new Date(),
  stderrIsTTY: false,
};

function helpOf(cmd: ReturnType<typeof buildProgram>): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => void (text += s), writeErr: (s) => void (text += s) });
  cmd.outputHelp();
  return text;
}

t.test('when walking the command tree then every command has EXAMPLES and EXIT CODES', async (t) => {
  const program = buildProgram({ io });
  const commands = allCommands(program);
  t.ok(commands.length >= 20, `found ${commands.length} commands`);
  for (const cmd of commands) {
    const help = helpOf(cmd);
    t.match(help, /\nEXAMPLES\n {2}\$ sigil/, `${commandPath(cmd)} has EXAMPLES`);
    t.match(help, /\nEXIT CODES\n {2}0 /, `${commandPath(cmd)} has EXIT CODES`);
  }
});

t.test('when help is printed then each description is a paragraph the terminal width wraps', async (t) => {
  // A line break inside prose, written for one width, leaves ragged half-lines once commander wraps
  // the text again at another (80 columns when piped). Breaks are allowed only in preformatted
  // text (a break followed by indentation, e.g. a table of flags), which commander leaves as is.
  const ragged = allCommands(buildProgram({ io }))
    .filter((cmd) => /\n(?![ \t])/.test(cmd.description()))
    .map((cmd) => commandPath(cmd));
  t.same(ragged, [], 'no description breaks a line inside prose');
});

t.test('when a command prints data then it accepts --json', async (t) => {
  const program = buildProgram({ io });
  // Group nouns and the root only dispatch; every leaf command prints something.
  for (const cmd of allCommands(program).filter((c) => c.commands.length === 0)) {
    t.ok(cmd.options.some((o) => o.long === '--json'), `${commandPath(cmd)} has --json`);
  }
});

t.test('when the built CLI is asked for help then it prints the sections and exits 0', async (t) => {
  const r = await runCli(['cert', 'issue', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /Usage: sigil cert issue/);
  t.match(r.stdout, /EXAMPLES/);
  t.match(r.stdout, /EXIT CODES/);
});

t.test('flag errors name the flag, list the allowed values and exit 2', async (t) => {
  const profile = tmpDir(t, 'sigil-cli-help-');
  const cases: Array<{ args: string[]; flag: string; allowed: string }> = [
    { args: ['user', 'create', '--login', 'a', '--name', 'A', '--department', 'D', '--clearance', 'cosmic'], flag: '--clearance', allowed: 'top-secret' },
    { args: ['user', 'create', '--login', 'a', '--name', 'A', '--department', 'D', '--clearance', 'secret', '--role', 'king'], flag: '--role', allowed: 'officer' },
    { args: ['cert', 'revoke', '0a', '--reason', 'boredom'], flag: '--reason', allowed: 'keyCompromise' },
    { args: ['keygen', '--login', 'a', '--algorithm', 'ed25519'], flag: '--algorithm', allowed: 'rsa3072' },
    { args: ['user', 'clearance', 'alee', '--clearance', 'x'], flag: '--clearance', allowed: 'unmarked' },
    // Numeric flags: the server's ranges, refused as usage before anything runs (0 used to pass here
    // and reach the server, which answered 400).
    { args: ['read', 'bkim', '--limit', '0'], flag: '--limit', allowed: '1–200' },
    { args: ['inbox', '--limit', '201'], flag: '--limit', allowed: '1–200' },
    { args: ['read', 'bkim', '--since', '-1'], flag: '--since', allowed: '0 or more' },
    { args: ['watch', '--count', '0'], flag: '--count', allowed: '1 or more' },
    { args: ['group', 'create', 'ops', '--label', 'secret', '--retention-days', '0'], flag: '--retention-days', allowed: '1–36500' },
    { args: ['audit', 'events', '--limit', '1e3'], flag: '--limit', allowed: '1–10000' },
  ];
  for (const c of cases) {
    const r = await runCli(c.args, { profile });
    t.equal(r.code, 2, `${c.args.slice(0, 2).join(' ')}: exit 2`);
    t.match(r.stderr, c.flag, 'names the flag');
    t.match(r.stderr, c.allowed, 'lists the allowed values');
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.equal(r.stdout, '', 'nothing on stdout');
  }
});

t.test('when a flag is unknown or a mandatory one missing then exit 2 with one line', async (t) => {
  const unknown = await runCli(['whoami', '--frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown option '--frobnicate'/);
  const missing = await runCli(['setup', '--server', 'https://127.0.0.1:8443']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /--ca/);
  const extra = await runCli(['whoami', 'surplus']);
  t.equal(extra.code, 2);
  const noVerb = await runCli(['cert']);
  t.equal(noVerb.code, 2, 'a noun without a verb is a usage error');
});

t.test('when an id that begins with "-" is given as an argument then the one-line error says to put it after --, and after -- it is taken', async (t) => {
  const profile = tmpDir(t, 'sigil-cli-help-');
  const id = '-B5o8V9OIbzYGJrf8Iv-VA';
  const asOption = await runCli(['download', id, '--out', 'x.bin'], { profile });
  t.equal(asOption.code, 2);
  t.equal(asOption.stderr.trim().split('\n').length, 1, 'one line');
  t.match(asOption.stderr, `unknown option '${id}'`);
  t.match(asOption.stderr, `-- ${id}`, 'names the way to pass it');
  const short = await runCli(['whoami', '-z']);
  t.notMatch(short.stderr, /goes after/, 'a short unknown flag gets no hint');
  const unknownLong = await runCli(['whoami', '--frobnicate']);
  t.notMatch(unknownLong.stderr, /goes after/, 'nor does a long one');
  const after = await runCli(['download', '--out', 'x.bin', '--', id], { profile });
  t.notMatch(after.stderr, /unknown option/, 'after --, the id is the argument');
  t.match(after.stderr, /^error: /, `it then fails for what it is (no server set up): ${after.stderr.trim()}`);
});

t.test('when --no-passphrase is given without --insecure then keygen refuses with exit 2 (USAGE)', async (t) => {
  const profile = tmpDir(t, 'sigil-cli-help-');
  const r = await runCli(['keygen', '--login', 'alee', '--no-passphrase'], { profile });
  t.equal(r.code, 2);
  t.match(r.stderr, /^error: .*--insecure/);
});

t.test('when --version is asked then it prints the version and exits 0', async (t) => {
  const r = await runCli(['--version']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^\d+\.\d+\.\d+/);
});

t.test('when a group is deleted as a conversation then the question says the group goes with its history', async (t) => {
  // The server destroys a group's conversation itself (API.md); the CLI once said the group stays.
  const profile = tmpDir(t, 'sigil-cli-delete-');
  const group = await runCli(['delete', '--conversation', '#ops'], { profile });
  t.equal(group.code, 2, 'no terminal and no --yes: not confirmed');
  t.match(group.stderr, /Delete group #ops with its whole history for everyone\?/);
  const direct = await runCli(['delete', '--conversation', 'bkim'], { profile });
  t.match(direct.stderr, /Delete the whole conversation bkim for everyone\?/);
});

// Review finding: `sigil cert revoke --help` told officers to run `sigil crl publish` afterwards,
// although the appliance publishes a new CRL before it answers a revocation (server/API.md).
t.test('when an officer reads sigil cert revoke --help then it says the CRL is already published', async (t) => {
  const revoke = allCommands(buildProgram({ io })).find((c) => commandPath(c) === 'sigil cert revoke');
  if (!revoke) throw new Error('no sigil cert revoke command');
  const text = helpOf(revoke).replace(/\s+/g, ' ');
  t.notMatch(text, /crl publish/, 'no extra step to run');
  t.match(text, /publishes a new CRL listing it before it answers/);
});
