/**
 * `sigil search` with the built CLI against a real appliance: words and #hashtags across a
 * member's conversations (a tag as a whole word, case ignored), `--in` one conversation, the JSON
 * form with each match's conversation and verdict, `-` reading the words from stdin (off the
 * command line, and not echoed), one stderr line when nothing is found, nothing marked read, and
 * a match that fails verification shown loudly with exit 3. The matcher alone: what is and is not
 * the tag.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Certificate, createRootCrl } from '../../../pki/index.js';
import { matcher } from '../../../client-cli/commands/message/search.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { tmpDir } from '../../helpers/tmp.js';
import { appRootCrl } from './helpers/root-crl.js';
import { cliUser } from './helpers/users.js';

t.test('when the text is a #tag then it matches the whole tag only, in any case', async (t) => {
  const tag = matcher('#Budget');
  for (const yes of ['#budget', 'see #BUDGET.', 'Q3 (#budget)', '#budget\nnext line', 'two #budget #plans']) t.ok(tag(yes), yes);
  for (const no of ['#budgets', 'budget', 'x#budget', '##budget-2', '#budget_q3', '#budget-q3']) t.notOk(tag(no), no);
  t.ok(matcher('#budget-q3')('the #budget-q3 sheet'), 'a tag with a dash is one tag');
  t.ok(matcher('Convoy leaves')('The CONVOY LEAVES at six'), 'words: a substring, case ignored');
  t.throws(() => matcher('   '), /give the words or #tag/);
});

const { app } = await httpHarness(t, { rootCrlCheckEveryMs: 24 * 3_600_000 });
const dir = tmpDir(t, 'sigil-cli-search-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');
await alee.cli.json(['group', 'create', 'ops', '--label', 'secret']);
await alee.cli.json(['group', 'add', 'ops', 'bkim']);
const inGroup = await alee.cli.json(['send', '#ops'], { input: 'Convoy leaves at 06:00 #budget' });
await alee.cli.json(['send', '#ops'], { input: 'new #budgets sheet' });
const direct = await alee.cli.json(['send', 'bkim'], { input: 'Re #Budget: approved' });

t.test('when a member searches a #tag then matches from every conversation show under their conversation, verified', async (t) => {
  const r = await bkim.cli.run(['search', '#budget']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^\[SECRET\] #ops {2}1 found\n\[SECRET\] \S+ \S+ alee: Convoy leaves at 06:00 #budget$/m);
  t.match(r.stdout, /^\[SECRET\] alee {2}1 found\n\[SECRET\] \S+ \S+ alee: Re #Budget: approved$/m);
  t.notMatch(r.stdout, /#budgets|VERIFICATION FAILED/);
  const j = await bkim.cli.json(['search', '#budget', '--in', '#ops']);
  t.match(j, { matches: [{ conversationName: '#ops', id: inGroup.id, verified: true, body: 'Convoy leaves at 06:00 #budget' }] });
  t.equal(j.matches.length, 1, '--in keeps to one conversation');
  const words = await bkim.cli.json(['search', 'APPROVED']);
  t.match(words.matches, [{ conversationName: 'alee', id: direct.id }]);
  const piped = await bkim.cli.run(['search', '-', '--in', 'alee'], { input: '#budget\n' });
  t.equal(piped.code, 0, piped.stderr);
  t.match(piped.stdout, /alee: Re #Budget: approved$/m, '- reads the words from stdin, off the command line');
  const inbox = await bkim.cli.json(['inbox']);
  t.ok(inbox.conversations.every((c: { unread: number }) => c.unread > 0), 'nothing was marked read');
});

t.test('when nothing matches then one line on stderr and exit 0; an empty text is usage', async (t) => {
  const r = await bkim.cli.run(['search', '#nothing']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, '');
  t.equal(r.stderr, 'nothing found for #nothing\n');
  for (const [args, input] of [[['search', ' '], undefined], [['search', '-'], '\n']] as const) {
    const empty = await bkim.cli.run([...args], input === undefined ? {} : { input });
    t.equal(empty.code, 2, args.join(' '));
    t.equal(empty.stderr, 'error: search: give the words or #tag to find\n');
  }
  const quiet = await bkim.cli.run(['search', '-'], { input: '#secret-operation' });
  t.equal(quiet.stderr, 'nothing found\n', 'words read from stdin are not echoed');
});

t.test('when a match fails verification then it is shown loudly and the command exits 3', async (t) => {
  const rootCrl = appRootCrl(app);
  const { cert, key } = await rootCrl.rootSigner();
  const revokedAt = new Date();
  await new Promise((r) => setTimeout(r, 50));
  await alee.cli.json(['send', '#ops'], { input: 'late #budget news' });
  const issuing = Certificate.fromPem(readFileSync(join(app.dataDir, 'ca', 'issuing.pem'), 'utf8'));
  rootCrl.replace(t, (await createRootCrl({ cert, key, crlNumber: 2n, revoked: [{ serialNumber: issuing.serialNumber, revocationDate: revokedAt, reason: 'cACompromise' }] })).pem);
  const r = await bkim.cli.run(['search', '#budget', '--in', '#ops']);
  t.equal(r.code, 3, r.stderr);
  t.match(r.stdout, /alee: late #budget news\n(.*\n)*?!! VERIFICATION FAILED: revoked: /);
  t.match(r.stdout, /alee: Convoy leaves at 06:00 #budget/);
  t.match(r.stderr, /^error: 1 of 2 messages found failed verification; do not act on them$/m);
});
