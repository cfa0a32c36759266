/**
 * CMS signing and verification throughput per profile, beside raw WebCrypto sign/verify of the same
 * key in the same run, and the ratio CMS/raw. Prints figures; asserts nothing.
 *
 *   make build && node dist/bench/pki.js            # 2 s per measurement
 *   BENCH_SECONDS=5 BENCH_CONCURRENCY=64 node dist/bench/pki.js
 *
 * Concurrency keeps many operations in flight, as the server does, so libuv's thread pool is busy.
 */
import {
  Issuer,
  PROFILE_NAMES,
  createCaHierarchy,
  generateKeyPair,
  getProfile,
  signDetached,
  verifyDetached,
  type ProfileName,
} from '../pki/index.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const CONTENT_BYTES = 1024;

interface Rate {
  /** Operations per wall-clock second. */
  perSecond: number;
  /** Process CPU time (main thread and thread pool) per operation, in microseconds. */
  cpuMicros: number;
}

/**
 * Throughput of `op` with CONCURRENCY operations in flight for SECONDS, and its CPU cost per
 * operation. On a shared machine wall-clock rates move with other load; CPU per operation does not,
 * so ratios are given on both.
 */
async function measure(op: (i: number) => Promise<unknown>): Promise<Rate> {
  let count = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const end = started + SECONDS * 1000;
  async function worker(): Promise<void> {
    while (performance.now() < end) {
      await op(count);
      count++;
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const cpu = process.cpuUsage(cpu0);
  return { perSecond: count / ((performance.now() - started) / 1000), cpuMicros: (cpu.user + cpu.system) / count };
}

interface Row {
  profile: ProfileName;
  rawSign: Rate;
  cmsSign: Rate;
  rawVerify: Rate;
  cmsVerify: Rate;
  cmsVerifyExpected: Rate;
}

/** A staff certificate and key of `profile` from a fresh CA. */
async function signer(profile: ProfileName) {
  const { root, issuing } = await createCaHierarchy({ profile, organization: 'Bench' });
  const issuer = new Issuer({ cert: issuing.cert, key: issuing.key, chain: [issuing.cert, root.cert] });
  const keys = await generateKeyPair(profile);
  const cert = await issuer.issueStaffCertificate({
    fullName: 'Bench Signer',
    login: 'bench',
    organization: 'Bench',
    department: 'Bench',
    clearance: 'top-secret',
    publicKey: keys.publicKey,
  });
  const p = getProfile(profile);
  const signParams = p.signAlgorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: p.hash } : { name: p.signAlgorithm.name };
  return { cert, key: keys.privateKey, publicKey: keys.publicKey, signParams };
}

async function benchProfile(profile: ProfileName): Promise<Row> {
  const { cert, key, publicKey, signParams } = await signer(profile);
  const content = crypto.getRandomValues(new Uint8Array(CONTENT_BYTES));
  const rawSignature = await crypto.subtle.sign(signParams, key, content);
  const cms = await signDetached({ content, signerCert: cert, signerKey: key, label: 'secret' });
  const check = await verifyDetached(cms, content);
  if (!check.ok) throw new Error(`bench set-up: ${check.reason}: ${check.detail}`);

  const rawSign = await measure(() => crypto.subtle.sign(signParams, key, content));
  const cmsSign = await measure(() => signDetached({ content, signerCert: cert, signerKey: key, label: 'secret' }));
  const rawVerify = await measure(() => crypto.subtle.verify(signParams, publicKey, rawSignature, content));
  // Searching the embedded certificate is the server's common case when it has no expected signer.
  const cmsVerify = await measure(async () => {
    const r = await verifyDetached(cms, content);
    if (!r.ok) throw new Error(r.reason);
  });
  // The server's path when it knows the sender (the logged-in user's certificate).
  const cmsVerifyExpected = await measure(async () => {
    const r = await verifyDetached(cms, content, { expectedSigner: cert });
    if (!r.ok) throw new Error(r.reason);
  });
  return { profile, rawSign, cmsSign, rawVerify, cmsVerify, cmsVerifyExpected };
}

function cell(r: Rate): string {
  return `${r.perSecond.toFixed(0).padStart(7)}/s ${r.cpuMicros.toFixed(0).padStart(5)}µs`;
}

/** CMS as a share of raw: by wall-clock rate, and by CPU per operation (raw cost / CMS cost). */
function ratio(cms: Rate, raw: Rate): string {
  const wall = ((cms.perSecond / raw.perSecond) * 100).toFixed(0);
  const cpu = ((raw.cpuMicros / cms.cpuMicros) * 100).toFixed(0);
  return `${wall.padStart(4)}% ${cpu.padStart(4)}%`;
}

async function main(): Promise<void> {
  const only = process.env.BENCH_PROFILES?.split(',') as ProfileName[] | undefined;
  const profiles = only ?? [...PROFILE_NAMES];
  console.log(`CMS SignedData vs raw WebCrypto: ${SECONDS}s per figure, ${CONCURRENCY} in flight, ${CONTENT_BYTES}-byte content, label 'secret'`);
  console.log('each cell: operations per second, CPU microseconds per operation; ratios CMS/raw by rate and by CPU');
  for (const profile of profiles) {
    const r = await benchProfile(profile);
    console.log(`${r.profile}`);
    console.log(`  sign     raw ${cell(r.rawSign)}   CMS ${cell(r.cmsSign)}   ratio ${ratio(r.cmsSign, r.rawSign)}`);
    console.log(`  verify   raw ${cell(r.rawVerify)}   CMS ${cell(r.cmsVerify)}   ratio ${ratio(r.cmsVerify, r.rawVerify)}  (signer found in the message)`);
    console.log(`  verify   raw ${cell(r.rawVerify)}   CMS ${cell(r.cmsVerifyExpected)}   ratio ${ratio(r.cmsVerifyExpected, r.rawVerify)}  (expected signer given)`);
  }
  console.log('goal: CMS verify >= 80% of raw verify');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
