/**
 * One thread of verify-bounds.ts's `syncVerifyBound`: synchronous `crypto.verify` of distinct
 * signed messages in turn, as the server's check workers verify (pki's verifyDetachedSync), with
 * nothing else on the thread. It verifies each message once and says `ready` (throwing if one
 * fails); on `go` it loops for the seconds given and answers ops/s.
 */
import { createPublicKey, verify } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

export interface VerifyBoundJob {
  spki: Uint8Array;
  /** `signatures[i]` signs `data[i]`. */
  signatures: Uint8Array[];
  data: Uint8Array[];
  /** node:crypto's digest name: sha256, sha384. */
  hash: string;
  /** ECDSA signatures from WebCrypto are r‖s (IEEE P1363), not DER. */
  dsaEncoding?: 'ieee-p1363';
}

const job = workerData as VerifyBoundJob;
const key = createPublicKey({ key: Buffer.from(job.spki), format: 'der', type: 'spki' });
const keyInput = job.dsaEncoding ? { key, dsaEncoding: job.dsaEncoding } : key;
const n = job.signatures.length;
const one = (i: number): boolean => verify(job.hash, job.data[i]!, keyInput, job.signatures[i]!);
for (let i = 0; i < n; i++) if (!one(i)) throw new Error(`verify bound: signature ${i} did not verify`);
parentPort!.postMessage('ready');
parentPort!.once('message', (seconds: number) => {
  let count = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  while (performance.now() < end) {
    one(count % n);
    count++;
  }
  parentPort!.postMessage(count / ((performance.now() - started) / 1000));
});
