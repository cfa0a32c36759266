/**
 * Review defect: `sigil send <to> "<text>"` put the message text in argv, readable by every local
 * user through /proc/<pid>/cmdline (`ps`) while the process runs, and kept in shell history. The
 * text now comes from stdin (or the terminal prompt); a positional text is refused with one usage
 * line and nothing is sent, unless `--text-in-argv` explicitly accepts the exposure. Runs the built
 * CLI as a real child process against a real appliance on 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { CLI_MAIN, ensureCliBuilt, REPO_ROOT } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';
import { httpHarness } from '../server/messaging/http-harness.js';
import { cliUser } from './messaging/helpers/users.js';

const { app } = await httpHarness(t);
const dir = tmpDir(t, 'sigil-cli-send-argv-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');

/** The bodies bkim can read from alee. */
async function bodiesFromAlee(): Promise<string[]> {
  const r = await bkim.cli.run(['read', 'alee', '--json']);
  if (r.code !== 0) return [];
  return (JSON.parse(r.stdout).messages as { body: string }[]).map((m) => m.body);
}

await t.test('when the text is a positional argument then it is refused with one usage line and nothing is sent', async (t) => {
  const secret = 'Positional plan: north gate 09:00';
  // stdin is held open: the refusal must come before any read of stdin (or of the network).
  const r = await alee.cli.run(['send', 'bkim', secret], { keepStdinOpen: true, timeoutMs: 20_000 });
  t.equal(r.code, 2, `usage exit code; stderr: ${r.stderr}`);
  t.equal(r.signal, null, 'it did not wait on stdin');
  t.equal(r.stdout, '', 'no receipt');
  t.match(r.stderr, /^error: [^\n]+\n$/, 'exactly one line');
  t.match(r.stderr, /command line is refused/, 'says it is refused');
  t.match(r.stderr, /other local users|shell history/, 'says why');
  t.match(r.stderr, /\| sigil send bkim/, 'shows the stdin form');
  t.match(r.stderr, /`sigil send bkim`/, 'shows the prompt form');
  t.match(r.stderr, /--text-in-argv/, 'names the explicit flag');
  t.notMatch(r.stderr, /north gate/, 'the refusal does not echo the text');
  const group = await alee.cli.run(['send', '#ops', '--urgent', secret], { timeoutMs: 20_000 });
  t.equal(group.code, 2, 'refused for a group too (before the group is even resolved)');
  t.match(group.stderr, /sigil send '#ops'/, 'the hint quotes a #group for the shell');
  t.notOk((await bodiesFromAlee()).includes(secret), 'bkim received nothing');
});

await t.test(
  'when the text comes on stdin then it is sent and never appears in the child /proc/<pid>/cmdline',
  { skip: process.platform === 'linux' ? false : 'needs /proc (Linux)' },
  async (t) => {
    ensureCliBuilt();
    const secret = 'Stdin plan: south gate 11:30';
    const env: Record<string, string> = { SIGIL_PASSWORD: alee.user.password };
    for (const k of ['PATH', 'HOME', 'TMPDIR']) if (process.env[k]) env[k] = process.env[k] as string;
    const child = spawn(process.execPath, [CLI_MAIN, '--profile', alee.cli.profile, 'send', 'bkim', '--json'], {
      env,
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
    t.teardown(() => clearTimeout(kill));
    const pid = child.pid as number;
    const cmdline = (): string => readFileSync(`/proc/${pid}/cmdline`).toString('utf8').split('\0').join(' ');

    // stdin is still open: the process is alive and waiting for its text.
    const whileWaiting = cmdline();
    t.match(whileWaiting, /main\.js .*send bkim --json/, 'read the running child’s command line');
    t.notMatch(whileWaiting, /south gate/, 'the text is not in argv');
    child.stdin.write(secret);
    await new Promise((r) => setTimeout(r, 200));
    let afterWrite = '';
    try {
      afterWrite = cmdline();
    } catch {
      // Already gone: nothing left to read.
    }
    t.notMatch(afterWrite, /south gate/, 'nor once the text has been written to its stdin');
    child.stdin.end();

    t.equal(await exit, 0, stderr);
    const receipt = JSON.parse(stdout) as { id: string };
    t.match(receipt.id, /^[A-Za-z0-9_-]{22}$/);
    const got = await bkim.cli.json(['read', 'alee']);
    t.match(
      (got.messages as { id: string; body: string; verified: boolean }[]).find((m) => m.id === receipt.id),
      { body: secret, verified: true },
      'bkim reads the text, verified',
    );
  },
);

await t.test('when --text-in-argv is given then the positional text is sent (the exposure accepted explicitly)', async (t) => {
  const text = 'Not secret: lunch at 12';
  const sent = await alee.cli.json(['send', 'bkim', '--text-in-argv', text]);
  t.match(sent, { id: /^[A-Za-z0-9_-]{22}$/, label: 'secret' });
  t.ok((await bodiesFromAlee()).includes(text), 'bkim received it');
  const help = await alee.cli.run(['send', '--help']);
  t.match(help.stdout.replace(/\s+/g, ' '), /--text-in-argv take the text from the argument: exposes it to other local users/);
  const examples = help.stdout.split('\n').filter((l) => /^\s+\$ sigil send /.test(l));
  t.ok(examples.length > 0, 'send has examples');
  for (const e of examples) {
    // A quoted text right after the recipient (or after flags) is argv text: only with the flag.
    if (/^\s+\$ sigil send \S+( --?\S+)* ['"]/.test(e)) t.match(e, /--text-in-argv/, `example ${e.trim()}`);
  }
});

await t.test('when the text is typed at a terminal then it ends at the first empty line', async (t) => {
  const { readTypedText } = await import('../../client-cli/commands/message/send.js');
  const input = Object.assign(new PassThrough(), { isTTY: true });
  let prompt = '';
  const body = readTypedText(input, { write: (s: string) => (prompt += s) }, 'Message to bkim, ended by an empty line or Ctrl-D:');
  input.write('first line\r\nsecond line\n');
  input.write('\nnot part of it\n');
  t.equal((await body).toString('utf8'), 'first line\nsecond line');
  t.match(prompt, /empty line/);
  const eof = Object.assign(new PassThrough(), { isTTY: true });
  const untilEof = readTypedText(eof, { write: () => true }, 'Message:');
  eof.end('only line');
  t.equal((await untilEof).toString('utf8'), 'only line', 'Ctrl-D (EOF) ends it too');
});
