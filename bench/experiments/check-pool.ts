/**
 * The message check workers alone, without HTTP, SQLite or the writer: how many P-384 messages a
 * `CheckPool` verifies, hashes and seals per second with many in flight, and where its CPU goes
 * (per thread, from /proc: the workers, this main thread, V8's platform threads). The ceiling of
 * the server's message path on this machine, beside the raw verify bound that bench/messages
 * prints.
 *
 *   make build && node dist/bench/experiments/check-pool.js
 *   BENCH_CHECKS=20000 BENCH_IN_FLIGHT=64 node dist/bench/experiments/check-pool.js
 *   node --single-threaded-gc dist/bench/experiments/check-pool.js      # a V8 flag's effect
 *
 * Knobs: BENCH_CHECKS (12,000), BENCH_IN_FLIGHT (800: 50 clients × 16 per request), BENCH_WORKERS
 * (2: the pool's size; with 1 its worker alone costs what two do per check). Not run by
 * `make bench`; the answer is in bench/README.md ("Seventh session").
 */
import { webcrypto } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { CheckPool } from '../../server/messaging/check-pool.js';
import { sampleSigner, signedSamples } from '../lib/signed-sample.js';

const CHECKS = Number(process.env.BENCH_CHECKS ?? 12_000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 800);

/** CPU ms of each thread of this process, by thread id. */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

const signer = await sampleSigner();
const cert = signer.cert;
const messages = await signedSamples(400, signer);
const ck = await webcrypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const pool = new CheckPool(WORKERS);
const check = pool.checker(new Uint8Array(32));
const one = (i: number): ReturnType<typeof check> => {
  const m = messages[i % messages.length]!;
  // Fresh copies, as request bodies are.
  return check({ id: m.id, header: Buffer.from(m.header), signature: Buffer.from(m.signature), body: Buffer.from(m.body), expectedSigner: cert, sealWith: ck });
};
await Promise.all([0, 1, 2, 3].map(one)); // both workers started and warm

const before = threadCpu();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let next = 0;
let bad = 0;
await Promise.all(
  Array.from({ length: IN_FLIGHT }, async () => {
    while (next < CHECKS) if (!(await one(next++)).check.ok) bad++;
  }),
);
const secs = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const after = threadCpu();
await pool.close();

console.log(`check-pool: ${CHECKS} P-384 checks (verify, digests, keyed hashes, seal), ${IN_FLIGHT} in flight, ${WORKERS} workers; node ${process.version}`);
console.log(`rate      ${(CHECKS / secs).toFixed(0)} checks/s (${secs.toFixed(2)} s)${bad ? `; ${bad} FAILED` : ''}`);
console.log(`CPU       ${((cpu.user + cpu.system) / CHECKS).toFixed(0)} µs per check, the whole process`);
const rows = [...after]
  .map(([tid, ms]) => [tid, ((ms - (before.get(tid) ?? 0)) * 1000) / CHECKS] as const)
  .filter(([, us]) => us >= 1)
  .sort((a, b) => b[1] - a[1]);
console.log(`threads   ${rows.map(([tid, us]) => `${tid === String(process.pid) ? 'main' : tid} ${us.toFixed(0)}`).join(' · ')} µs per check (the first ${WORKERS}: the check workers; the ~4 small ones V8's platform threads)`);
