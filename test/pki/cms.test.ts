/**
 * CMS SignedData with ESS labels (pki/cms-sign.ts, cms-verify.ts, cms-inspect.ts): round trips per
 * profile, DER order of the signed attributes, labels, and every failure reason and error code, on
 * real keys from the test CA.
 */
import t from 'tap';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import {
  Issuer,
  createCaHierarchy,
  CLEARANCES,
  CLASSIFICATION_VALUE,
  SIGIL_SECURITY_POLICY_OID,
  generateKeyPair,
  signDetached,
  verifyDetached,
  inspectSignature,
  type CryptoKey,
} from '../../pki/index.js';
import { makeTestCa, type TestCa } from '../helpers/pki-fixtures.js';

const enc = new TextEncoder();
const SIGNED_AT = new Date('2026-03-04T05:06:07.890Z');
const ID_AA_SECURITY_LABEL = '1.2.840.113549.1.9.16.2.2';
const MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const HASH_OF = { p256: 'SHA-256', p384: 'SHA-384', rsa3072: 'SHA-384' } as const;

function decodeContentInfo(der: Uint8Array): { ci: pkijs.ContentInfo; sd: pkijs.SignedData } {
  const ci = new pkijs.ContentInfo({ schema: asn1js.fromBER(der.slice().buffer).result });
  return { ci, sd: new pkijs.SignedData({ schema: ci.content }) };
}

function encodeSignedData(sd: pkijs.SignedData): Uint8Array {
  const ci = new pkijs.ContentInfo({ contentType: '1.2.840.113549.1.7.2', content: sd.toSchema(true) });
  return new Uint8Array(ci.toSchema().toBER(false));
}

/**
 * Replaces the signed attributes of `der` with `attrs` (in the given order) and signs them again
 * with `key`: a validly signed message whose attributes are wrong, to reach checks past the signature.
 */
async function resign(der: Uint8Array, key: CryptoKey, hash: string, attrs: (old: pkijs.Attribute[]) => pkijs.Attribute[] | undefined): Promise<Uint8Array> {
  const { sd } = decodeContentInfo(der);
  const si = sd.signerInfos[0];
  const next = attrs(si.signedAttrs!.attributes);
  if (!next) {
    si.signedAttrs = undefined;
    const raw = await crypto.subtle.sign({ name: 'ECDSA', hash }, key, enc.encode('no attributes'));
    si.signature = new asn1js.OctetString({ valueHex: pkijs.createCMSECDSASignature(raw) });
    return encodeSignedData(sd);
  }
  si.signedAttrs = new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes: next });
  const set = new asn1js.Set({ value: next.map((a) => a.toSchema()) }).toBER(false);
  const raw = await crypto.subtle.sign({ name: 'ECDSA', hash }, key, set);
  si.signature = new asn1js.OctetString({ valueHex: pkijs.createCMSECDSASignature(raw) });
  return encodeSignedData(sd);
}

function labelAttribute(policy: string, classification?: number): pkijs.Attribute {
  const members: asn1js.AsnType[] = [];
  if (classification !== undefined) members.push(new asn1js.Integer({ value: classification }));
  members.push(new asn1js.ObjectIdentifier({ value: policy }));
  return new pkijs.Attribute({ type: ID_AA_SECURITY_LABEL, values: [new asn1js.Set({ value: members })] });
}

const cas = new Map<string, TestCa>();
async function ca(profile: 'p256' | 'p384' | 'rsa3072'): Promise<TestCa> {
  let c = cas.get(profile);
  if (!c) cas.set(profile, (c = await makeTestCa(profile)));
  return c;
}

for (const profile of ['p256', 'p384', 'rsa3072'] as const) {
  t.test(`when a ${profile} staff member signs with a label then verification returns signer, time, label and digest`, async (t) => {
    const c = await ca(profile);
    const alice = await c.staff('alice', 'secret');
    const content = enc.encode(`hello from ${profile}`);
    const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, label: 'secret', signingTime: SIGNED_AT, chain: [c.issuing.cert] });
    const r = await verifyDetached(sig, content);
    if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
    t.equal(r.signer.fingerprint, alice.cert.fingerprint);
    t.equal(r.signingTime?.toISOString(), '2026-03-04T05:06:07.000Z', 'whole seconds');
    t.equal(r.label, 'secret');
    t.equal(r.digestAlgorithm, HASH_OF[profile]);
    t.same(Buffer.from(r.contentDigest), Buffer.from(await crypto.subtle.digest(HASH_OF[profile], content)));
    const { sd } = decodeContentInfo(sig);
    t.equal(sd.certificates?.length, 2, 'signer and issuing CA embedded');
    t.equal(sd.encapContentInfo.eContent, undefined, 'detached');
  });
}

t.test('when signed attributes are emitted then they are in DER order and the signature covers exactly them', async (t) => {
  const c = await ca('p256');
  const alice = await c.staff('alice');
  const content = enc.encode('order');
  const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, label: 'top-secret', signingTime: SIGNED_AT });
  const { sd } = decodeContentInfo(sig);
  const signedAttrs = sd.signerInfos[0].signedAttrs!;
  const encodings = signedAttrs.attributes.map((a) => Buffer.from(a.toSchema().toBER(false)));
  t.equal(encodings.length, 4);
  t.same(
    signedAttrs.attributes.map((a) => a.type).sort(),
    ['1.2.840.113549.1.9.3', '1.2.840.113549.1.9.4', '1.2.840.113549.1.9.5', ID_AA_SECURITY_LABEL].sort(),
  );
  for (let i = 1; i < encodings.length; i++) t.ok(Buffer.compare(encodings[i - 1], encodings[i]) < 0, `attribute ${i - 1} sorts before ${i}`);
  // The emitted [0] IMPLICIT bytes, re-tagged as SET, are what the signature covers.
  const emitted = Buffer.from(signedAttrs.encodedValue);
  t.equal(emitted[0], 0x31);
  const raw = Buffer.from(sd.signerInfos[0].signature.valueBlock.valueHexView);
  const p1363 = pkijs.createECDSASignatureFromCMS(asn1js.fromBER(raw).result, 32);
  t.ok(await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, await alice.cert.publicKey(), p1363, emitted));
  // ESSSecurityLabel is a SET: DER puts the INTEGER (tag 2) before the OID (tag 6).
  const label = signedAttrs.attributes.find((a) => a.type === ID_AA_SECURITY_LABEL)!.values[0] as asn1js.Set;
  t.ok(label.valueBlock.value[0] instanceof asn1js.Integer);
  t.equal((label.valueBlock.value[0] as asn1js.Integer).valueBlock.valueDec, CLASSIFICATION_VALUE['top-secret']);
  t.same(Buffer.from(label.valueBlock.value[1].toBER(false)), Buffer.from(new asn1js.ObjectIdentifier({ value: SIGIL_SECURITY_POLICY_OID }).toBER(false)));
});

t.test('when each clearance level is used as label then it round-trips; without a label none is reported', async (t) => {
  const c = await ca('p256');
  const alice = await c.staff('alice', 'top-secret');
  const content = enc.encode('levels');
  for (const level of CLEARANCES) {
    const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, label: level });
    const r = await verifyDetached(sig, content);
    t.equal(r.ok && r.label, level, level);
    t.equal(inspectSignature(sig).label, level);
  }
  const r = await verifyDetached(await signDetached({ content, signerCert: alice.cert, signerKey: alice.key }), content);
  t.ok(r.ok);
  t.equal(r.ok && r.label, undefined);
});

t.test('when the signing time lies outside 1950–2049 then it is a GeneralizedTime and round-trips', async (t) => {
  const c = await ca('p256');
  const alice = await c.staff('alice');
  const content = enc.encode('far future');
  for (const at of [new Date('2051-01-02T03:04:05Z'), new Date('1949-12-31T23:59:59Z')]) {
    const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, signingTime: at });
    const r = await verifyDetached(sig, content);
    t.equal(r.ok && r.signingTime?.toISOString(), at.toISOString());
  }
});

t.test('when the content, the signature or a signed attribute is changed then verification says why', async (t) => {
  const c = await ca('p256');
  const alice = await c.staff('alice');
  const content = enc.encode('the original message');
  const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, label: 'secret', signingTime: SIGNED_AT });

  const changed = content.slice();
  changed[3] ^= 1;
  t.match(await verifyDetached(sig, changed), { ok: false, reason: 'digest-mismatch' });

  // Last bytes of the DER are the end of the signature value's s integer.
  const badSig = sig.slice();
  badSig[badSig.length - 1] ^= 1;
  t.match(await verifyDetached(badSig, content), { ok: false, reason: 'bad-signature' });

  // Change the signed label from secret (4) to restricted (2) without re-signing.
  const { sd } = decodeContentInfo(sig);
  const attrsDer = Buffer.from(sd.signerInfos[0].signedAttrs!.encodedValue);
  const labelAt = Buffer.from(sig).indexOf(attrsDer.subarray(1));
  const downgraded = Buffer.from(sig);
  const intAt = downgraded.indexOf(Buffer.from([0x31, 0x19, 0x02, 0x01, 0x04, 0x06, 0x14]), labelAt);
  t.ok(labelAt > 0 && intAt > labelAt, 'label found');
  downgraded[intAt + 4] = 0x02;
  t.match(await verifyDetached(downgraded, content), { ok: false, reason: 'bad-signature' });
});

t.test('when an expected signer is given then only that certificate is accepted', async (t) => {
  const c = await ca('p256');
  const alice = await c.staff('alice');
  const bob = await c.staff('bob');
  const content = enc.encode('from alice');
  const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key });
  const ok = await verifyDetached(sig, content, { expectedSigner: alice.cert });
  t.equal(ok.ok && ok.signer, alice.cert);
  t.match(await verifyDetached(sig, content, { expectedSigner: bob.cert }), { ok: false, reason: 'signer-mismatch' });
});

t.test('when the signer certificate is not embedded then the signer is not found', async (t) => {
  const c = await ca('p256');
  const alice = await c.staff('alice');
  const content = enc.encode('no certs');
  const { sd } = decodeContentInfo(await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, chain: [c.issuing.cert] }));
  sd.certificates = [c.issuing.cert.asn];
  const sig = encodeSignedData(sd);
  t.match(await verifyDetached(sig, content), { ok: false, reason: 'signer-not-found' });
  t.ok((await verifyDetached(sig, content, { expectedSigner: alice.cert })).ok, 'still verifies against a known signer');
});

t.test('when the input is not a detached SignedData then the reason is malformed and nothing throws', async (t) => {
  const c = await ca('p256');
  const alice = await c.staff('alice');
  const content = enc.encode('x');
  const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key });
  const inputs: [string, unknown][] = [
    ['empty', new Uint8Array()],
    ['random bytes', crypto.getRandomValues(new Uint8Array(300))],
    ['truncated', sig.subarray(0, sig.length - 10)],
    ['trailing bytes', Buffer.concat([sig, Buffer.from([0, 0])])],
    ['a certificate', alice.cert.der],
    ['not bytes', 'hello' as unknown],
    ['null', null],
  ];
  for (const [what, input] of inputs) {
    t.match(await verifyDetached(input as Uint8Array, content), { ok: false, reason: 'malformed' }, what);
  }
  t.match(await verifyDetached(sig, 'x' as unknown as Uint8Array), { ok: false, reason: 'malformed' }, 'content not bytes');

  const { sd } = decodeContentInfo(sig);
  sd.encapContentInfo = new pkijs.EncapsulatedContentInfo({ eContentType: '1.2.840.113549.1.7.1', eContent: new asn1js.OctetString({ valueHex: content }) });
  t.match(await verifyDetached(encodeSignedData(sd), content), { ok: false, reason: 'malformed', detail: /detached/ }, 'embedded content');

  const two = decodeContentInfo(sig).sd;
  two.signerInfos.push(two.signerInfos[0]);
  t.match(await verifyDetached(encodeSignedData(two), content), { ok: false, reason: 'malformed', detail: /one SignerInfo/ }, 'two signers');
});

t.test('when the digest or signature algorithm is unknown then the reason is unsupported-algorithm', async (t) => {
  const c = await ca('p256');
  const alice = await c.staff('alice');
  const content = enc.encode('algs');
  const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key });
  const md5 = decodeContentInfo(sig).sd;
  md5.signerInfos[0].digestAlgorithm = new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.113549.2.5' });
  t.match(await verifyDetached(encodeSignedData(md5), content), { ok: false, reason: 'unsupported-algorithm', detail: /digest algorithm 1\.2\.840\.113549\.2\.5/ });
  const pss = decodeContentInfo(sig).sd;
  pss.signerInfos[0].signatureAlgorithm = new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.113549.1.1.10' });
  t.match(await verifyDetached(encodeSignedData(pss), content), { ok: false, reason: 'unsupported-algorithm', detail: /signature algorithm/ });
  const rsaOnEc = decodeContentInfo(sig).sd;
  rsaOnEc.signerInfos[0].signatureAlgorithm = new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.113549.1.1.11' });
  t.match(await verifyDetached(encodeSignedData(rsaOnEc), content), { ok: false, reason: 'unsupported-algorithm', detail: /ECDSA key/ });
});

t.test('when a required signed attribute is missing then the reason is missing-attribute', async (t) => {
  const c = await ca('p256');
  const alice = await c.staff('alice');
  const content = enc.encode('attrs');
  const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key });
  const noDigest = await resign(sig, alice.key, 'SHA-256', (old) => old.filter((a) => a.type !== MESSAGE_DIGEST));
  t.match(await verifyDetached(noDigest, content), { ok: false, reason: 'missing-attribute', detail: /messageDigest/ });
  const noType = await resign(sig, alice.key, 'SHA-256', (old) => old.filter((a) => a.type !== '1.2.840.113549.1.9.3'));
  t.match(await verifyDetached(noType, content), { ok: false, reason: 'missing-attribute', detail: /contentType/ });
  const none = await resign(sig, alice.key, 'SHA-256', () => undefined);
  t.match(await verifyDetached(none, content), { ok: false, reason: 'missing-attribute', detail: /absent/ });
  const resigned = await resign(sig, alice.key, 'SHA-256', (old) => old);
  t.ok((await verifyDetached(resigned, content)).ok, 'the re-signing helper itself yields valid signatures');
});

t.test('when the label is of another policy, has no classification or an unused level then the reason is label-unknown', async (t) => {
  const c = await ca('p256');
  const alice = await c.staff('alice');
  const content = enc.encode('labels');
  const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key });
  const cases: [string, pkijs.Attribute][] = [
    ['other policy', labelAttribute('1.2.3.4', 4)],
    ['no classification', labelAttribute(SIGIL_SECURITY_POLICY_OID)],
    ['unclassified (1)', labelAttribute(SIGIL_SECURITY_POLICY_OID, 1)],
    ['out of range', labelAttribute(SIGIL_SECURITY_POLICY_OID, 100000)],
  ];
  for (const [what, attr] of cases) {
    const labelled = await resign(sig, alice.key, 'SHA-256', (old) => [...old, attr]);
    t.match(await verifyDetached(labelled, content), { ok: false, reason: 'label-unknown' }, what);
  }
  const reordered = await resign(sig, alice.key, 'SHA-256', (old) => [...old, labelAttribute(SIGIL_SECURITY_POLICY_OID, 3)]);
  t.match(await verifyDetached(reordered, content), { ok: true, label: 'confidential' }, 'a label in OID-last order is read too');
});

t.test('when a signature is inspected then its claims are read without verifying; garbage is CMS_MALFORMED', async (t) => {
  const c = await ca('p384');
  const alice = await c.staff('alice');
  const content = enc.encode('inspect');
  const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, label: 'restricted', signingTime: SIGNED_AT });
  const s = inspectSignature(sig);
  t.equal(s.signingTime?.toISOString(), '2026-03-04T05:06:07.000Z');
  t.equal(s.label, 'restricted');
  t.equal(s.signerSerial, alice.cert.serialNumber);
  t.equal(s.digestAlgorithm, 'SHA-384');
  t.equal(s.messageDigest, Buffer.from(await crypto.subtle.digest('SHA-384', content)).toString('hex'));
  t.throws(() => inspectSignature(new Uint8Array([1, 2, 3])), { code: 'CMS_MALFORMED' });
});

t.test('when sign parameters are wrong then typed errors name the problem', async (t) => {
  const c = await ca('p256');
  const alice = await c.staff('alice');
  const content = enc.encode('params');
  await t.rejects(signDetached({ content, signerCert: alice.cert, signerKey: alice.key, label: 'cosmic' as never }), { code: 'INVALID_PARAMETER', message: /label/ });
  await t.rejects(signDetached({ content: 'text' as never, signerCert: alice.cert, signerKey: alice.key }), { code: 'INVALID_PARAMETER', message: /content/ });
  await t.rejects(signDetached({ content, signerCert: alice.cert, signerKey: alice.publicKey }), { code: 'INVALID_PARAMETER', message: /signerKey/ });
  await t.rejects(signDetached({ content, signerCert: alice.cert, signerKey: alice.key, signingTime: new Date('nope') }), { code: 'INVALID_PARAMETER', message: /signingTime/ });
  const p384 = await generateKeyPair('p384');
  await t.rejects(signDetached({ content, signerCert: alice.cert, signerKey: p384.privateKey }), { code: 'CMS_SIGNER_KEY_MISMATCH' });
  const p521 = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-521' }, false, ['sign', 'verify']);
  await t.rejects(signDetached({ content, signerCert: alice.cert, signerKey: p521.privateKey }), { code: 'UNKNOWN_ALGORITHM' });
});

t.test('when trust is given then the signer chain is validated at the signing time', async (t) => {
  const c = await ca('p256');
  const alice = await c.staff('alice');
  const content = enc.encode('trusted');
  const now = Date.now();
  const trust = { trustAnchors: c.trustAnchors, intermediates: [c.issuing.cert] };
  const signedAt = new Date(now - 60_000);
  const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, signingTime: signedAt });

  const plain = await verifyDetached(sig, content, { trust });
  if (!plain.ok) throw new Error(`${plain.reason}: ${plain.detail}`);
  t.same(plain.chain?.map((x) => x.fingerprint), [alice.cert.fingerprint, c.issuing.cert.fingerprint, c.root.cert.fingerprint]);
  t.equal(plain.revokedLater, undefined);

  const crl = await c.issuer.createCrl({
    revoked: [{ serialNumber: alice.cert.serialNumber, revocationDate: new Date(now), reason: 'keyCompromise' }],
    crlNumber: 1n,
    thisUpdate: new Date(now),
    nextUpdate: new Date(now + 86_400_000),
  });
  const later = await verifyDetached(sig, content, { trust: { ...trust, crls: [crl] } });
  t.match(later, { ok: true, revokedLater: { serialNumber: alice.cert.serialNumber, reason: 'keyCompromise' } }, 'signed before revocation');

  const afterRevocation = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, signingTime: new Date(now + 60_000) });
  t.match(await verifyDetached(afterRevocation, content, { trust: { ...trust, crls: [crl] } }), { ok: false, reason: 'revoked' }, 'signed after revocation');
  t.match(await verifyDetached(sig, content, { trust: { ...trust, crls: [crl], at: new Date(now + 1000) } }), { ok: false, reason: 'revoked' }, 'explicit validation time wins over the claimed signing time');

  const past = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, signingTime: new Date(alice.cert.notAfter.getTime() + 1000) });
  t.match(await verifyDetached(past, content, { trust }), { ok: false, reason: 'expired' });
  const early = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, signingTime: new Date(alice.cert.notBefore.getTime() - 1000) });
  t.match(await verifyDetached(early, content, { trust }), { ok: false, reason: 'not-yet-valid' });

  const other = await makeTestCa('p256');
  t.match(await verifyDetached(sig, content, { trust: { trustAnchors: other.trustAnchors } }), { ok: false, reason: 'unknown-issuer' });
  t.ok((await verifyDetached(await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, chain: [c.issuing.cert] }), content, { trust: { trustAnchors: c.trustAnchors } })).ok, 'an embedded issuing CA serves as intermediate');
  t.match(await verifyDetached(sig, content, { trust: { ...trust, requireCrl: true } }), { ok: false, reason: 'crl-missing' });

  const keys = await generateKeyPair('p256');
  const audit = await c.issuer.issueAuditCertificate({ publicKey: keys.publicKey, commonName: 'audit' });
  const auditSig = await signDetached({ content, signerCert: audit, signerKey: keys.privateKey });
  t.match(await verifyDetached(auditSig, content, { trust }), { ok: false, reason: 'wrong-usage' }, 'an audit key cannot sign messages');
});

t.test('when a look-alike certificate has the same issuer name and serial then each message verifies against its own certificate', async (t) => {
  // Two hierarchies with the same names, and a fixed serial: a rogue CA mimicking the real one.
  const fixedSerial = (n: number) => new Uint8Array(n).fill(0x42);
  const staff = async () => {
    const { root, issuing } = await createCaHierarchy({ profile: 'p256', organization: 'Look-alike Ministry' });
    const issuer = new Issuer({ cert: issuing.cert, key: issuing.key, chain: [issuing.cert, root.cert], random: fixedSerial });
    const keys = await generateKeyPair('p256');
    const cert = await issuer.issueStaffCertificate({ fullName: 'Alice', login: 'alice', organization: 'Look-alike Ministry', department: 'D', clearance: 'secret', publicKey: keys.publicKey });
    return { cert, key: keys.privateKey, root: root.cert };
  };
  const real = await staff();
  const rogue = await staff();
  t.equal(rogue.cert.serialNumber, real.cert.serialNumber, 'same serial');
  t.ok(rogue.cert.issuerNameDer.equals(real.cert.issuerNameDer), 'same issuer name');
  t.not(rogue.cert.fingerprint, real.cert.fingerprint);

  const content = enc.encode('who signed this?');
  const realSig = await signDetached({ content, signerCert: real.cert, signerKey: real.key });
  const rogueSig = await signDetached({ content, signerCert: rogue.cert, signerKey: rogue.key });
  for (let round = 0; round < 2; round++) {
    const r1 = await verifyDetached(realSig, content);
    t.equal(r1.ok && r1.signer.fingerprint, real.cert.fingerprint, `round ${round}: the real message names the real certificate`);
    const r2 = await verifyDetached(rogueSig, content);
    t.equal(r2.ok && r2.signer.fingerprint, rogue.cert.fingerprint, `round ${round}: the rogue message names the rogue certificate`);
  }
  t.match(await verifyDetached(rogueSig, content, { trust: { trustAnchors: [real.root] } }), { ok: false, reason: /unknown-issuer|bad-signature/ }, 'and the rogue chain is not trusted');
  t.match(await verifyDetached(rogueSig, content, { expectedSigner: real.cert }), { ok: false, reason: 'bad-signature' }, 'same identifier, wrong key');
});
