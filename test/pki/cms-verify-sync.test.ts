/**
 * verifyDetachedSync (pki/cms-verify-sync.ts, the worker threads' verifier) against verifyDetached:
 * for every profile and every kind of damage, both must reach the same verdict and reason, and
 * agree on label, signing time and content digest when the signature is good.
 */
import t from 'tap';
import { signDetached, verifyDetached, verifyDetachedSync, type CmsVerifyResult } from '../../pki/index.js';
import { makeTestCa } from '../helpers/pki-fixtures.js';

const enc = new TextEncoder();

function summary(r: CmsVerifyResult): Record<string, unknown> {
  if (!r.ok) return { ok: false, reason: r.reason };
  return { ok: true, label: r.label, signingTime: r.signingTime?.toISOString(), digest: Buffer.from(r.contentDigest).toString('hex'), signer: r.signer.fingerprint };
}

for (const profile of ['p256', 'p384', 'rsa3072'] as const) {
  t.test(`when ${profile} signatures are good or damaged then the sync verifier agrees with verifyDetached`, async (t) => {
    const c = await makeTestCa(profile);
    const alice = await c.staff('alice', 'secret');
    const bob = await c.staff('bob', 'secret');
    const content = enc.encode(`{"hello":"${profile}"}`);
    const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, label: 'secret' });
    const changedContent = content.slice();
    changedContent[2] ^= 1;
    const cases: [string, Uint8Array, Uint8Array, typeof alice.cert][] = [
      ['good', sig, content, alice.cert],
      ['content changed', sig, changedContent, alice.cert],
      ['other expected signer', sig, content, bob.cert],
      ['truncated DER', sig.subarray(0, sig.length - 7), content, alice.cert],
      ['random bytes', new Uint8Array(200).fill(0x30), content, alice.cert],
      ['empty', new Uint8Array(0), content, alice.cert],
    ];
    // Every single-byte flip in the signature value's last 40 bytes (the s integer, or RSA's tail).
    for (let i = 1; i <= 40; i++) {
      const bad = sig.slice();
      bad[bad.length - i]! ^= 0x01;
      cases.push([`byte -${i} flipped`, bad, content, alice.cert]);
    }
    for (const [name, s, m, signer] of cases) {
      const async = summary(await verifyDetached(s, m, { expectedSigner: signer }));
      const sync = summary(verifyDetachedSync(s, m, { expectedSigner: signer }));
      t.same(sync, async, `${name}: same verdict (${String(async.ok)} ${String(async.reason ?? '')})`);
    }
    t.equal(summary(verifyDetachedSync(sig, content, { expectedSigner: alice.cert })).ok, true, 'the good one verifies');
    t.equal(summary(verifyDetachedSync(sig, changedContent, { expectedSigner: alice.cert })).reason, 'digest-mismatch');
  });
}
