/**
 * Many ECDSA signatures through signDetached → verifyDetached. DER integers drop leading zero bytes
 * (r or s shorter than the curve) and add one before a high bit, each in about one signature of a
 * hundred or two; a wrong conversion to WebCrypto's fixed-width r||s fails exactly those. The test
 * counts that both shapes really occurred, so it cannot pass without exercising them.
 */
import t, { type Test } from 'tap';
import * as asn1js from 'asn1js';
import { signDetached, verifyDetached } from '../../pki/index.js';
import { ecdsaDerToP1363 } from '../../pki/cms-algorithms.js';
import { parseSignedData } from '../../pki/cms-parse.js';
import { makeTestCa } from '../helpers/pki-fixtures.js';

/** Content lengths of r and s in the signature's ECDSA-Sig-Value. */
function integerLengths(sig: Uint8Array): number[] {
  const value = asn1js.fromBER(parseSignedData(sig).signer.signature).result as asn1js.Sequence;
  return value.valueBlock.value.map((i) => (i as asn1js.Integer).valueBlock.valueHexView.length);
}

async function roundTrips(t: Test, profile: 'p256' | 'p384', count: number, minimumShort: number, maxCount: number): Promise<void> {
  const size = profile === 'p256' ? 32 : 48;
  const c = await makeTestCa(profile);
  const alice = await c.staff('alice');
  let failures = 0;
  let short = 0; // r or s below `size` bytes: leading zeros were stripped
  let padded = 0; // r or s of size+1 bytes: a 0x00 was added before a high bit
  let done = 0;
  const inFlight = 16;
  while (done < count || (short < minimumShort && done < maxCount)) {
    const batch = Array.from({ length: inFlight }, async (_, i) => {
      const content = new TextEncoder().encode(`message ${done + i} of ${profile}`);
      const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, label: 'secret' });
      const r = await verifyDetached(sig, content, { expectedSigner: alice.cert });
      if (!r.ok) failures++;
      const lengths = integerLengths(sig);
      if (lengths.some((l) => l < size)) short++;
      if (lengths.some((l) => l > size)) padded++;
    });
    await Promise.all(batch);
    done += inFlight;
  }
  t.equal(failures, 0, `${done} ${profile} signatures verify`);
  t.ok(short >= minimumShort, `${short} signature(s) with a short r or s were among them`);
  t.ok(padded > 0, `${padded} signature(s) with a zero-padded r or s were among them`);
}

t.test('when 1,000 P-256 signatures round-trip then every one verifies, including short and padded r, s', (t) => roundTrips(t, 'p256', 1008, 1, 4000));

t.test('when 200 P-384 signatures round-trip then every one verifies', (t) => roundTrips(t, 'p384', 208, 0, 208));

t.test('when ECDSA-Sig-Value integers have odd shapes then conversion pads, strips or refuses', async (t) => {
  const der = (r: number[], s: number[]) =>
    new Uint8Array(new asn1js.Sequence({ value: [new asn1js.Integer({ valueHex: new Uint8Array(r) }), new asn1js.Integer({ valueHex: new Uint8Array(s) })] }).toBER(false));
  t.same([...ecdsaDerToP1363(der([1], [0x00, 0x80]), 2)!], [0, 1, 0, 0x80], 'short r padded, s sign byte stripped');
  t.same([...ecdsaDerToP1363(der([0, 0, 5], [7]), 2)!], [0, 5, 0, 7], 'redundant zeros stripped');
  t.equal(ecdsaDerToP1363(der([1, 2, 3], [1]), 2), undefined, 'too long for the curve');
  t.equal(ecdsaDerToP1363(der([0x80], [1]), 2), undefined, 'negative');
  t.equal(ecdsaDerToP1363(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]), 2), undefined, 'one integer only');
  t.equal(ecdsaDerToP1363(new Uint8Array([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01]), 2), undefined, 'truncated');
});
