/**
 * File transfer (issue 8): upload and download MB/s of one file (default 100 MiB) over real TLS
 * against a `sigil-server` child, beside the raw AES-256-GCM throughput (WebCrypto, 1 MiB chunks,
 * the vault's chunk size, 4 in flight) measured in the same run.
 *
 *   make build && node dist/bench/files.js
 *   BENCH_FILE_MIB=20 node dist/bench/files.js
 *
 * Knobs: BENCH_FILE_MIB (100; the server's limit is 100 MiB), BENCH_PROFILE (p256).
 */
import { createHash, webcrypto } from 'node:crypto';
import https from 'node:https';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ProfileName } from '../pki/index.js';
import { createUser, initDataDir, machineNote, officerOf, startServerProc, type LoadUser } from './lib/load.js';

const MIB = 1024 * 1024;
const FILE_MIB = Number(process.env.BENCH_FILE_MIB ?? 100);
const PROFILE = (process.env.BENCH_PROFILE ?? 'p256') as ProfileName;

async function rawAesGcm(seconds: number): Promise<number> {
  const key = await webcrypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt']);
  const chunk = webcrypto.getRandomValues(new Uint8Array(65536));
  const data = new Uint8Array(MIB);
  for (let i = 0; i < MIB; i += chunk.length) data.set(chunk, i);
  let bytes = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (performance.now() < end) {
        await webcrypto.subtle.encrypt({ name: 'AES-GCM', iv: webcrypto.getRandomValues(new Uint8Array(12)) }, key, data);
        bytes += data.length;
      }
    }),
  );
  return bytes / MIB / ((performance.now() - started) / 1000);
}

/** Streams `size` bytes (a repeated random 1 MiB block) as an upload; resolves with the answer. */
function upload(u: LoadUser, url: string, conv: string, size: number, block: Uint8Array): Promise<{ status: number; body: any }> {
  const target = new URL(`/v1/files?conversation=${encodeURIComponent(conv)}`, url);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method: 'POST',
        headers: { authorization: `Bearer ${u.client.token}`, 'content-type': 'application/octet-stream', 'content-length': String(size) },
        agent: u.client.agent,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || 'null') }));
      },
    );
    req.on('error', reject);
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        const n = Math.min(block.length, size - sent);
        sent += n;
        if (!req.write(block.subarray(0, n))) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

async function main(): Promise<void> {
  console.log(`files: one ${FILE_MIB} MiB file up and down`);
  console.log(machineNote());
  const raw = await rawAesGcm(2);
  console.log(`AES-256-GCM raw: ${raw.toFixed(0)} MiB/s (WebCrypto, 1 MiB chunks, 4 in flight, in this process)`);
  const { dataDir, init } = await initDataDir({ profile: PROFILE, config: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } } });
  try {
    const server = await startServerProc(dataDir);
    try {
      const officer = await officerOf(server.url, init, 1);
      const u = await createUser(officer, { login: 'mover', clearance: 'secret', profile: PROFILE });
      const g = await u.client.request('/v1/groups', { body: { name: 'file-room', label: 'restricted' } });
      const block = webcrypto.getRandomValues(new Uint8Array(65536));
      const mib = new Uint8Array(MIB);
      for (let i = 0; i < MIB; i += block.length) mib.set(block, i);
      const size = FILE_MIB * MIB;
      const expected = createHash('sha384');
      for (let s = 0; s < size; s += MIB) expected.update(mib.subarray(0, Math.min(MIB, size - s)));
      const digest = expected.digest('base64');

      let cpu0 = server.cpuSeconds();
      let t0 = performance.now();
      const up = await upload(u, server.url, g.body.id, size, mib);
      let secs = (performance.now() - t0) / 1000;
      let cpu = server.cpuSeconds() - cpu0;
      if (up.status !== 201) throw new Error(`upload: ${up.status} ${JSON.stringify(up.body)}`);
      console.log(`upload    ${(FILE_MIB / secs).toFixed(1)} MiB/s (${FILE_MIB} MiB in ${secs.toFixed(2)} s; server CPU ${cpu.toFixed(2)} s; digest ${up.body.sha384 === digest ? 'matches' : 'DIFFERS'})`);

      cpu0 = server.cpuSeconds();
      t0 = performance.now();
      const down = await u.client.request(`/v1/files/${up.body.fileId}`, { binary: true, timeoutMs: 600_000 });
      secs = (performance.now() - t0) / 1000;
      cpu = server.cpuSeconds() - cpu0;
      const got = createHash('sha384').update(down.body as Buffer).digest('base64');
      console.log(`download  ${(FILE_MIB / secs).toFixed(1)} MiB/s (${down.status}, ${((down.body as Buffer).length / MIB).toFixed(0)} MiB in ${secs.toFixed(2)} s; server CPU ${cpu.toFixed(2)} s; digest ${got === digest ? 'matches' : 'DIFFERS'})`);
      console.log(`server    RSS ${server.rssMb().now.toFixed(0)} MiB (peak ${server.rssMb().peak.toFixed(0)} MiB)`);
      u.client.close();
      officer.client.close();
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
