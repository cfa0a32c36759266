/**
 * Login throughput and latency (issue 8) with the configured argon2id cost, beside the raw argon2
 * hash rate of the same cost measured in the same run. Clients run the whole login (challenge,
 * sign the nonce with the certificate key, login) over real TLS against a `sigil-server` child.
 *
 *   make build && node dist/bench/login.js
 *   BENCH_SECONDS=10 BENCH_CLIENTS=16 node dist/bench/login.js
 *
 * Knobs: BENCH_SECONDS (5), BENCH_CLIENTS (8), BENCH_USERS (4), BENCH_PROFILE (p384).
 */
import argon2 from 'argon2';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ProfileName } from '../pki/index.js';
import { Client, createUser, fmt, initDataDir, login, machineNote, officerOf, percentile, startServerProc, type LoadUser } from './lib/load.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const USERS = Math.min(Number(process.env.BENCH_USERS ?? 4), CLIENTS);
const PROFILE = (process.env.BENCH_PROFILE ?? 'p384') as ProfileName;

async function rawArgon2(cost: { memoryCost: number; timeCost: number; parallelism: number }, concurrency: number, seconds: number): Promise<number> {
  let count = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await argon2.hash('Chosen-passphrase-raw-rate-1', { type: argon2.argon2id, ...cost });
        count++;
      }
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

async function main(): Promise<void> {
  console.log(`login: ${CLIENTS} clients as ${USERS} users, ${SECONDS} s, profile ${PROFILE}`);
  console.log(machineNote());
  // The configured cost: the defaults init writes (config.ts), used unchanged.
  const { dataDir, init } = await initDataDir({ profile: PROFILE });
  try {
    const cfg = JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8')) as { argon2?: { memoryCost?: number; timeCost?: number; parallelism?: number } };
    const cost = { memoryCost: cfg.argon2?.memoryCost ?? 19_456, timeCost: cfg.argon2?.timeCost ?? 2, parallelism: cfg.argon2?.parallelism ?? 1 };
    const raw = await rawArgon2(cost, 4, 3);
    console.log(`argon2id raw: ${raw.toFixed(1)} hashes/s (m=${cost.memoryCost} KiB, t=${cost.timeCost}, p=${cost.parallelism}; 4 in flight, in this process)`);

    const server = await startServerProc(dataDir);
    try {
      const officer = await officerOf(server.url, init, 1);
      const users: LoadUser[] = [];
      for (let i = 0; i < USERS; i++) users.push(await createUser(officer, { login: `login${i}`, clearance: 'secret', profile: PROFILE }));
      const clients = Array.from({ length: CLIENTS }, (_, c) => {
        const u = users[c % USERS]!;
        return { u, client: new Client(server.url, officer.caPem, u.certPem, u.keyPem) };
      });
      await Promise.all(clients.map((c) => login(c.client, c.u, c.u.password))); // warm the connections
      const latencies: number[] = [];
      let failed = 0;
      const cpu0 = server.cpuSeconds();
      const started = performance.now();
      const end = started + SECONDS * 1000;
      await Promise.all(
        clients.map(async (c) => {
          while (performance.now() < end) {
            const t0 = performance.now();
            try {
              await login(c.client, c.u, c.u.password);
              latencies.push(performance.now() - t0);
            } catch {
              failed++;
            }
          }
        }),
      );
      const elapsed = (performance.now() - started) / 1000;
      const cpu = server.cpuSeconds() - cpu0;
      latencies.sort((a, b) => a - b);
      const rate = latencies.length / elapsed;
      console.log(`logins    ${fmt(rate, 1)} /s  (${latencies.length} in ${elapsed.toFixed(2)} s${failed ? `, ${failed} failed` : ''}; each = challenge + client signature + login)`);
      console.log(`latency   p50 ${fmt(percentile(latencies, 50), 1)} ms  p95 ${fmt(percentile(latencies, 95), 1)} ms  p99 ${fmt(percentile(latencies, 99), 1)} ms`);
      console.log(`server    CPU ${cpu.toFixed(2)} s (${((cpu / elapsed) * 100).toFixed(0)} % of one core); RSS ${server.rssMb().now.toFixed(0)} MiB`);
      console.log(`logins / raw argon2 = ${((rate / raw) * 100).toFixed(0)} %  (a login verifies one argon2id hash)`);
      for (const c of clients) c.client.close();
      officer.client.close();
      for (const u of users) u.client.close();
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dirname(dataDir), { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
