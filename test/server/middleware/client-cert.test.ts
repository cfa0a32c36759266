/**
 * The app outside the TLS server (app.request, no socket): the client-certificate middleware
 * refuses every route with CLIENT_CERT_REQUIRED, so no route is reachable without TLS.
 */
import t from 'tap';
import { createApp } from '../../../server/index.js';
import { startTestAppliance } from '../../helpers/appliance.js';

t.test('when a request arrives without a TLS socket then 401 CLIENT_CERT_REQUIRED', async (t) => {
  const a = await startTestAppliance({ skipOfficerFirstLogin: true });
  t.teardown(() => a.stop());
  const app = createApp(a.deps);
  for (const path of ['/v1/health', '/v1/auth/challenge', '/v1/users', '/v1/unknown']) {
    const r = await app.request(path, { method: 'POST', body: '{}' });
    t.equal(r.status, 401, path);
    const body = (await r.json()) as { error: { code: string; requestId: string } };
    t.equal(body.error.code, 'CLIENT_CERT_REQUIRED');
    t.equal(body.error.requestId, r.headers.get('x-request-id'));
  }
});

t.test('when many sockets present the same certificate then it is parsed once and each socket keeps only its fingerprint', async (t) => {
  const { X509Certificate } = await import('node:crypto');
  const { peerCertificate } = await import('../../../server/middleware/client-cert.js');
  const { makeTestCa } = await import('../../helpers/pki-fixtures.js');
  const ca = await makeTestCa('p256');
  const alice = await ca.staff('alice', 'secret');
  const bob = await ca.staff('bob', 'secret');
  let peerReads = 0;
  // The one method the middleware calls on a TLSSocket, answering a real X.509 certificate.
  const socketOf = (der: Uint8Array) => ({
    getPeerX509Certificate: () => {
      peerReads++;
      return new X509Certificate(der);
    },
  });
  const sockets = Array.from({ length: 20 }, () => socketOf(alice.cert.der));
  const entries = sockets.map((s) => peerCertificate(s)!);
  t.equal(new Set(entries).size, 1, 'one parsed entry shared by all sockets');
  t.equal(entries[0]!.fingerprint, alice.cert.fingerprint);
  peerReads = 0;
  for (const s of sockets) t.equal(peerCertificate(s), entries[0], 'a later request of the socket hits the cache');
  t.equal(peerReads, 0, 'no certificate read again from the socket');
  const b = peerCertificate(socketOf(bob.cert.der))!;
  t.equal(b.fingerprint, bob.cert.fingerprint, 'another certificate is its own entry');
  t.equal(peerCertificate({}), undefined, 'not a TLS socket');
});
