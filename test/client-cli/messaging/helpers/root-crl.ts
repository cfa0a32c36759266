/**
 * The root CRL a real test appliance serves (`GET /v1/crl/root` reads `<data>/ca/root-crl.pem`),
 * for the tests that swap it: one served in its place for one test, none at all, and the
 * appliance's own root key to sign one as its key ceremony would.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Certificate, createRootCrl, importPrivateKeyPem, type CryptoKey } from '../../../../pki/index.js';
import { makeTestCa } from '../../../helpers/pki-fixtures.js';
import type { TestAppliance } from '../../../helpers/appliance.js';

interface Teardown {
  teardown(fn: () => void): void;
}

export interface ServedRootCrl {
  /** The file the appliance serves. */
  readonly file: string;
  /** Serves `pem` until `t` ends (the original comes back then; write `file` for later swaps in the same test). */
  replace(t: Teardown, pem: string): void;
  /** Serves none (the route 404s) until `t` ends. */
  remove(t: Teardown): void;
  /** The appliance root's certificate and private key. */
  rootSigner(): Promise<{ cert: Certificate; key: CryptoKey }>;
}

/** `app`: a test appliance, or any data directory with the `init` result that made it. */
export function appRootCrl(app: Pick<TestAppliance, 'dataDir' | 'init'>): ServedRootCrl {
  const file = join(app.dataDir, 'ca', 'root-crl.pem');
  return {
    file,
    replace(t, pem) {
      const original = readFileSync(file, 'utf8');
      t.teardown(() => writeFileSync(file, original));
      writeFileSync(file, pem);
    },
    remove(t) {
      renameSync(file, `${file}.away`);
      t.teardown(() => renameSync(`${file}.away`, file));
    },
    async rootSigner() {
      return {
        cert: Certificate.fromPem(readFileSync(app.init.ca.root, 'utf8')),
        key: await importPrivateKeyPem(readFileSync(app.init.ca.rootKeyFile, 'utf8'), app.init.ca.rootKeyPassphrase),
      };
    },
  };
}

/**
 * The profiles of `runners` as ones that never saw a root CRL, until `t` ends (the `root-crl.pem`
 * each kept, client-cli/messaging/kept-root-crl.ts, comes back then): for a test of an appliance
 * without one, or of root CRLs outside the appliance's own sequence of numbers, which a profile
 * must not keep for the tests after it.
 */
export function forgetKeptRootCrl(t: Teardown, ...runners: { profile: string }[]): void {
  for (const { profile } of runners) {
    const file = join(profile, 'root-crl.pem');
    const was = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    rmSync(file, { force: true });
    t.teardown(() => (was === undefined ? rmSync(file, { force: true }) : writeFileSync(file, was)));
  }
}

/**
 * A root CRL listing `serial` (the issuing CA's) as revoked, signed by another root: the forgery
 * the server's watch and `status` must not believe.
 */
export async function rootCrlOfAnotherRoot(serial: string): Promise<string> {
  const other = await makeTestCa('p256');
  const crl = await createRootCrl({
    cert: other.root.cert,
    key: other.root.key,
    crlNumber: 99n,
    revoked: [{ serialNumber: serial, revocationDate: new Date(), reason: 'keyCompromise' }],
  });
  return crl.pem;
}
