/**
 * pki/spki.ts: a public key of a supported algorithm whose bytes are not a valid key is the
 * sender's malformed input (MALFORMED_INPUT), not an internal error (review: WebCrypto's DataError
 * escaped and the CSR route answered 500 INTERNAL).
 */
import t from 'tap';
import { CertificationRequest, MalformedInputError } from '../../pki/index.js';
import { BAD_EC_KEYS, csrWithBadEcKey } from '../helpers/bad-ec-key.js';
import { makeTestCa } from '../helpers/pki-fixtures.js';

const NOW = new Date('2026-03-01T10:00:00Z');
const staffParams = { fullName: 'Ann Lee', login: 'alee', organization: 'Ministry of Tests', department: 'Signals', clearance: 'confidential' as const };

for (const profile of ['p256', 'p384'] as const) {
  t.test(`when a ${profile} CSR's EC point is invalid then its key and its issuance fail with MALFORMED_INPUT`, async (t) => {
    const ca = await makeTestCa(profile, () => NOW);
    for (const how of BAD_EC_KEYS) {
      const csr = CertificationRequest.fromDer(await csrWithBadEcKey(profile, how));
      const err = await csr.publicKey().then(
        () => undefined,
        (e: unknown) => e,
      );
      t.type(err, MalformedInputError, `${how}: publicKey()`);
      t.match(err, { code: 'MALFORMED_INPUT', message: new RegExp(`invalid ${profile} public key`) }, `${how}: says what is wrong`);
      t.equal((err as Error).cause instanceof Error && (err as Error).cause?.constructor.name, 'DOMException', `${how}: WebCrypto's error kept as the cause`);
      await t.rejects(ca.issuer.issueFromCsr(csr, staffParams), { code: 'MALFORMED_INPUT' }, `${how}: issueFromCsr`);
    }
  });
}
