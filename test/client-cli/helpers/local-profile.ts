/**
 * A CLI profile with no appliance behind it, for the tests of what the CLI does on its own (keys,
 * certificate import, passphrases, local errors): `sigil setup` against a test CA (setup contacts
 * no server), and the officer's part of a CSR done with that CA directly.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { CertificationRequest } from '../../../pki/index.js';
import { runCli } from '../../helpers/cli.js';
import type { TestCa } from '../../helpers/pki-fixtures.js';
import { tmpDir } from '../../helpers/tmp.js';

/** A fresh profile in a new temporary folder (`prefix`), set up against `ca`'s root. */
export async function setUpLocalProfile(t: Test, ca: TestCa, prefix = 'sigil-cli-local-'): Promise<{ dir: string; profile: string; caFile: string }> {
  const dir = tmpDir(t, prefix);
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.root.cert.pem);
  const profile = join(dir, 'profile');
  const r = await runCli(['setup', '--server', 'https://127.0.0.1:9', '--ca', caFile, '--json'], { profile });
  t.equal(r.code, 0, `setup: ${r.stderr}`);
  return { dir, profile, caFile };
}

/** What the officer does with a CSR: a staff certificate for its key, with the issuing CA after it. */
export async function issueFromCsr(ca: TestCa, csrPem: string, login: string): Promise<string> {
  const csr = CertificationRequest.fromPem(csrPem);
  const cert = await ca.issuer.issueStaffCertificate({
    fullName: `Test ${login}`,
    login,
    organization: 'Ministry of Tests',
    department: 'Testing',
    clearance: 'secret',
    publicKey: await csr.publicKey(),
  });
  return cert.pem + ca.issuing.cert.pem;
}
