/**
 * Runs a real Sigil appliance for tests: `initAppliance` into a temp dir, `openAppliance`,
 * `createApp` and the real TLS listener on 127.0.0.1 port 0, in this process. Requests go over
 * real TLS with a client certificate. The first officer has already done the first login
 * (password changed, envelope receipt signed).
 *
 * Stable API (client-cli and messaging tests rely on it): see {@link TestAppliance}.
 */
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Certificate,
  createCsr,
  exportPrivateKeyPem,
  generateKeyPair,
  openPkcs12,
  signDetached,
  type Clearance,
  type CryptoKey,
  type CryptoKeyPair,
  type ProfileName,
} from '../../pki/index.js';
import {
  createApp,
  createLogger,
  envelopeReceiptStatement,
  initAppliance,
  listen,
  loadConfig,
  loginStatement,
  openAppliance,
  parseListen,
  PATHS,
  silentLogger,
  type AppDeps,
  type Appliance,
  type ConfigInput,
  type ExtraRoutes,
  type InitResult,
  type Listener,
  type Logger,
} from '../../server/index.js';

/** Cheap argon2 for tests that are not about argon2 (the default-cost test sets its own). */
export const TEST_ARGON2 = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const;
/**
 * The disk reserve of test appliances: 1 MiB keeps it made and checked at every open without the
 * default's 68 MiB of zeros per appliance (hundreds in a run). The full-disk tests set their own.
 */
export const TEST_DISK_RESERVE_BYTES = 1024 * 1024;

/** Options of {@link startTestAppliance}. */
export interface TestApplianceOptions {
  profile?: ProfileName;
  /** The appliance clock (init and run time). Default real time. */
  now?: () => Date;
  /** Listen address. Default 127.0.0.1:0. */
  listen?: string;
  /** Configuration overrides (argon2 defaults to {@link TEST_ARGON2}). */
  config?: ConfigInput;
  /** Keep log lines (in `logs`) instead of discarding them. */
  captureLogs?: boolean;
  /** Extra sub-apps to mount (messaging tests). */
  extraRoutes?: ExtraRoutes;
  /**
   * Real milliseconds between the root CRL watch's checks (default 10 s). Tests of what readers do
   * with messages accepted before the server noticed a revoked issuing CA set it to hours.
   */
  rootCrlCheckEveryMs?: number;
  /** Skip the officer's first login (tests of the first-login flow). */
  skipOfficerFirstLogin?: boolean;
}

/** An HTTP answer. `body` is parsed JSON when the answer is JSON, else text. */
export interface TestResponse<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

/** Request options. `cert`/`key` default to the officer's; pass `cert: null` to send none. */
export interface TestRequestOptions {
  method?: string;
  body?: unknown;
  /** Raw body bytes/text sent as is (overrides `body`). */
  rawBody?: string | Buffer;
  token?: string;
  cert?: Certificate | string | null;
  key?: CryptoKey | string | null;
  headers?: Record<string, string>;
}

/** A user with credentials ready for requests. */
export interface TestUser {
  login: string;
  password: string;
  cert: Certificate;
  key: CryptoKey;
  certPem: string;
  keyPem: string;
  token: string;
}

export interface TestAppliance {
  url: string;
  port: number;
  dataDir: string;
  init: InitResult;
  appliance: Appliance;
  deps: AppDeps;
  listener: Listener;
  /** Log lines (JSON) when `captureLogs`. */
  logs: string[];
  officer: TestUser & { p12Path: string; p12Password: string; envelopePassword: string };
  /** The CA chain PEM (issuing + root) to trust the server. */
  caPem: string;
  request<T = any>(path: string, opts?: TestRequestOptions): Promise<TestResponse<T>>;
  /** Challenge + signed nonce + login; returns the token (throws on a non-200). */
  loginAs(login: string, password: string, cert: Certificate, key: CryptoKey): Promise<string>;
  /** Officer creates the account, issues a certificate from a CSR, the user does the first login. */
  createStaff(p: { login: string; clearance: Clearance; role?: 'staff' | 'officer' | 'auditor' | 'admin'; fullName?: string; department?: string }): Promise<TestUser>;
  stop(): Promise<void>;
}

async function pemOf(v: Certificate | string): Promise<string> {
  return typeof v === 'string' ? v : v.pem;
}

async function keyPemOf(v: CryptoKey | string): Promise<string> {
  return typeof v === 'string' ? v : exportPrivateKeyPem(v);
}

/** Sends one HTTPS request over a fresh TLS connection. */
export async function httpsRequest<T = any>(
  url: string,
  path: string,
  caPem: string,
  opts: TestRequestOptions & { cert?: Certificate | string | null; key?: CryptoKey | string | null },
): Promise<TestResponse<T>> {
  const u = new URL(path, url);
  const payload =
    opts.rawBody !== undefined ? opts.rawBody : opts.body !== undefined ? JSON.stringify(opts.body) : undefined;
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (payload !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const cert = opts.cert ? await pemOf(opts.cert) : undefined;
  const key = opts.key ? await keyPemOf(opts.key) : undefined;
  return new Promise<TestResponse<T>>((resolve, reject) => {
    const req = https.request(
      {
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: u.pathname + u.search,
        method: opts.method ?? (payload !== undefined ? 'POST' : 'GET'),
        headers,
        ca: caPem,
        cert,
        key,
        agent: false,
        minVersion: 'TLSv1.3',
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          if ((res.headers['content-type'] ?? '').includes('application/json')) {
            try {
              body = JSON.parse(text);
            } catch {
              body = text;
            }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: body as T });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Signs `content` as `cert`/`key` (detached CMS, base64). */
export async function signB64(content: Uint8Array, cert: Certificate, key: CryptoKey): Promise<string> {
  return Buffer.from(await signDetached({ content, signerCert: cert, signerKey: key })).toString('base64');
}

/** A fresh key pair and a CSR PEM for it. */
export async function newKeyAndCsr(profile: ProfileName, login: string): Promise<{ keyPair: CryptoKeyPair; csrPem: string }> {
  const keyPair = (await generateKeyPair(profile)) as CryptoKeyPair;
  const csr = await createCsr({ keyPair, subject: { commonName: login } });
  return { keyPair, csrPem: csr.pem };
}

/** Starts an appliance. Call `stop()` (e.g. in `t.teardown`). */
export async function startTestAppliance(opts: TestApplianceOptions = {}): Promise<TestAppliance> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sigil-appliance-'));
  const now = opts.now ?? (() => new Date());
  const logs: string[] = [];
  const log: Logger = opts.captureLogs ? createLogger({ level: 'debug', write: (l) => void logs.push(l) }) : silentLogger;
  const listenText = opts.listen ?? '127.0.0.1:0';
  const init = await initAppliance({
    dataDir,
    listen: listenText,
    profile: opts.profile,
    now,
    config: { argon2: TEST_ARGON2, diskReserveBytes: TEST_DISK_RESERVE_BYTES, ...opts.config },
  });
  const config = await loadConfig(join(dataDir, PATHS.config));
  const appliance = await openAppliance({
    dataDir,
    config,
    masterKey: { keyFilePath: join(dataDir, PATHS.masterKeyFile) },
    now,
    log,
    ...(opts.rootCrlCheckEveryMs !== undefined ? { rootCrlCheckEveryMs: opts.rootCrlCheckEveryMs } : {}),
  });
  const deps: AppDeps = { appliance, now, config, log };
  const app = createApp(deps, opts.extraRoutes);
  const listener = await listen({ app, appliance, address: parseListen(listenText), allowedPeers: config.allowedPeers, log });
  const caPem = readFileSync(init.ca.chain, 'utf8');
  const url = listener.url;

  const p12 = await openPkcs12(new Uint8Array(readFileSync(init.officer.p12)), init.officer.p12Password);
  const officerKeyPem = await exportPrivateKeyPem(p12.key);
  const officer = {
    login: init.officer.login,
    password: init.officer.envelopePassword,
    envelopePassword: init.officer.envelopePassword,
    cert: p12.cert,
    key: p12.key,
    certPem: p12.cert.pem,
    keyPem: officerKeyPem,
    token: '',
    p12Path: init.officer.p12,
    p12Password: init.officer.p12Password,
  };

  const request = <T = any>(path: string, o: TestRequestOptions = {}): Promise<TestResponse<T>> =>
    httpsRequest<T>(url, path, caPem, {
      ...o,
      cert: o.cert === null ? undefined : (o.cert ?? officer.certPem),
      key: o.key === null ? undefined : (o.key ?? officer.keyPem),
    });

  const loginResponse = async (login: string, password: string, cert: Certificate, key: CryptoKey) => {
    const certPem = cert.pem;
    const keyPem = await exportPrivateKeyPem(key);
    const ch = await request('/v1/auth/challenge', { body: { login }, cert: certPem, key: keyPem });
    if (ch.status !== 200) throw new Error(`challenge for ${login}: ${ch.status} ${JSON.stringify(ch.body)}`);
    const signature = await signB64(loginStatement(login, ch.body.nonce), cert, key);
    return request('/v1/auth/login', { body: { login, password, nonce: ch.body.nonce, signature }, cert: certPem, key: keyPem });
  };

  const loginAs = async (login: string, password: string, cert: Certificate, key: CryptoKey): Promise<string> => {
    const r = await loginResponse(login, password, cert, key);
    if (r.status !== 200) throw new Error(`login ${login}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.token as string;
  };

  const firstLogin = async (login: string, envelopePassword: string, newPassword: string, cert: Certificate, key: CryptoKey) => {
    const r = await loginResponse(login, envelopePassword, cert, key);
    if (r.status !== 200) throw new Error(`first login ${login}: ${r.status} ${JSON.stringify(r.body)}`);
    const receipt = await signB64(envelopeReceiptStatement(login, r.body.envelopeSerial), cert, key);
    const keyPem = await exportPrivateKeyPem(key);
    const f = await request('/v1/auth/first-login', {
      body: { newPassword, receipt },
      token: r.body.token,
      cert: cert.pem,
      key: keyPem,
    });
    if (f.status !== 200) throw new Error(`first-login ${login}: ${f.status} ${JSON.stringify(f.body)}`);
    return r.body.token as string;
  };

  if (!opts.skipOfficerFirstLogin) {
    const newPassword = 'Chosen-passphrase-of-the-SO-1';
    try {
      officer.token = await firstLogin(officer.login, officer.envelopePassword, newPassword, officer.cert, officer.key);
    } catch (err) {
      await listener.stop(0);
      await appliance.close();
      throw err;
    }
    officer.password = newPassword;
  }

  const createStaff: TestAppliance['createStaff'] = async (p) => {
    const created = await request('/v1/users', {
      token: officer.token,
      body: {
        login: p.login,
        fullName: p.fullName ?? `User ${p.login}`,
        department: p.department ?? 'Operations',
        clearance: p.clearance,
        role: p.role ?? 'staff',
      },
    });
    if (created.status !== 201) throw new Error(`create ${p.login}: ${created.status} ${JSON.stringify(created.body)}`);
    const { keyPair, csrPem } = await newKeyAndCsr(appliance.meta.profile, p.login);
    const issued = await request(`/v1/users/${p.login}/certificates`, { token: officer.token, body: { csr: csrPem } });
    if (issued.status !== 201) throw new Error(`issue ${p.login}: ${issued.status} ${JSON.stringify(issued.body)}`);
    const cert = Certificate.fromPem(issued.body.certificate);
    const password = `Chosen-passphrase-${Buffer.from(p.login).toString('hex').slice(0, 8)}-2`;
    const token = await firstLogin(p.login, created.body.envelope.password, password, cert, keyPair.privateKey);
    return {
      login: p.login,
      password,
      cert,
      key: keyPair.privateKey,
      certPem: cert.pem,
      keyPem: await exportPrivateKeyPem(keyPair.privateKey),
      token,
    };
  };

  let stopped: Promise<void> | undefined;
  return {
    url,
    port: listener.address.port,
    dataDir,
    init,
    appliance,
    deps,
    listener,
    logs,
    officer,
    caPem,
    request,
    loginAs,
    createStaff,
    stop: () =>
      (stopped ??= (async () => {
        await listener.stop(2000);
        await appliance.close();
        rmSync(dataDir, { recursive: true, force: true });
      })()),
  };
}
