/**
 * The machine's signature-verification bound, which the benches divide their throughput by: raw
 * `crypto.subtle.verify` with many in flight, and raw synchronous `crypto.verify` on one worker
 * thread per core (verify-bound-worker.ts), over distinct signed messages.
 */
import { webcrypto } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { generateKeyPair, type CryptoKeyPair, type ProfileName } from '../../pki/index.js';
import type { VerifyBoundJob } from './verify-bound-worker.js';

/**
 * How many different signed messages the bounds verify in turn. Distinct, as a server's messages
 * are: one signature verified over and over takes the same path through the arithmetic each time,
 * which the CPU learns; it read ~1 % faster than 256 different ones with the same key, in
 * interleaved slices (bench/README.md, "Twenty-second session").
 */
export const BOUND_SAMPLES = 256;

/** A key pair of `profile` and `count` random 1 KiB messages signed with it (WebCrypto's encodings). */
async function boundSamples(profile: ProfileName, count: number) {
  const kp = (await generateKeyPair(profile)) as CryptoKeyPair;
  const hash = profile === 'p256' ? 'SHA-256' : 'SHA-384';
  const alg = profile === 'rsa3072' ? ({ name: 'RSASSA-PKCS1-v1_5' } as const) : ({ name: 'ECDSA', hash } as const);
  const data = Array.from({ length: count }, () => webcrypto.getRandomValues(new Uint8Array(1024)));
  const signatures = await Promise.all(data.map(async (d) => new Uint8Array(await webcrypto.subtle.sign(alg, kp.privateKey as webcrypto.CryptoKey, d))));
  return { kp, hash, alg, data, signatures };
}

/**
 * Raw `crypto.subtle.verify` ECDSA (or RSA) ops/s with `concurrency` in flight, so libuv's thread
 * pool is full, for `seconds`, over `samples` distinct signed messages: what WebCrypto gets out of
 * the machine. Each call also costs this thread its job dispatch and promise, so it reads a few
 * percent under {@link syncVerifyBound}.
 */
export async function verifyBound(profile: ProfileName, seconds: number, concurrency = 64, samples = BOUND_SAMPLES): Promise<number> {
  const { kp, alg, data, signatures } = await boundSamples(profile, samples);
  let count = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const i = count % samples;
      const ok = await webcrypto.subtle.verify(alg, kp.publicKey as webcrypto.CryptoKey, signatures[i]!, data[i]!);
      if (!ok) throw new Error('verify bound: signature did not verify');
      count++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return count / ((performance.now() - started) / 1000);
}

/**
 * Raw synchronous `crypto.verify` ops/s on `threads` worker threads (one per core by default), each
 * verifying `samples` distinct signed messages in turn for `seconds` at once: what the cores do
 * with no dispatch at all, and how the server's check workers verify (pki's verifyDetachedSync).
 */
export async function syncVerifyBound(profile: ProfileName, seconds: number, threads = availableParallelism(), samples = BOUND_SAMPLES): Promise<number> {
  const { kp, hash, data, signatures } = await boundSamples(profile, samples);
  const spki = new Uint8Array(await webcrypto.subtle.exportKey('spki', kp.publicKey as webcrypto.CryptoKey));
  const job: VerifyBoundJob = { spki, signatures, data, hash: hash.replace('-', '').toLowerCase(), ...(profile === 'rsa3072' ? {} : { dsaEncoding: 'ieee-p1363' as const }) };
  const workers = Array.from({ length: threads }, () => new Worker(new URL(`./verify-bound-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url), { workerData: job }));
  const answer = (w: Worker): Promise<number | string> =>
    new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  try {
    // All threads start together, once each has checked its samples, so none runs alone.
    await Promise.all(workers.map(answer));
    const rates = workers.map(answer);
    for (const w of workers) w.postMessage(seconds);
    return ((await Promise.all(rates)) as number[]).reduce((a, b) => a + b, 0);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Both readings of the verification bound, and the one the ratios use. */
export interface VerifyBounds {
  subtle: number;
  sync: number;
  /** The higher of the two: the most the machine's cores were seen to verify. */
  best: number;
}

/**
 * The machine's signature-verification bound: how many verifications per second its cores do,
 * read both ways ({@link syncVerifyBound}, then {@link verifyBound}), `seconds` each. The ratios
 * use the higher — the server verifies synchronously in worker threads, so the WebCrypto reading
 * alone understated the cores by 2-9 % (bench/README.md, "Twenty-second session").
 */
export async function verifyBounds(profile: ProfileName, seconds: number): Promise<VerifyBounds> {
  const sync = await syncVerifyBound(profile, seconds);
  const subtle = await verifyBound(profile, seconds);
  return { subtle, sync, best: Math.max(subtle, sync) };
}
