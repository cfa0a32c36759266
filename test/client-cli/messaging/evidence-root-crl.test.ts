/**
 * The root CRL in `sigil verify --package` and `sigil crl fetch --root`, with the built CLI against
 * a real appliance: a package's issuing CA is checked against its root-crl.pem (signed by the
 * pinned root, else refused); after the root key ceremony revokes the issuing CA
 * (`sigil-server sign-root-crl --revoke-issuing --yes`) the package is refused as revoked, whether
 * the new root CRL comes in a re-export or with --crl — as `openssl cms -verify -crl_check_all`
 * refuses it; a package without root-crl.pem verifies as before with one note; `crl fetch --root`
 * prints the root CRL, and says in one line when the appliance has none or serves one no pinned
 * root signed.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createRootCrl, Crl } from '../../../pki/index.js';
import { OPENSSL_VERIFY } from '../../../client-cli/commands/evidence/export.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { makeTestCa } from '../../helpers/pki-fixtures.js';
import { runServer } from '../../helpers/server-process.js';
import { tmpDir } from '../../helpers/tmp.js';
import { appRootCrl, forgetKeptRootCrl } from './helpers/root-crl.js';
import { cliUser } from './helpers/users.js';

const { app } = await httpHarness(t, {
  // A server that has not yet noticed the ceremony (its watch looks every 10 s): readers must refuse
  // what it accepted in that window. The server's own refusal: test/server/certs/issuing-ca-revoked.test.ts.
  rootCrlCheckEveryMs: 24 * 3_600_000,
});
const dir = tmpDir(t, 'sigil-cli-evroot-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');
const rootCrl = appRootCrl(app);

const sent = await alee.cli.json(['send', 'bkim'], { input: 'The convoy leaves at 06:00' });
const ev = join(dir, 'ev');
await bkim.cli.json(['export', sent.id, '--out', ev]);
const servedRootCrl = () => app.request('/v1/crl/root').then((r) => r.body as { crl: string; crlNumber: number });

/** A copy of the package `ev` under `name`, changed by `change`. */
function variant(name: string, change: (out: string) => void): string {
  const out = join(dir, name);
  cpSync(ev, out, { recursive: true });
  change(out);
  return out;
}

const ISSUING_REVOKED = /^!! VERIFICATION FAILED: revoked: the issuing CA .+ \(serial [0-9a-f]+\) is revoked by the root CRL of .+ \(number \d+, .+\): revoked \d{4}-\S+ \(keyCompromise\)$/m;

await t.test('when a package from an appliance with a root CRL is verified then the issuing CA is checked against it, and the output says so', async (t) => {
  const human = await bkim.cli.run(['verify', '--package', ev]);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /^verdict: +valid$/m);
  t.match(human.stdout, /^issuing CA: +not revoked \(checked against the root CRL #1 from root-crl\.pem, next update \d{4}-\S+\)$/m);
  t.equal(human.stderr, '', 'no note: the whole chain was checked');
  const j = await bkim.cli.json(['verify', '--package', ev]);
  t.match(j, { verified: true, signer: 'alee', issuingCa: { checked: true, rootCrlNumber: '1', rootCrlFrom: 'root-crl.pem', stale: false, revoked: null } });
});

await t.test('when root-crl.pem is not signed by the pinned root then the package is refused with one line naming it', async (t) => {
  // The issuing CA's CRL under the root CRL's name: genuine, but not the root's.
  const swapped = variant('ev-swapped', (out) => writeFileSync(join(out, 'root-crl.pem'), readFileSync(join(out, 'crl.pem'))));
  const r = await bkim.cli.run(['verify', '--package', swapped]);
  t.equal(r.code, 3, r.stderr);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, /^error: the root CRL root-crl\.pem is not trusted by the pinned CA: it is issued by .+, not by the pinned root /);
  t.equal(r.stdout, '', 'no verdict printed');

  // A root CRL from another appliance (another root).
  const other = await makeTestCa('p256');
  const foreign = await createRootCrl({ cert: other.root.cert, key: other.root.key, crlNumber: 7n });
  const alien = variant('ev-foreign', (out) => writeFileSync(join(out, 'root-crl.pem'), foreign.pem));
  const a = await bkim.cli.run(['verify', '--package', alien]);
  t.equal(a.code, 3, a.stderr);
  t.match(a.stderr, /^error: the root CRL root-crl\.pem is not trusted by the pinned CA: it is issued by .+, not by the pinned root/);
  const viaFlag = await bkim.cli.run(['verify', '--package', ev, '--crl', join(alien, 'root-crl.pem')]);
  t.equal(viaFlag.code, 3, 'the same with --crl');

  // The root's CRL under crl.pem would leave the signer unchecked: refused too.
  const rootAsLeaf = variant('ev-root-as-leaf', (out) => writeFileSync(join(out, 'crl.pem'), readFileSync(join(out, 'root-crl.pem'))));
  const l = await bkim.cli.run(['verify', '--package', rootAsLeaf]);
  t.equal(l.code, 3, l.stderr);
  t.match(l.stderr, /^error: crl\.pem is not trusted by the pinned CA: it is the root's CRL/);
});

await t.test('when the package has no root-crl.pem then it verifies as before, with one note that the issuing CA was not checked', async (t) => {
  const bare = variant('ev-no-root-crl', (out) => rmSync(join(out, 'root-crl.pem')));
  // A workstation that kept the appliance's root CRL checks against that one instead.
  const withKept = await bkim.cli.run(['verify', '--package', bare]);
  t.equal(withKept.code, 0, withKept.stderr);
  t.match(withKept.stdout, /^issuing CA: +not revoked \(checked against the root CRL #1 from this profile, next update \d{4}-\S+\)$/m);
  forgetKeptRootCrl(t, bkim.cli);
  const r = await bkim.cli.run(['verify', '--package', bare]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^verdict: +valid$/m);
  t.match(r.stdout, /^issuing CA: +revocation not checked \(no root CRL in the package\)$/m);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one note line');
  t.match(r.stderr, /^note: the issuing CA's revocation was not checked: no root CRL in the package/);
  const j = await bkim.cli.json(['verify', '--package', bare]);
  t.match(j, { verified: true, issuingCa: { checked: false, why: 'no root CRL in the package' } });
});

await t.test('when crl fetch --root is run then it prints the root CRL checked against the pinned root', async (t) => {
  const served = await servedRootCrl();
  const r = await bkim.cli.run(['crl', 'fetch', '--root']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, served.crl.trimEnd() + '\n');
  t.match(r.stderr, /^root CRL #1 from .+, 0 revoked, next update \d{4}-/);
  const out = join(dir, 'root.crl.pem');
  const j = await bkim.cli.json(['crl', 'fetch', '--root', '--out', out]);
  t.match(j, { crlNumber: '1', revoked: 0, file: out });
  t.equal(readFileSync(out, 'utf8'), served.crl);
  t.equal(readFileSync(join(bkim.cli.profile, 'root-crl.pem'), 'utf8'), served.crl, 'the profile keeps it');
  t.equal(Crl.fromPem(readFileSync(out, 'utf8')).issuerString, Crl.fromPem(readFileSync(rootCrl.file, 'utf8')).issuerString);
  // Without --root: still the issuing CA's.
  const issuing = await bkim.cli.run(['crl', 'fetch']);
  t.equal(issuing.code, 0, issuing.stderr);
  t.not(issuing.stdout, r.stdout);
  const help = await bkim.cli.run(['crl', 'fetch', '--help']);
  t.match(help.stdout, /--root/);
  t.match(help.stdout, /sigil crl fetch --root --out root\.crl\.pem/);
  const vhelp = await bkim.cli.run(['verify', '--help']);
  t.match(vhelp.stdout, /sigil crl fetch --root --out root\.crl\.pem && sigil verify --package/);
});

await t.test('when the appliance has no root CRL then crl fetch --root says so in one line and exits non-zero', async (t) => {
  rootCrl.remove(t);
  const r = await bkim.cli.run(['crl', 'fetch', '--root']);
  t.equal(r.code, 1, r.stderr);
  t.equal(r.stdout, '');
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, /^error: .*the appliance has no root CRL yet .*sigil-server sign-root-crl/);
});

await t.test('when the appliance\'s root CRL file is damaged then crl fetch --root says so, not that it has none', async (t) => {
  rootCrl.replace(t, 'not a CRL\n');
  const r = await bkim.cli.run(['crl', 'fetch', '--root']);
  t.equal(r.code, 1, r.stderr);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, /^error: .*root CRL \(ca\/root-crl\.pem\) is not a readable CRL.*sigil-server sign-root-crl/);
  t.notMatch(r.stderr, /no root CRL yet|MALFORMED_INPUT|not DER/);
});

await t.test('when the root CRL the profile kept is not signed by the pinned root then verify --package ignores it with a warning', async (t) => {
  forgetKeptRootCrl(t, bkim.cli);
  const other = await makeTestCa('p256');
  const foreign = (await createRootCrl({ cert: other.root.cert, key: other.root.key, crlNumber: 50n })).pem;
  writeFileSync(join(bkim.cli.profile, 'root-crl.pem'), foreign);
  const r = await bkim.cli.run(['verify', '--package', ev]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^issuing CA: +not revoked \(checked against the root CRL #1 from root-crl\.pem/m);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one warning line');
  t.match(r.stderr, /^warning: the root CRL kept in this profile is not trusted by the pinned CA: it is issued by .+; it is ignored/);
  t.equal(readFileSync(join(bkim.cli.profile, 'root-crl.pem'), 'utf8'), foreign, 'offline, nothing replaces it');
});

await t.test('when the appliance serves a root CRL another root signed then crl fetch --root refuses it in one line and keeps nothing', async (t) => {
  const kept = join(bkim.cli.profile, 'root-crl.pem');
  const keptBefore = readFileSync(kept, 'utf8');
  const other = await makeTestCa('p256');
  rootCrl.replace(t, (await createRootCrl({ cert: other.root.cert, key: other.root.key, crlNumber: 99n })).pem);
  const out = join(dir, 'foreign-root.crl.pem');
  const r = await bkim.cli.run(['crl', 'fetch', '--root', '--out', out]);
  t.equal(r.code, 3, r.stderr);
  t.equal(r.stdout, '');
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, /^error: the root CRL from the appliance is not trusted by the pinned CA: it is issued by .+, not by the pinned root /);
  t.notOk(existsSync(out), 'nothing written to --out');
  t.equal(readFileSync(kept, 'utf8'), keptBefore, 'the profile keeps the root CRL it had');
});

await t.test('when the root key ceremony revokes the issuing CA then the package is refused as revoked, with the new CRL given or re-exported', async (t) => {
  const passFile = join(dir, 'root-pass.txt');
  writeFileSync(passFile, `${app.init.ca.rootKeyPassphrase}\n`, { mode: 0o600 });
  const c = await runServer(['sign-root-crl', '--data', app.dataDir, '--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile, '--revoke-issuing', '--yes', '--json'], {}, 90_000);
  t.equal(c.code, 0, c.stderr);
  t.match(JSON.parse(c.stdout), { issuingRevoked: true, crlNumber: 2 });

  // The old package (root CRL #1, clean) with the new root CRL fetched afterwards.
  const newRoot = join(dir, 'root-2.crl.pem');
  const f = await bkim.cli.json(['crl', 'fetch', '--root', '--out', newRoot]);
  t.match(f, { crlNumber: '2', revoked: 1 });
  const withFlag = await bkim.cli.run(['verify', '--package', ev, '--crl', newRoot]);
  t.equal(withFlag.code, 3, 'exit 3, as for a revoked signer');
  t.match(withFlag.stdout, ISSUING_REVOKED);
  t.match(withFlag.stdout, /^!! a revoked issuing CA vouches for no certificate it issued/m);
  t.match(withFlag.stdout, /^issuing CA: +REVOKED \d{4}-\S+ \(keyCompromise\) by the root CRL #2 from .*root-2\.crl\.pem/m);
  t.notMatch(withFlag.stdout, /verdict: +valid/);
  t.match(withFlag.stderr, /^error: message \S+ failed verification: revoked: the issuing CA/);
  // The newest per issuer wins, in either order, with the issuing CA's CRL beside it.
  const issuingNow = join(dir, 'issuing.crl.pem');
  await bkim.cli.json(['crl', 'fetch', '--out', issuingNow]);
  const both = await bkim.cli.run(['verify', '--package', ev, '--crl', issuingNow, '--crl', newRoot, '--json']);
  t.equal(both.code, 3);
  t.match(JSON.parse(both.stdout), { verified: false, reason: 'revoked', detail: /the issuing CA .* revoked by the root CRL .*number 2/, issuingCa: { checked: true, rootCrlNumber: '2', revoked: { reason: 'keyCompromise' } } });
  t.equal(readFileSync(join(bkim.cli.profile, 'root-crl.pem'), 'utf8'), readFileSync(newRoot, 'utf8'), 'crl fetch --root kept #2 in the profile');
  await t.test('a profile that kept nothing', async (t) => {
    forgetKeptRootCrl(t, bkim.cli);
    const older = await bkim.cli.run(['verify', '--package', ev, '--crl', join(ev, 'root-crl.pem')]);
    t.equal(older.code, 0, 'root CRL #1 alone (twice) still says not revoked');
  });

  // Re-exported: the package carries root CRL #2 itself.
  const ev2 = join(dir, 'ev-after');
  const ex = await bkim.cli.run(['export', sent.id, '--out', ev2, '--json']);
  t.equal(ex.code, 0, ex.stderr);
  const r = await bkim.cli.run(['verify', '--package', ev2]);
  t.equal(r.code, 3, r.stdout);
  t.match(r.stdout, ISSUING_REVOKED);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one error line');
  // openssl agrees.
  const o = spawnSync('openssl', OPENSSL_VERIFY.split(' ').slice(1), { cwd: ev2, encoding: 'utf8' });
  t.not(o.status, 0);
  t.match(o.stderr, /certificate revoked/);
});

await t.test('when the profile kept the root CRL that revokes the issuing CA then a package made before it is judged by that one', async (t) => {
  // crl fetch --root and the re-export above read root CRL #2 from the appliance, so bkim's
  // profile keeps it; the package `ev` still carries #1, and no --crl is given.
  const r = await bkim.cli.run(['verify', '--package', ev]);
  t.equal(r.code, 3, r.stdout);
  t.match(r.stdout, ISSUING_REVOKED);
  t.match(r.stdout, /^issuing CA: +REVOKED \d{4}-\S+ \(keyCompromise\) by the root CRL #2 from this profile/m);
  // A kept file no pinned root signed is not a root CRL to judge by: the package's #1 is.
  const other = await makeTestCa('p256');
  const kept = join(bkim.cli.profile, 'root-crl.pem');
  const was = readFileSync(kept, 'utf8');
  t.teardown(() => writeFileSync(kept, was));
  writeFileSync(kept, (await createRootCrl({ cert: other.root.cert, key: other.root.key, crlNumber: 99n })).pem);
  const foreign = await bkim.cli.run(['verify', '--package', ev]);
  t.equal(foreign.code, 0, foreign.stderr);
  t.match(foreign.stdout, /^issuing CA: +not revoked \(checked against the root CRL #1 from root-crl\.pem/m);
});

await t.test('when crl fetch --root gets a root CRL older than the one the profile kept then it says so, and keeps the newer', async (t) => {
  const keptFile = join(bkim.cli.profile, 'root-crl.pem');
  const newer = readFileSync(keptFile, 'utf8');
  const { cert, key } = await rootCrl.rootSigner();
  rootCrl.replace(t, (await createRootCrl({ cert, key, crlNumber: 1n })).pem);
  const r = await bkim.cli.run(['crl', 'fetch', '--root']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /^warning: the appliance served root CRL #1, older than #2: an appliance restored from an old backup, or one that is not the appliance/m);
  t.match(r.stderr, /^root CRL #1 from /m);
  t.equal(readFileSync(keptFile, 'utf8'), newer, 'the newer one stays kept');
});
