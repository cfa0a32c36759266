/**
 * Review finding: `sigil keygen --force --out BADPATH` replaced the working key, removed the
 * certificate, chain and session, and only then failed to write the CSR: the profile kept only
 * ca.pem, config.json, key.p8.pem and request.csr.pem. Now what can fail comes first, so a failure
 * leaves the profile byte for byte as it was. The built CLI as a child process.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CertificationRequest } from '../../pki/index.js';
import { runCli } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/pki-fixtures.js';
import { tmpDir } from '../helpers/tmp.js';

const PASS = 'correct horse battery';

/** Every file of the profile folder and its bytes. */
const snapshot = (dir: string): Map<string, Buffer> => new Map(readdirSync(dir).sort().map((n) => [n, readFileSync(join(dir, n))]));

t.test('when keygen --force cannot write --out then it fails and the working profile is unchanged', async (t) => {
  const ca = await makeTestCa('p384');
  const dir = tmpDir(t, 'sigil-cli-keygen-force-');
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.root.cert.pem);
  const profile = join(dir, 'profile');
  const env = { SIGIL_KEY_PASSPHRASE: PASS };
  t.equal((await runCli(['setup', '--server', 'https://127.0.0.1:9', '--ca', caFile], { profile })).code, 0);
  // A working profile: key, issued certificate and chain imported, a session.
  const csrFile = join(dir, 'alee.csr.pem');
  const gen = await runCli(['keygen', '--login', 'alee', '--algorithm', 'p384', '--out', csrFile], { profile, env });
  t.equal(gen.code, 0, gen.stderr);
  const cert = await ca.issuer.issueStaffCertificate({
    fullName: 'Ann Lee',
    login: 'alee',
    organization: 'Ministry of Tests',
    department: 'Testing',
    clearance: 'secret',
    publicKey: await CertificationRequest.fromPem(readFileSync(csrFile, 'utf8')).publicKey(),
  });
  const certFile = join(dir, 'alee.cert.pem');
  writeFileSync(certFile, cert.pem + ca.issuing.cert.pem);
  const imp = await runCli(['cert', 'import', certFile], { profile, env });
  t.equal(imp.code, 0, imp.stderr);
  writeFileSync(join(profile, 'session.json'), JSON.stringify({ token: 'x'.repeat(43), expiresAt: '2030-01-01T00:00:00.000Z', login: 'alee', mustChangePassword: false }) + '\n', { mode: 0o600 });
  const before = snapshot(profile);
  t.same([...before.keys()], ['ca.pem', 'cert.pem', 'chain.pem', 'config.json', 'key.p8.pem', 'request.csr.pem', 'session.json'], 'control: a full working profile');

  const bad = join(dir, 'no-such-folder', 'new.csr.pem');
  const r = await runCli(['keygen', '--login', 'alee', '--algorithm', 'p384', '--force', '--out', bad], { profile, env });
  t.not(r.code, 0, 'fails');
  t.equal(r.code, 1);
  t.match(r.stderr, /^error: [^\n]+\n$/, 'one line on stderr');
  t.match(r.stderr, /new\.csr\.pem/, 'naming the --out file');
  t.equal(r.stdout, '', 'no CSR printed');
  const after = snapshot(profile);
  t.same([...after.keys()], [...before.keys()], 'the same files, no staged file left behind');
  for (const [name, bytes] of before) t.ok(after.get(name)?.equals(bytes), `${name} unchanged`);
  t.same(readdirSync(dir).sort(), ['alee.cert.pem', 'alee.csr.pem', 'ca.pem', 'profile'], 'nothing written beside --out either');

  // Control: with a writable --out the same command replaces the key and drops what belonged to it.
  const good = join(dir, 'new.csr.pem');
  const ok = await runCli(['keygen', '--login', 'alee', '--algorithm', 'p384', '--force', '--out', good], { profile, env });
  t.equal(ok.code, 0, ok.stderr);
  t.same(readdirSync(profile).sort(), ['ca.pem', 'config.json', 'key.p8.pem', 'request.csr.pem']);
  t.notOk(readFileSync(join(profile, 'key.p8.pem')).equals(before.get('key.p8.pem')!), 'a new key');
  t.equal(readFileSync(good, 'utf8'), readFileSync(join(profile, 'request.csr.pem'), 'utf8'), '--out and the profile copy are the same CSR');
});
