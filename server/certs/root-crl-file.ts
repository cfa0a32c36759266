/**
 * Reading the appliance's root CRL (`ca/root-crl.pem`) as the root's own word: parsed, and signed by
 * the root certificate. Shared by the root key ceremony (sign-root-crl.ts, which refuses to go on
 * from a file it cannot trust) and the running server's watch (root-crl-watch.ts, which ignores it).
 */
import { readFile } from 'node:fs/promises';
import { Crl, type Certificate } from '../../pki/index.js';

/** The file's verdict: the root's CRL, no file, or why the file is not the root's (a phrase after its name). */
export type RootCrlFile = { crl: Crl } | { missing: true } | { invalid: string; cause?: unknown };

/** Reads `file` and holds it to `root`. A read error other than ENOENT rejects. */
export async function readRootCrlFile(file: string, root: Certificate): Promise<RootCrlFile> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
    throw err;
  }
  let crl: Crl;
  try {
    crl = Crl.fromPem(pem);
  } catch (err) {
    return { invalid: `is not a readable CRL (${(err as Error).message})`, cause: err };
  }
  const sig = await crl.verifySignature(root);
  return sig.ok ? { crl } : { invalid: `is not signed by the root CA (${sig.reason})` };
}
