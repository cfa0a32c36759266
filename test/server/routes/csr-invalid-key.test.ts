/**
 * Review finding: a CSR whose EC public key is invalid (off the curve, a bad prefix byte, all
 * zeros) got 500 INTERNAL from `POST /v1/users/:login/certificates`. It is the officer's
 * malformed input: 400 MALFORMED_INPUT, as for any other CSR that does not parse, and nothing is
 * issued.
 */
import t from 'tap';
import { derToPem } from '../../../pki/index.js';
import { newKeyAndCsr, startTestAppliance } from '../../helpers/appliance.js';
import { BAD_EC_KEYS, csrWithBadEcKey } from '../../helpers/bad-ec-key.js';

t.test('when a CSR carries an invalid EC public key then the route answers 400 MALFORMED_INPUT', async (t) => {
  const a = await startTestAppliance();
  t.teardown(() => a.stop());
  const officer = { token: a.officer.token };
  const created = await a.request('/v1/users', {
    ...officer,
    body: { login: 'gina', fullName: 'Gina Bad-Key', department: 'Signals', clearance: 'confidential', role: 'staff' },
  });
  t.equal(created.status, 201, 'account created');
  const profile = a.appliance.meta.profile;
  if (profile !== 'p256' && profile !== 'p384') throw new Error(`this test needs an EC appliance profile, not ${profile}`);
  for (const how of BAD_EC_KEYS) {
    const csr = derToPem(await csrWithBadEcKey(profile, how), 'CERTIFICATE REQUEST');
    const r = await a.request('/v1/users/gina/certificates', { ...officer, body: { csr } });
    t.equal(r.status, 400, `${how}: ${JSON.stringify(r.body)}`);
    t.equal(r.body.error?.code, 'MALFORMED_INPUT', how);
    t.match(r.body.error?.message, /invalid p(256|384) public key/, `${how}: the message says what is wrong`);
  }
  t.notOk((await a.request('/v1/users/gina', officer)).body.certificate, 'nothing was issued');
  // Control: the same account gets a certificate from a valid CSR of the same profile.
  const { csrPem } = await newKeyAndCsr(profile, 'gina');
  t.equal((await a.request('/v1/users/gina/certificates', { ...officer, body: { csr: csrPem } })).status, 201);
  t.ok((await a.request('/v1/users/gina', officer)).body.certificate, 'control: an issued certificate shows on the account');
});
