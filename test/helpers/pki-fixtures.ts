/**
 * Shared PKI fixtures for tests across the project: a real CA hierarchy (root → issuing) of a chosen
 * profile, an Issuer, and a helper that issues staff certificates with fresh keys.
 *
 * `now` defaults to the real clock on purpose: certificates made here are also used with real TLS
 * sockets, which check validity against the real time. Tests that need exact dates pass `now`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Certificate,
  Issuer,
  createCaHierarchy,
  generateKeyPair,
  type Clearance,
  type CryptoKey,
  type KeyedCertificate,
  type ProfileName,
  type StaffCertificateParams,
} from '../../pki/index.js';

export const TEST_ORGANIZATION = 'Ministry of Tests';

export interface TestCa {
  profile: ProfileName;
  root: KeyedCertificate;
  issuing: KeyedCertificate;
  issuer: Issuer;
  trustAnchors: Certificate[];
  /** issuing CA then root, as `Issuer.chain`. */
  chain: Certificate[];
  /** Issues a staff signature certificate with a fresh key of the CA's profile. */
  staff(login: string, clearance?: Clearance, extra?: Partial<StaffCertificateParams>): Promise<{ cert: Certificate; key: CryptoKey; publicKey: CryptoKey }>;
  /** Issues a TLS server certificate for 127.0.0.1/::1/localhost with a fresh key. */
  tlsServer(): Promise<{ cert: Certificate; key: CryptoKey }>;
}

/**
 * A CA hierarchy of `profile` with an Issuer whose clock is `now`. Pass another `organization` for a
 * foreign CA (with the same organisation the CA names collide, which validation reports as
 * bad-signature rather than unknown-issuer).
 */
export async function makeTestCa(
  profile: ProfileName = 'p256',
  now: () => Date = () => new Date(),
  options: { organization?: string } = {},
): Promise<TestCa> {
  const organization = options.organization ?? TEST_ORGANIZATION;
  const { root, issuing } = await createCaHierarchy({ profile, organization, now });
  const issuer = new Issuer({ cert: issuing.cert, key: issuing.key, chain: [issuing.cert, root.cert], now });
  return {
    profile,
    root,
    issuing,
    issuer,
    trustAnchors: [root.cert],
    chain: [issuing.cert, root.cert],
    async staff(login, clearance = 'secret', extra = {}) {
      const keys = await generateKeyPair(profile);
      const cert = await issuer.issueStaffCertificate({
        fullName: `Test ${login}`,
        login,
        organization,
        department: 'Testing',
        clearance,
        ...extra,
        publicKey: keys.publicKey,
      });
      return { cert, key: keys.privateKey, publicKey: keys.publicKey };
    },
    async tlsServer() {
      const keys = await generateKeyPair(profile);
      const cert = await issuer.issueTlsServerCertificate({
        publicKey: keys.publicKey,
        commonName: 'localhost',
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1', '::1'],
      });
      return { cert, key: keys.privateKey };
    },
  };
}

/**
 * The audit-certificate renewal's arguments (server/certs/audit-cert-renewal.ts) around a test CA
 * on a clock the test moves (`clock.at`, from `T0` = 2026-03-01): an audit certificate valid 100
 * days, due in its last tenth; `events` collects the audit entries the renewal appends.
 */
export async function auditRenewalFixture(dataDir: string) {
  const T0 = new Date('2026-03-01T00:00:00Z');
  const clock = { at: T0 };
  const ca = await makeTestCa('p256', () => clock.at);
  const keys = await generateKeyPair('p256');
  const cert = await ca.issuer.issueAuditCertificate({ commonName: 'Test audit log', publicKey: keys.publicKey, validityDays: 100 });
  const events: unknown[] = [];
  const args = {
    dataDir,
    certPath: 'audit.pem',
    cert,
    issuer: ca.issuer,
    audit: { append: async (e: readonly unknown[]) => void events.push(...e) },
    now: () => clock.at,
  };
  return { T0, clock, ca, cert, events, args };
}

/** A fresh temp dir and a cleanup function; write files for the openssl CLI into it. */
export function tempDir(prefix = 'sigil-pki-'): { dir: string; write(name: string, data: string | Uint8Array): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    write(name, data) {
      const path = join(dir, name);
      writeFileSync(path, data);
      return path;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Result of one run of the real `openssl` CLI. */
export interface OpensslResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `openssl …args` as a child process (never throws on a non-zero exit). */
export function openssl(args: string[], input?: string | Uint8Array): Promise<OpensslResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    // openssl may exit without reading stdin (e.g. on a usage error); that is not our failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}
