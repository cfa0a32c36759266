import t from 'tap';
import { Certificate, Crl, Issuer, exportPrivateKeyPem, generateKeyPair, validateCertificate, type ValidationResult } from '../../pki/index.js';
import { readFileSync } from 'node:fs';
import { makeTestCa, openssl, tempDir } from '../helpers/pki-fixtures.js';

const NOW = new Date('2026-03-01T10:00:00Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function reasonOf(r: ValidationResult): string {
  return r.ok ? 'ok' : r.reason;
}

t.test('validation', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const staff = await ca.staff('alee', 'secret');
  const base = { trustAnchors: ca.trustAnchors, intermediates: [ca.issuing.cert], at: new Date(NOW.getTime() + HOUR) };

  t.test('when a staff certificate chains to the anchor then ok with the chain leaf→root', async (t) => {
    const r = await validateCertificate(staff.cert, { ...base, usage: 'signature' });
    t.equal(r.ok, true);
    t.same(r.ok && r.chain.map((c) => c.fingerprint), [staff.cert.fingerprint, ca.issuing.cert.fingerprint, ca.root.cert.fingerprint]);
    t.equal(r.ok && r.revokedLater, undefined);
    t.equal(reasonOf(await validateCertificate(staff.cert, { ...base, usage: 'tls-client' })), 'ok');
    t.equal(reasonOf(await validateCertificate(ca.root.cert, { ...base, usage: 'ca' })), 'ok', 'the anchor itself');
    t.equal(reasonOf(await validateCertificate(ca.issuing.cert, { ...base, usage: 'ca' })), 'ok');
  });

  t.test('when checked after notAfter then expired, naming the certificate', async (t) => {
    const r = await validateCertificate(staff.cert, { ...base, at: new Date(staff.cert.notAfter.getTime() + 1000) });
    t.equal(reasonOf(r), 'expired');
    t.equal(!r.ok && r.certificate?.fingerprint, staff.cert.fingerprint);
    t.match(!r.ok && r.detail, /expired 2027-03-01T10:00:00.000Z/);
    t.equal(reasonOf(await validateCertificate(staff.cert, { ...base, at: staff.cert.notAfter })), 'ok', 'notAfter itself is still valid');
  });

  t.test('when checked before notBefore then not-yet-valid', async (t) => {
    const r = await validateCertificate(staff.cert, { ...base, at: new Date(staff.cert.notBefore.getTime() - 1000) });
    t.equal(reasonOf(r), 'not-yet-valid');
    t.equal(reasonOf(await validateCertificate(staff.cert, { ...base, at: new Date(NOW.getTime() - 60_000) })), 'ok', 'the 5 minute backdating covers a lagging clock');
  });

  t.test('when the issuing CA has expired then expired names the CA', async (t) => {
    const short = await makeTestCa('p256', () => NOW);
    // Sigil's Issuer ends every certificate with its issuer (pki/certificate-builder.ts), so the leaf that outlives its
    // CA comes from another tool: openssl, signing with the same issuing key.
    const tmp = tempDir();
    t.teardown(tmp.cleanup);
    const caKey = tmp.write('ca.key', await exportPrivateKeyPem(short.issuing.key));
    const caCert = tmp.write('ca.pem', short.issuing.cert.pem);
    const leafKey = `${tmp.dir}/leaf.key`;
    const csr = `${tmp.dir}/leaf.csr`;
    const leafPem = `${tmp.dir}/leaf.pem`;
    for (const args of [
      ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', leafKey],
      ['req', '-new', '-key', leafKey, '-subj', '/CN=X', '-out', csr],
      ['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', '7', '-days', '5000', '-extfile', tmp.write('ext.cnf', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n'), '-out', leafPem],
    ]) {
      const o = await openssl(args);
      t.equal(o.code, 0, o.stderr);
    }
    const cert = Certificate.fromPem(readFileSync(leafPem, 'utf8'));
    t.ok(cert.notAfter > short.issuing.cert.notAfter, 'the leaf outlives its CA');
    const r = await validateCertificate(cert, { trustAnchors: short.trustAnchors, intermediates: short.chain, at: new Date(short.issuing.cert.notAfter.getTime() + DAY) });
    t.equal(reasonOf(r), 'expired');
    t.equal(!r.ok && r.certificate?.fingerprint, short.issuing.cert.fingerprint);
  });

  t.test('when the certificate was revoked before `at` then revoked; after `at` then ok with revokedLater', async (t) => {
    const victim = await ca.staff('victim');
    const revokedAt = new Date(NOW.getTime() + 10 * DAY);
    const crl = await ca.issuer.createCrl({
      revoked: [{ serialNumber: victim.cert.serialNumber, revocationDate: revokedAt, reason: 'keyCompromise' }],
      crlNumber: 5n,
      thisUpdate: revokedAt,
      nextUpdate: new Date(revokedAt.getTime() + 30 * DAY),
    });
    const after = await validateCertificate(victim.cert, { ...base, crls: [crl], at: new Date(revokedAt.getTime() + HOUR), usage: 'signature' });
    t.equal(reasonOf(after), 'revoked');
    t.equal(!after.ok && after.certificate?.fingerprint, victim.cert.fingerprint);
    t.match(!after.ok && after.detail, /keyCompromise/);
    t.equal(reasonOf(await validateCertificate(victim.cert, { ...base, crls: [crl], at: revokedAt })), 'revoked', 'revocationDate itself counts as revoked');

    const before = await validateCertificate(victim.cert, { ...base, crls: [crl], at: new Date(revokedAt.getTime() - DAY), usage: 'signature' });
    t.equal(before.ok, true, 'signed before revocation still validates');
    t.same(before.ok && before.revokedLater, { serialNumber: victim.cert.serialNumber, revocationDate: revokedAt, reason: 'keyCompromise' });
    t.equal(reasonOf(await validateCertificate(staff.cert, { ...base, crls: [crl], at: new Date(revokedAt.getTime() + HOUR) })), 'ok', 'others on the same CRL unaffected');
  });

  t.test('when several CRLs exist then the one with the highest number decides', async (t) => {
    const u = await ca.staff('u');
    const old = await ca.issuer.createCrl({ revoked: [], crlNumber: 1n, thisUpdate: NOW, nextUpdate: new Date(NOW.getTime() + 30 * DAY) });
    const newer = await ca.issuer.createCrl({ revoked: [{ serialNumber: u.cert.serialNumber, revocationDate: NOW, reason: 'superseded' }], crlNumber: 2n, thisUpdate: NOW, nextUpdate: new Date(NOW.getTime() + 30 * DAY) });
    t.equal(reasonOf(await validateCertificate(u.cert, { ...base, crls: [newer, old] })), 'revoked');
    t.equal(reasonOf(await validateCertificate(u.cert, { ...base, crls: [old, newer] })), 'revoked');
  });

  t.test('when the issuing CA is revoked by the root then revoked names the CA', async (t) => {
    const rootIssuer = new Issuer({ cert: ca.root.cert, key: ca.root.key, chain: [ca.root.cert], now: () => NOW });
    const rootCrl = await rootIssuer.createCrl({ revoked: [{ serialNumber: ca.issuing.cert.serialNumber, revocationDate: NOW, reason: 'cACompromise' }], crlNumber: 1n, nextUpdate: new Date(NOW.getTime() + DAY) });
    const r = await validateCertificate(staff.cert, { ...base, crls: [rootCrl] });
    t.equal(reasonOf(r), 'revoked');
    t.equal(!r.ok && r.certificate?.fingerprint, ca.issuing.cert.fingerprint);
  });

  t.test('when the issuer is foreign or missing then unknown-issuer', async (t) => {
    const foreign = await makeTestCa('p256', () => NOW, { organization: 'Foreign Ministry' });
    const alien = await foreign.staff('alien');
    const r = await validateCertificate(alien.cert, { ...base, intermediates: [ca.issuing.cert, foreign.issuing.cert] });
    t.equal(reasonOf(r), 'unknown-issuer', 'a foreign issuing CA does not chain to our root');
    t.equal(!r.ok && r.certificate?.fingerprint, foreign.issuing.cert.fingerprint);
    t.equal(reasonOf(await validateCertificate(staff.cert, { trustAnchors: ca.trustAnchors, at: base.at })), 'unknown-issuer', 'intermediate not supplied');
    t.equal(reasonOf(await validateCertificate(foreign.root.cert, base)), 'unknown-issuer', 'a foreign self-signed root');
  });

  t.test('when a same-named CA with another key is offered then bad-signature', async (t) => {
    // Same organisation name, so the foreign issuing CA's subject equals ours but its key differs.
    const twin = await makeTestCa('p256', () => NOW);
    const twinUser = await twin.staff('twin');
    const r = await validateCertificate(twinUser.cert, base);
    t.equal(reasonOf(r), 'bad-signature');
  });

  t.test('when certificate bytes are tampered with then bad-signature', async (t) => {
    const der = new Uint8Array(staff.cert.der);
    const at = Buffer.from(der).indexOf(Buffer.from('alee'));
    der[at] = 'b'.charCodeAt(0);
    const tampered = Certificate.fromDer(der);
    t.equal(tampered.subject.login, 'blee');
    const r = await validateCertificate(tampered, base);
    t.equal(reasonOf(r), 'bad-signature');
    t.equal(!r.ok && r.certificate?.fingerprint, tampered.fingerprint);
  });

  t.test('when a CRL signature is broken then bad-signature', async (t) => {
    const crl = await ca.issuer.createCrl({ revoked: [], crlNumber: 9n, nextUpdate: new Date(NOW.getTime() + DAY) });
    const der = new Uint8Array(crl.der);
    der[der.length - 3] ^= 0x01;
    const r = await validateCertificate(staff.cert, { ...base, crls: [Crl.fromDer(der)] });
    t.equal(reasonOf(r), 'bad-signature');
    t.match(!r.ok && r.detail, /CRL signature/);
  });

  t.test('when a certificate is used for a purpose it lacks then wrong-usage', async (t) => {
    const kp = await generateKeyPair('p256');
    const tls = await ca.issuer.issueTlsServerCertificate({ publicKey: kp.publicKey, commonName: 'srv', dnsNames: ['srv'], ipAddresses: [] });
    const audit = await ca.issuer.issueAuditCertificate({ publicKey: kp.publicKey, commonName: 'audit' });
    const cases: Array<[string, Certificate, Parameters<typeof validateCertificate>[1]['usage'], string]> = [
      ['TLS server cert as signature', tls, 'signature', 'wrong-usage'],
      ['TLS server cert as tls-client', tls, 'tls-client', 'wrong-usage'],
      ['TLS server cert as tls-server', tls, 'tls-server', 'ok'],
      ['staff cert as tls-server', staff.cert, 'tls-server', 'wrong-usage'],
      ['staff cert as audit', staff.cert, 'audit', 'wrong-usage'],
      ['audit cert as signature', audit, 'signature', 'wrong-usage'],
      ['audit cert as audit', audit, 'audit', 'ok'],
      ['staff cert as ca', staff.cert, 'ca', 'wrong-usage'],
      ['CA cert as signature', ca.issuing.cert, 'signature', 'wrong-usage'],
    ];
    for (const [name, cert, usage, want] of cases) {
      const r = await validateCertificate(cert, { ...base, usage });
      t.equal(reasonOf(r), want, name);
    }
  });

  t.test('when the newest CRL is past its nextUpdate then crl-stale; when required and absent then crl-missing', async (t) => {
    const crl = await ca.issuer.createCrl({ revoked: [], crlNumber: 3n, thisUpdate: NOW, nextUpdate: new Date(NOW.getTime() + DAY) });
    const stale = await validateCertificate(staff.cert, { ...base, crls: [crl], at: new Date(NOW.getTime() + 2 * DAY) });
    t.equal(reasonOf(stale), 'crl-stale');
    t.match(!stale.ok && stale.detail, /number 3/);
    t.equal(reasonOf(await validateCertificate(staff.cert, { ...base, crls: [crl], at: new Date(NOW.getTime() + HOUR) })), 'ok', 'fresh');
    t.equal(reasonOf(await validateCertificate(staff.cert, { ...base, requireCrl: true })), 'crl-missing');
    const rootIssuer = new Issuer({ cert: ca.root.cert, key: ca.root.key, chain: [ca.root.cert], now: () => NOW });
    const rootCrl = await rootIssuer.createCrl({ revoked: [], crlNumber: 1n, nextUpdate: new Date(NOW.getTime() + DAY) });
    t.equal(reasonOf(await validateCertificate(staff.cert, { ...base, requireCrl: true, crls: [crl] })), 'crl-missing', 'root CRL still missing');
    t.equal(reasonOf(await validateCertificate(staff.cert, { ...base, requireCrl: true, crls: [crl, rootCrl] })), 'ok');
  });

  t.test('when a certificate has a critical extension Sigil does not process then wrong-usage (RFC 5280 §4.2)', async (t) => {
    const made = await openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-days', '3650',
      '-subj', '/CN=odd anchor', '-addext', '1.3.6.1.4.1.99999.1=critical,ASN1:UTF8String:must-understand',
    ]);
    t.equal(made.code, 0, made.stderr);
    const odd = Certificate.fromPem(made.stdout);
    t.same(odd.unknownCriticalExtensions, ['1.3.6.1.4.1.99999.1']);
    const r = await validateCertificate(odd, { trustAnchors: [odd] });
    t.equal(reasonOf(r), 'wrong-usage');
    t.match(!r.ok && r.detail, /1\.3\.6\.1\.4\.1\.99999\.1/);
    t.same(staff.cert.unknownCriticalExtensions, [], 'our own certificates have none');
  });

  t.test('when validation repeats then keys and signature checks are reused', async (t) => {
    const k1 = await staff.cert.publicKey();
    const k2 = await staff.cert.publicKey();
    t.equal(k1, k2, 'public key imported once');
    const p1 = staff.cert.isIssuedBy(ca.issuing.cert);
    const p2 = staff.cert.isIssuedBy(ca.issuing.cert);
    t.equal(p1, p2, 'same cached promise for the same issuer');
    for (let i = 0; i < 200; i++) {
      const r = await validateCertificate(staff.cert, { ...base, usage: 'signature' });
      if (!r.ok) t.fail('validation failed on repeat');
    }
    t.pass('200 repeated validations');
  });
});
