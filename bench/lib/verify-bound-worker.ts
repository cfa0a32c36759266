/**
 * One thread of load.ts's `syncVerifyBound`: synchronous `crypto.verify` of one signature in a loop,
 * as the server's check workers verify (pki's verifyDetachedSync), with nothing else on the thread.
 * It verifies once and says `ready`; on `go` it loops for the seconds given and answers ops/s.
 */
import { createPublicKey, verify } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

export interface VerifyBoundJob {
  spki: Uint8Array;
  signature: Uint8Array;
  data: Uint8Array;
  /** node:crypto's digest name: sha256, sha384. */
  hash: string;
  /** ECDSA signatures from WebCrypto are r‖s (IEEE P1363), not DER. */
  dsaEncoding?: 'ieee-p1363';
}

const job = workerData as VerifyBoundJob;
const key = createPublicKey({ key: Buffer.from(job.spki), format: 'der', type: 'spki' });
const keyInput = job.dsaEncoding ? { key, dsaEncoding: job.dsaEncoding } : key;
const once = (): boolean => verify(job.hash, job.data, keyInput, job.signature);
if (!once()) throw new Error('verify bound: signature did not verify');
parentPort!.postMessage('ready');
parentPort!.once('message', (seconds: number) => {
  let count = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  while (performance.now() < end) {
    once();
    count++;
  }
  parentPort!.postMessage(count / ((performance.now() - started) / 1000));
});
