/**
 * The offline package check (client-cli/commands/evidence/package.ts) with a test CA whose clock
 * is pinned, so validity dates and CRL updates are exact: a package is judged at the verifier's
 * clock, never at a time the package or the signer claims — revoked now, expired now, or a stale
 * CRL fail however early message.json or signingTime say the message was made; a current CRL given
 * beside the package is used; and `verifyMessage` without a receipt time judges now, not at the
 * signer's signingTime. The issuing CA is judged the same way against the root's CRL
 * (root-crl.pem, or one given beside): revoked there, the package is revoked; past its next
 * update, crl-stale; per issuer the highest CRL number wins; without one, a note says so.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createRootCrl, signDetached, type Certificate, type Crl, type CryptoKey } from '../../../../pki/index.js';
import { buildHeader } from '../../../../client-cli/messaging/header.js';
import { verifyMessage } from '../../../../client-cli/messaging/verify.js';
import { verifyPackage } from '../../../../client-cli/commands/evidence/package.js';
import { makeTestCa } from '../../../helpers/pki-fixtures.js';
import { tmpDir } from '../../../helpers/tmp.js';

const T0 = new Date('2026-03-02T08:00:00Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const clock = T0;
const ca = await makeTestCa('p256', () => clock);
const cmal = await ca.staff('cmal', 'secret');
const shortLived = await ca.staff('dshort', 'secret', { validityDays: 1 });
const pinnedPem = ca.root.cert.pem;
const dir = tmpDir(t, 'sigil-pkg-');
const CONV = 'c'.repeat(22);

const crl = (n: bigint, o: { revoked?: Certificate; revokedAt?: Date; thisUpdate: Date; nextUpdate: Date }): Promise<Crl> =>
  ca.issuer.createCrl({
    revoked: o.revoked ? [{ serialNumber: o.revoked.serialNumber, revocationDate: o.revokedAt as Date, reason: 'keyCompromise' }] : [],
    crlNumber: n,
    thisUpdate: o.thisUpdate,
    nextUpdate: o.nextUpdate,
  });

/** A package as `sigil export` writes it, signed at `when` and claiming receipt at `when`. */
async function writePackage(name: string, who: { cert: Certificate; key: CryptoKey }, when: Date, packageCrl: Crl): Promise<string> {
  const out = join(dir, name);
  mkdirSync(out, { recursive: true });
  const login = who.cert.subject.login as string;
  const { text, header } = await buildHeader({ conversation: CONV, sender: login, label: 'secret', body: new TextEncoder().encode('hello'), sentAt: when });
  const sig = await signDetached({ content: new TextEncoder().encode(text), signerCert: who.cert, signerKey: who.key, label: 'secret', signingTime: when });
  writeFileSync(join(out, 'header.json'), text);
  writeFileSync(join(out, 'signature.der'), sig);
  writeFileSync(join(out, 'chain.pem'), [who.cert, ...ca.chain].map((c) => c.pem.trimEnd() + '\n').join(''));
  writeFileSync(join(out, 'crl.pem'), packageCrl.pem);
  writeFileSync(join(out, 'message.json'), JSON.stringify({ id: header.id, conversation: CONV, seq: 1, receivedAt: when.toISOString() }) + '\n');
  return out;
}

const REVOKED_AT = new Date(T0.getTime() + 2 * HOUR);
const sentBefore = new Date(T0.getTime() + HOUR);
const crlRevoked = await crl(2n, { revoked: cmal.cert, revokedAt: REVOKED_AT, thisUpdate: new Date(T0.getTime() + 3 * HOUR), nextUpdate: new Date(T0.getTime() + 7 * DAY) });

t.test('when the signer is revoked now then a package claiming receipt before the revocation is not valid, with or without message.json', async (t) => {
  const pkg = await writePackage('revoked', cmal, sentBefore, crlRevoked);
  const now = new Date(T0.getTime() + 4 * HOUR);
  const r = await verifyPackage(pkg, { pinnedPem, now });
  t.match(r, { v: { ok: false, reason: 'revoked', detail: /keyCompromise/ }, claimedReceivedAt: sentBefore.toISOString(), note: /cannot prove the message reached the appliance before the revocation; sigil verify \S+ against the appliance/ });
  t.same(r.checkedAt, now);
  rmSync(join(pkg, 'message.json'));
  const bare = await verifyPackage(pkg, { pinnedPem, now });
  t.match(bare, { v: { ok: false, reason: 'revoked' } });
  t.equal(bare.claimedReceivedAt, undefined);
});

t.test('when the certificate has expired then a receivedAt inside its validity does not make the package valid', async (t) => {
  const fresh = await crl(3n, { thisUpdate: new Date(T0.getTime() + 4 * HOUR), nextUpdate: new Date(T0.getTime() + 9 * DAY) });
  const pkg = await writePackage('expired', shortLived, sentBefore, fresh);
  const r = await verifyPackage(pkg, { pinnedPem, now: new Date(T0.getTime() + 3 * DAY) });
  t.match(r, { v: { ok: false, reason: 'expired' }, note: /cannot prove the message reached the appliance while the certificate was valid/ });
  const inTime = await verifyPackage(pkg, { pinnedPem, now: new Date(T0.getTime() + 5 * HOUR) });
  t.match(inTime, { v: { ok: true, signer: 'dshort' } }, 'the same package verifies while the certificate is valid');
  t.notOk(inTime.note);
});

t.test('when the package CRL is past its next update then it is crl-stale; a current CRL given beside it is used', async (t) => {
  // An old CRL from before the revocation, as a forger holding the stolen key would put in.
  const old = await crl(1n, { thisUpdate: T0, nextUpdate: new Date(T0.getTime() + DAY) });
  const pkg = await writePackage('stale', cmal, sentBefore, old);
  const now = new Date(T0.getTime() + 2 * DAY);
  const r = await verifyPackage(pkg, { pinnedPem, now });
  t.match(r, { v: { ok: false, reason: 'crl-stale' }, note: /--crl FILE/ });
  const current = await verifyPackage(pkg, { pinnedPem, now, crlPems: [crlRevoked.pem] });
  t.match(current, { v: { ok: false, reason: 'revoked' } }, 'the newest CRL decides, not the package’s');
  const goodSigner = await ca.staff('alee', 'secret');
  const goodPkg = await writePackage('stale-good', goodSigner, sentBefore, old);
  const good = await verifyPackage(goodPkg, { pinnedPem, now, crlPems: [crlRevoked.pem] });
  t.match(good, { v: { ok: true, signer: 'alee' }, claimedReceivedAt: sentBefore.toISOString() });
});

t.test('when verifyMessage has no receipt time then it judges now, not the signer’s signingTime', async (t) => {
  const { text, header } = await buildHeader({ conversation: CONV, sender: 'cmal', label: 'secret', body: new TextEncoder().encode('x'), sentAt: sentBefore });
  const sig = await signDetached({ content: new TextEncoder().encode(text), signerCert: cmal.cert, signerKey: cmal.key, label: 'secret', signingTime: sentBefore });
  const m = { id: header.id, conversation: CONV, header: text, signature: Buffer.from(sig).toString('base64'), body: null, receivedAt: '' };
  const trust = { anchors: ca.trustAnchors, intermediates: [ca.issuing.cert], crls: [crlRevoked] };
  const v = await verifyMessage(m, trust, { now: () => new Date(T0.getTime() + 4 * HOUR) });
  t.match(v, { ok: false, reason: 'revoked' });
  const online = await verifyMessage({ ...m, receivedAt: sentBefore.toISOString() }, trust);
  t.match(online, { ok: true, revokedLater: { reason: 'keyCompromise' } }, 'a receipt time from the appliance still counts');
});

/** The root's CRL, made with the root key at a pinned time. */
const rootCrl = (n: bigint, o: { revokeIssuingAt?: Date; thisUpdate: Date; validityDays: number }): Promise<Crl> =>
  createRootCrl({
    cert: ca.root.cert,
    key: ca.root.key,
    crlNumber: n,
    thisUpdate: o.thisUpdate,
    validityDays: o.validityDays,
    revoked: o.revokeIssuingAt ? [{ serialNumber: ca.issuing.cert.serialNumber, revocationDate: o.revokeIssuingAt, reason: 'keyCompromise' }] : [],
  });

t.test('when the root CRL revokes the issuing CA then the package is revoked, naming the issuing CA; the newest root CRL decides', async (t) => {
  const signer = await ca.staff('eroot', 'secret');
  const fresh = await crl(4n, { thisUpdate: T0, nextUpdate: new Date(T0.getTime() + 9 * DAY) });
  const now = new Date(T0.getTime() + 4 * HOUR);
  const clean = await rootCrl(1n, { thisUpdate: T0, validityDays: 30 });
  const revoking = await rootCrl(2n, { thisUpdate: new Date(T0.getTime() + 3 * HOUR), validityDays: 30, revokeIssuingAt: new Date(T0.getTime() + 3 * HOUR) });
  const pkg = await writePackage('root-clean', signer, sentBefore, fresh);
  writeFileSync(join(pkg, 'root-crl.pem'), clean.pem);
  const ok = await verifyPackage(pkg, { pinnedPem, now });
  t.match(ok, { v: { ok: true }, issuingCa: { checked: true, rootCrlNumber: '1', rootCrlFrom: 'root-crl.pem', stale: false } });
  t.notOk(ok.issuingCa.checked && ok.issuingCa.revoked);
  const r = await verifyPackage(pkg, { pinnedPem, now, crlPems: [revoking.pem], crlNames: ['root-2.pem'] });
  t.match(r, { v: { ok: false, reason: 'revoked', detail: /^the issuing CA .* \(serial [0-9a-f]+\) is revoked by the root CRL of .* \(number 2, root-2\.pem\): revoked .* \(keyCompromise\)$/ }, note: /revoked issuing CA/ });
  t.match(r.issuingCa, { checked: true, rootCrlNumber: '2', revoked: { reason: 'keyCompromise', serialNumber: ca.issuing.cert.serialNumber } });
  // The other way round: the package holds #2, an older #1 given beside does not undo it.
  writeFileSync(join(pkg, 'root-crl.pem'), revoking.pem);
  t.match(await verifyPackage(pkg, { pinnedPem, now, crlPems: [clean.pem] }), { v: { ok: false, reason: 'revoked' }, issuingCa: { rootCrlNumber: '2' } });
  // A revocation after `now` does not count yet, as for the signer.
  t.match(await verifyPackage(pkg, { pinnedPem, now: new Date(T0.getTime() + 2 * HOUR) }), { v: { ok: true } });
  // A pin that holds the issuing CA too (pki's chain then ends at it) still checks it.
  t.match(await verifyPackage(pkg, { pinnedPem: pinnedPem + ca.issuing.cert.pem, now }), { v: { ok: false, reason: 'revoked', detail: /the issuing CA/ } });
});

t.test('when the root CRL is past its next update then the package is crl-stale, as with a stale issuing CRL; a current one given beside is used', async (t) => {
  const signer = await ca.staff('froot', 'secret');
  const fresh = await crl(5n, { thisUpdate: T0, nextUpdate: new Date(T0.getTime() + 9 * DAY) });
  const old = await rootCrl(1n, { thisUpdate: T0, validityDays: 1 });
  const pkg = await writePackage('root-stale', signer, sentBefore, fresh);
  writeFileSync(join(pkg, 'root-crl.pem'), old.pem);
  const now = new Date(T0.getTime() + 2 * DAY);
  const r = await verifyPackage(pkg, { pinnedPem, now });
  t.match(r, { v: { ok: false, reason: 'crl-stale', detail: /root CRL .*number 1.* was due for update/ }, note: /root CRL is past its next update.*--crl FILE \(sigil crl fetch --root --out FILE\)/, issuingCa: { checked: true, stale: true } });
  const current = await rootCrl(2n, { thisUpdate: new Date(T0.getTime() + DAY + HOUR), validityDays: 30 });
  t.match(await verifyPackage(pkg, { pinnedPem, now, crlPems: [current.pem] }), { v: { ok: true }, issuingCa: { rootCrlNumber: '2', stale: false } });
});

t.test('when the package has no root CRL then it verifies as before and says the issuing CA was not checked; a bad root CRL is refused', async (t) => {
  const signer = await ca.staff('groot', 'secret');
  const fresh = await crl(6n, { thisUpdate: T0, nextUpdate: new Date(T0.getTime() + 9 * DAY) });
  const pkg = await writePackage('root-none', signer, sentBefore, fresh);
  const now = new Date(T0.getTime() + 4 * HOUR);
  t.match(await verifyPackage(pkg, { pinnedPem, now }), { v: { ok: true }, issuingCa: { checked: false, why: 'no root CRL in the package' } });
  writeFileSync(join(pkg, 'root-crl.pem'), fresh.pem);
  await t.rejects(verifyPackage(pkg, { pinnedPem, now }), { code: 'NOT_TRUSTED', message: /root CRL root-crl\.pem .*issued by .*not by the pinned root/ });
  const other = await makeTestCa('p256', () => clock);
  writeFileSync(join(pkg, 'root-crl.pem'), (await createRootCrl({ cert: other.root.cert, key: other.root.key, crlNumber: 9n, thisUpdate: T0 })).pem);
  await t.rejects(verifyPackage(pkg, { pinnedPem, now }), { code: 'NOT_TRUSTED' });
});
