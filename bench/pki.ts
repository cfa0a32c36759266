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

/** Operations per second of `op` with CONCURRENCY operations in flight for SECONDS. */
async function perSecond(op: (i: number) => Promise<unknown>): Promise<number> {
  let count = 0;
  const started = performance.now();
  const end = started + SECONDS * 1000;
  async function worker(): Promise<void> {
    while (performance.now() < end) {
      await op(count);
      count++;
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return count / ((performance.now() - started) / 1000);
}

interface Row {
  profile: ProfileName;
  rawSign: number;
  cmsSign: number;
  rawVerify: number;
  cmsVerify: number;
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

  const rawSign = await perSecond(() => crypto.subtle.sign(signParams, key, content));
  const cmsSign = await perSecond(() => signDetached({ content, signerCert: cert, signerKey: key, label: 'secret' }));
  const rawVerify = await perSecond(() => crypto.subtle.verify(signParams, publicKey, rawSignature, content));
  // Searching the embedded certificate is the server's common case when it has no expected signer.
  const cmsVerify = await perSecond(async () => {
    const r = await verifyDetached(cms, content);
    if (!r.ok) throw new Error(r.reason);
  });
  return { profile, rawSign, cmsSign, rawVerify, cmsVerify };
}

function fmt(n: number): string {
  return n.toFixed(0).padStart(9);
}

function pct(a: number, b: number): string {
  return `${((a / b) * 100).toFixed(0)}%`.padStart(7);
}

async function main(): Promise<void> {
  const only = process.env.BENCH_PROFILES?.split(',') as ProfileName[] | undefined;
  const profiles = only ?? [...PROFILE_NAMES];
  console.log(`CMS SignedData vs raw WebCrypto: ${SECONDS}s per figure, ${CONCURRENCY} in flight, ${CONTENT_BYTES}-byte content, label 'secret'`);
  console.log('profile    raw sign/s  CMS sign/s  ratio  raw verify/s  CMS verify/s  ratio');
  for (const profile of profiles) {
    const r = await benchProfile(profile);
    console.log(
      `${r.profile.padEnd(8)} ${fmt(r.rawSign)}   ${fmt(r.cmsSign)} ${pct(r.cmsSign, r.rawSign)}     ${fmt(r.rawVerify)}     ${fmt(r.cmsVerify)} ${pct(r.cmsVerify, r.rawVerify)}`,
    );
  }
  console.log('goal: CMS verify >= 80% of raw verify');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
