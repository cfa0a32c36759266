/**
 * Interop of pki/cms-sign.ts and pki/cms-verify.ts with the real `openssl cms`, both directions:
 * auditors verify Sigil messages with OpenSSL, and Sigil reads what OpenSSL signs.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Certificate, importPrivateKeyPem, signDetached, verifyDetached, type Crl } from '../../pki/index.js';
import { makeTestCa, type TestCa } from '../helpers/pki-fixtures.js';
import { tmpDir } from '../helpers/tmp.js';

const run = promisify(execFile);

/** Runs openssl; resolves with the exit code and output instead of throwing on a non-zero exit. */
async function openssl(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('openssl', args, { cwd, encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

async function mustOpenssl(args: string[], cwd: string): Promise<string> {
  const r = await openssl(args, cwd);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function opensslVerify(dir: string, sigFile: string, contentFile: string, caFile: string): Promise<{ code: number; stderr: string }> {
  return openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', sigFile, '-content', contentFile, '-CAfile', caFile, '-crl_check', '-out', join(dir, 'out.bin')], dir);
}

function flipByte(bytes: Uint8Array, at: number): Uint8Array {
  const copy = new Uint8Array(bytes); // a copy: Buffer#slice would share memory
  copy[at] ^= 0x01;
  return copy;
}

async function crlOf(c: TestCa, revoked: { serialNumber: string; revocationDate: Date }[]): Promise<Crl> {
  const now = Date.now();
  return c.issuer.createCrl({
    revoked: revoked.map((r) => ({ ...r, reason: 'keyCompromise' as const })),
    crlNumber: 1n,
    thisUpdate: new Date(now - 60_000),
    nextUpdate: new Date(now + 86_400_000),
  });
}

for (const profile of ['p256', 'p384', 'rsa3072'] as const) {
  t.test(`when Sigil signs with ${profile} then openssl cms -verify -crl_check accepts it, and refuses one changed byte`, async (t) => {
    const dir = tmpDir(t, 'sigil-cms-');
    const c = await makeTestCa(profile);
    const alice = await c.staff('alice', 'secret');
    const content = new TextEncoder().encode(`An order, classified SECRET, signed with ${profile}.\n`);
    const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, label: 'secret', chain: [c.issuing.cert] });
    const crl = await crlOf(c, []);
    writeFileSync(join(dir, 'chain.pem'), c.root.cert.pem + c.issuing.cert.pem + crl.pem);
    writeFileSync(join(dir, 'msg.bin'), content);
    writeFileSync(join(dir, 'sig.der'), sig);

    const ok = await opensslVerify(dir, 'sig.der', 'msg.bin', 'chain.pem');
    t.equal(ok.code, 0, `openssl accepts: ${ok.stderr.trim()}`);
    t.match(ok.stderr, /Verification successful/);
    t.same(readFileSync(join(dir, 'out.bin')), Buffer.from(content));

    writeFileSync(join(dir, 'msg-changed.bin'), flipByte(content, 10));
    const badContent = await opensslVerify(dir, 'sig.der', 'msg-changed.bin', 'chain.pem');
    t.not(badContent.code, 0, 'changed content is refused');
    t.match(badContent.stderr, /digest failure|Verification failure/i);

    // The DER ends with the signature value (no unsigned attributes): flip its last byte.
    writeFileSync(join(dir, 'sig-changed.der'), flipByte(sig, sig.length - 1));
    const badSig = await opensslVerify(dir, 'sig-changed.der', 'msg.bin', 'chain.pem');
    t.not(badSig.code, 0, 'changed signature is refused');
    t.match(badSig.stderr, /signature failure|Verification failure/i);

    const printed = await mustOpenssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', 'sig.der'], dir);
    t.match(printed, /id-smime-aa-securityLabel|1\.2\.840\.113549\.1\.9\.16\.2\.2/, 'openssl sees the ESS security label');
    t.match(printed, /signingTime/);
  });
}

t.test('when the signer is on the CRL then openssl -crl_check refuses the signature', async (t) => {
  const dir = tmpDir(t, 'sigil-cms-');
  const c = await makeTestCa('p256');
  const alice = await c.staff('alice');
  const content = new TextEncoder().encode('from a revoked key');
  const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key });
  const crl = await crlOf(c, [{ serialNumber: alice.cert.serialNumber, revocationDate: new Date(Date.now() - 30_000) }]);
  writeFileSync(join(dir, 'chain.pem'), c.root.cert.pem + c.issuing.cert.pem + crl.pem);
  writeFileSync(join(dir, 'msg.bin'), content);
  writeFileSync(join(dir, 'sig.der'), sig);
  const r = await opensslVerify(dir, 'sig.der', 'msg.bin', 'chain.pem');
  t.not(r.code, 0);
  t.match(r.stderr, /certificate revoked/);
});

/** An openssl-made root and an end-entity signer whose EKU allows S/MIME signing, in `dir`. */
async function opensslPki(dir: string, keyAlg: string[]): Promise<void> {
  writeFileSync(
    join(dir, 'ext.cnf'),
    [
      '[ca]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '[leaf]',
      'basicConstraints = CA:FALSE',
      'keyUsage = critical, digitalSignature, nonRepudiation',
      'extendedKeyUsage = emailProtection',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  await mustOpenssl(['req', '-x509', '-new', '-newkey', ...keyAlg, '-nodes', '-keyout', 'root.key', '-out', 'root.pem', '-subj', '/CN=OpenSSL Test Root/O=Interop', '-days', '30', '-config', 'ext.cnf', '-extensions', 'ca'], dir);
  await mustOpenssl(['req', '-new', '-newkey', ...keyAlg, '-nodes', '-keyout', 'signer.key', '-out', 'signer.csr', '-subj', '/CN=OpenSSL Signer/O=Interop'], dir);
  await mustOpenssl(['x509', '-req', '-in', 'signer.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-set_serial', '0x00c0ffee', '-days', '30', '-extfile', 'ext.cnf', '-extensions', 'leaf', '-out', 'signer.pem'], dir);
}

const OPENSSL_KEYS: [string, string[], string[]][] = [
  ['P-256 (default digest)', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], []],
  ['P-256 with -md sha384', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-md', 'sha384']],
  ['P-384 with -keyid', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], ['-keyid']],
  ['RSA-3072 (default sha256)', ['rsa:3072'], []],
];

for (const [what, keyAlg, signArgs] of OPENSSL_KEYS) {
  t.test(`when openssl cms -sign makes a detached signature (${what}) then Sigil verifies it with its signing time`, async (t) => {
    const dir = tmpDir(t, 'sigil-cms-');
    await opensslPki(dir, keyAlg);
    const content = Buffer.from('signed by openssl\r\nwith a CRLF that -binary keeps\n');
    writeFileSync(join(dir, 'msg.bin'), content);
    const before = Math.floor(Date.now() / 1000) * 1000;
    await mustOpenssl(['cms', '-sign', '-binary', '-in', 'msg.bin', '-signer', 'signer.pem', '-inkey', 'signer.key', '-outform', 'DER', '-out', 'sig.der', ...signArgs], dir);
    const after = Date.now();
    const sig = new Uint8Array(readFileSync(join(dir, 'sig.der')));
    const signerCert = Certificate.fromPem(readFileSync(join(dir, 'signer.pem'), 'utf8'));
    const root = Certificate.fromPem(readFileSync(join(dir, 'root.pem'), 'utf8'));

    const r = await verifyDetached(sig, new Uint8Array(content));
    if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
    t.equal(r.signer.fingerprint, signerCert.fingerprint);
    t.ok(r.signingTime && r.signingTime.getTime() >= before && r.signingTime.getTime() <= after, `signingTime ${r.signingTime?.toISOString()} is when openssl signed`);
    t.equal(r.label, undefined);
    t.match(await verifyDetached(sig, new Uint8Array(content), { expectedSigner: signerCert }), { ok: true });
    t.match(await verifyDetached(sig, new Uint8Array(content), { trust: { trustAnchors: [root] } }), { ok: true }, 'chain to the openssl root validates');
    t.match(await verifyDetached(sig, new Uint8Array(flipByte(content, 3))), { ok: false, reason: 'digest-mismatch' });
    t.match(await verifyDetached(flipByte(sig, sig.length - 1), new Uint8Array(content)), { ok: false, reason: /bad-signature|malformed/ });
  });
}

t.test('when openssl signs with -nocerts then the signer is not found unless expected', async (t) => {
  const dir = tmpDir(t, 'sigil-cms-');
  await opensslPki(dir, ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  writeFileSync(join(dir, 'msg.bin'), 'no certificates inside');
  await mustOpenssl(['cms', '-sign', '-binary', '-nocerts', '-in', 'msg.bin', '-signer', 'signer.pem', '-inkey', 'signer.key', '-outform', 'DER', '-out', 'sig.der'], dir);
  const sig = new Uint8Array(readFileSync(join(dir, 'sig.der')));
  const content = new Uint8Array(readFileSync(join(dir, 'msg.bin')));
  t.match(await verifyDetached(sig, content), { ok: false, reason: 'signer-not-found' });
  const signerCert = Certificate.fromPem(readFileSync(join(dir, 'signer.pem'), 'utf8'));
  t.match(await verifyDetached(sig, content, { expectedSigner: signerCert }), { ok: true });
});

t.test('when openssl embeds the content (-nodetach) then Sigil refuses it as not detached', async (t) => {
  const dir = tmpDir(t, 'sigil-cms-');
  await opensslPki(dir, ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  writeFileSync(join(dir, 'msg.bin'), 'embedded');
  await mustOpenssl(['cms', '-sign', '-binary', '-nodetach', '-in', 'msg.bin', '-signer', 'signer.pem', '-inkey', 'signer.key', '-outform', 'DER', '-out', 'sig.der'], dir);
  const r = await verifyDetached(new Uint8Array(readFileSync(join(dir, 'sig.der'))), new Uint8Array(readFileSync(join(dir, 'msg.bin'))));
  t.match(r, { ok: false, reason: 'malformed', detail: /detached/ });
});

t.test('when a signer key from openssl signs through Sigil then openssl verifies it', async (t) => {
  const dir = tmpDir(t, 'sigil-cms-');
  await opensslPki(dir, ['ec', '-pkeyopt', 'ec_paramgen_curve:P-384']);
  const signerCert = Certificate.fromPem(readFileSync(join(dir, 'signer.pem'), 'utf8'));
  const key = await importPrivateKeyPem(readFileSync(join(dir, 'signer.key'), 'utf8'));
  const content = new TextEncoder().encode('Sigil signature, openssl key');
  writeFileSync(join(dir, 'msg.bin'), content);
  writeFileSync(join(dir, 'sig.der'), await signDetached({ content, signerCert, signerKey: key, label: 'confidential' }));
  const r = await openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', 'sig.der', '-content', 'msg.bin', '-CAfile', 'root.pem', '-out', 'out.bin'], dir);
  t.equal(r.code, 0, r.stderr.trim());
});
