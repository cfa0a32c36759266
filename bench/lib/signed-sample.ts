/**
 * Signed P-384 messages made in-process, without a server: a CA, one staff certificate and
 * detached CMS signatures over message-shaped headers. For the experiments that time the check
 * path alone (bench/experiments/check-pool.ts, gc-survival.ts); the load benches sign through a
 * real appliance instead (signed-messages.ts).
 */
import { createHash, webcrypto } from 'node:crypto';
import { createCaHierarchy, generateKeyPair, Issuer, signDetached, type Certificate, type CryptoKey } from '../../pki/index.js';

/** One signed message: its id, the header bytes as signed, the detached signature and the body. */
export interface SampleMessage {
  id: string;
  header: Uint8Array;
  signature: Uint8Array;
  body: Uint8Array;
}

/** A fresh P-384 CA and a staff certificate (login `alice`, clearance secret) with its private key. */
export async function sampleSigner(): Promise<{ cert: Certificate; key: CryptoKey }> {
  const now = (): Date => new Date();
  const { root, issuing } = await createCaHierarchy({ profile: 'p384', organization: 'Bench', now });
  const issuer = new Issuer({ cert: issuing.cert, key: issuing.key, chain: [issuing.cert, root.cert], now });
  const keys = await generateKeyPair('p384');
  const cert = await issuer.issueStaffCertificate({ fullName: 'Bench Alice', login: 'alice', organization: 'Bench', department: 'Bench', clearance: 'secret', publicKey: keys.publicKey });
  return { cert, key: keys.privateKey };
}

/** `n` messages with 256-byte random bodies, labelled restricted, signed by `signer`. */
export async function signedSamples(n: number, signer: { cert: Certificate; key: CryptoKey }): Promise<SampleMessage[]> {
  const out: SampleMessage[] = [];
  for (let i = 0; i < n; i++) {
    const body = webcrypto.getRandomValues(new Uint8Array(256));
    const id = Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('base64url');
    const header = new TextEncoder().encode(
      JSON.stringify({ body: { sha384: createHash('sha384').update(body).digest('base64'), size: body.length }, conversation: 'c'.repeat(22), id, label: 'restricted', sender: 'alice', sentAt: new Date().toISOString() }),
    );
    out.push({ id, header, body, signature: await signDetached({ content: header, signerCert: signer.cert, signerKey: signer.key, label: 'restricted' }) });
  }
  return out;
}
