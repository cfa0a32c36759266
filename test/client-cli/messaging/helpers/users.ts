/**
 * Test set-up for the messaging scenarios: a staff account made on the real appliance
 * (`createStaff`), then a CLI profile for it built the way a workstation has one — `sigil setup`
 * pinning the root, the key and certificate placed in the profile, and `sigil login` with the
 * password from the environment. Returns a runner for that profile.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clearance } from '../../../../pki/index.js';
import type { TestAppliance, TestUser } from '../../../helpers/appliance.js';
import { profileRunner, type ProfileRunner } from '../../../helpers/cli.js';

export interface CliUser {
  user: TestUser;
  cli: ProfileRunner;
}

export async function cliUser(
  app: TestAppliance,
  dir: string,
  login: string,
  clearance: Clearance,
  names: { fullName?: string; department?: string } = {},
): Promise<CliUser> {
  const user = await app.createStaff({ login, clearance, ...names });
  const profile = join(dir, login);
  const cli = profileRunner(profile, { SIGIL_PASSWORD: user.password });
  const setup = await cli.run(['setup', '--server', app.url, '--ca', app.init.ca.root]);
  if (setup.code !== 0) throw new Error(`setup ${login}: ${setup.stderr}`);
  // The key as `sigil keygen --insecure` would store it (plain PKCS#8): no passphrase prompt.
  writeFileSync(join(profile, 'key.p8.pem'), user.keyPem, { mode: 0o600 });
  writeFileSync(join(profile, 'cert.pem'), user.certPem, { mode: 0o644 });
  const login1 = await cli.run(['login', '--login', login]);
  if (login1.code !== 0) throw new Error(`login ${login}: ${login1.stderr}`);
  return { user, cli };
}
