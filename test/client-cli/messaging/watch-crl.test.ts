/**
 * Review defect 2: `sigil watch` held the first CRL it fetched for the whole run, so once that
 * CRL passed its nextUpdate every live message was flagged as failed (`crl-stale`), although the
 * appliance had published a fresh one. Now the session fetches the CRL again when the one it holds
 * is past its nextUpdate, once more on a crl-stale result, and warns when the appliance serves a
 * stale one.
 *
 * `sigil watch`'s run() in this process against a real appliance over real TLS, with one fake
 * clock for the appliance and (through the runtime's injected io.now) for the CLI.
 */
import t from 'tap';
import { run as watch } from '../../../client-cli/commands/message/watch.js';
import { MessagingSession } from '../../../client-cli/messaging/session.js';
import { terminalPrompter } from '../../../client-cli/prompt.js';
import { Runtime } from '../../../client-cli/runtime.js';
import type { TestUser } from '../../helpers/appliance.js';
import { ensureCliBuilt } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';
import { until } from '../../helpers/until.js';
import { cliUser } from './helpers/users.js';
import { httpHarness } from '../../server/messaging/http-harness.js';

const MINUTE = 60_000;
const VALIDITY = 10 * MINUTE;

/** The appliance's clock and the CLI's: real time plus what the test moves them by. */
const skew = { server: 0, client: 0 };
const serverNow = (): Date => new Date(Date.now() + skew.server);
const clientNow = (): Date => new Date(Date.now() + skew.client);

const h = await httpHarness(t, { now: serverNow, profile: 'p256', config: { crlValidityMs: VALIDITY }, keepAliveMs: 1000 });
const app = h.app;

ensureCliBuilt();
const dir = tmpDir(t, 'sigil-cli-watch-crl-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');
const as = (u: TestUser) => (path: string, body: unknown) => app.request(path, { body, token: u.token, cert: u.certPem, key: u.keyPem });
const conversation = ((await as(alee.user)('/v1/conversations/direct', { peer: 'bkim' })).body as { id: string }).id;

/** alee sends `text` to bkim, signed now by the appliance's clock. */
async function send(text: string): Promise<string> {
  const { id, ...m } = await h.compose(alee.user, conversation, text, { sentAt: serverNow().toISOString() });
  const r = await as(alee.user)('/v1/messages', m);
  if (r.status !== 201) throw new Error(`send: ${r.status} ${JSON.stringify(r.body)}`);
  return id;
}

/** bkim's runtime in this process: output captured, the CLI clock = clientNow. */
function runtime() {
  const out = { stdout: '', stderr: '' };
  const io = {
    stdout: { write: (s: string) => void (out.stdout += s) },
    stderr: { write: (s: string) => void (out.stderr += s) },
    env: {},
    prompter: terminalPrompter({ env: {} }),
    now: clientNow,
    stderrIsTTY: false,
  };
  return { rt: new Runtime(io, { profile: bkim.cli.profile, json: true }), out };
}

const lines = (s: string) => s.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

/** Starts `sigil watch --json --count 1` and waits until it is live. */
async function startWatch() {
  const { rt, out } = runtime();
  const ac = new AbortController();
  const killer = setTimeout(() => ac.abort(), 60_000);
  const done = watch({ count: 1, json: true, signal: ac.signal }, rt).finally(() => clearTimeout(killer));
  done.catch(() => undefined);
  await until(() => lines(out.stdout).some((l) => l.event === 'ready'), 30_000, 'watch to be live');
  return { done, out };
}

t.test('when the CRL watch fetched at start passes its nextUpdate then the next live message verifies against a fresh CRL', async (t) => {
  const w = await startWatch();
  const held = await app.appliance.certificates.latestCrl();
  // Both clocks move past the held CRL's nextUpdate; the appliance has published a new one meanwhile.
  skew.server += VALIDITY + MINUTE;
  skew.client += VALIDITY + MINUTE;
  const fresh = await app.appliance.certificateService.publishCrl('officer');
  t.ok(fresh.number > (held?.number ?? 0));
  const id = await send('after the first CRL expired');
  await t.resolves(w.done, 'watch ends with 0: nothing failed');
  const msg = lines(w.out.stdout).find((l) => l.event === 'message');
  t.match(msg, { id, verified: true, signer: 'alee' }, w.out.stdout);
});

t.test("when the appliance's clock is ahead (the held CRL still looks fresh here) then a crl-stale result fetches the CRL once more", async (t) => {
  const w = await startWatch();
  const held = await app.appliance.certificates.latestCrl();
  skew.server += VALIDITY + MINUTE; // only the appliance's clock: the workstation still thinks its CRL is fresh
  await app.appliance.certificateService.publishCrl('officer');
  const id = await send('received after the held CRL was due');
  t.ok(held!.nextUpdate.getTime() < serverNow().getTime() && held!.nextUpdate.getTime() > clientNow().getTime(), 'the premise');
  await t.resolves(w.done);
  t.match(lines(w.out.stdout).find((l) => l.event === 'message'), { id, verified: true });
  skew.client = skew.server;
});

t.test('when the appliance serves a CRL already past its nextUpdate then the reader is warned on stderr, once', async (t) => {
  const { rt, out } = runtime();
  skew.client = skew.server + VALIDITY + MINUTE; // nothing newer has been published
  t.teardown(() => void (skew.client = skew.server));
  const ms = await MessagingSession.open(rt);
  await ms.trust();
  await ms.trust();
  const warnings = out.stderr.split('\n').filter((l) => l.startsWith('warning:'));
  t.equal(warnings.length, 1, out.stderr);
  t.match(warnings[0], /CRL #\d+ was due for update at .*crl-stale/);
});
