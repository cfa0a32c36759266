/**
 * Load-generation parts shared by the benchmarks (bench/*.ts) and the fault tests (test/faults/):
 * a `sigil-server` child process on a temp data dir (so its CPU and RSS are measured apart from
 * the load generator), keep-alive HTTPS clients with client certificates, accounts created through
 * the officer API, signed messages, percentiles and /proc sampling.
 *
 * Lives in bench/lib/ so `make build` compiles it for dist/bench/*.js while `make bench` (which
 * runs only dist/bench/*.js) does not run it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
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
import { envelopeReceiptStatement, loginStatement } from '../../server/index.js';
import { threadPoolSize } from '../../server/threadpool.js';
import type { VerifyBoundJob } from './verify-bound-worker.js';
import { canonicalDeleteStatement, canonicalHeader, type MessageHeader } from '../../server/messaging/index.js';

const enc = new TextEncoder();

/** The repository root (found from this file whether run as TS or from dist/). */
export const REPO_ROOT = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
})();
/** The built server binary. */
export const SERVER_MAIN = join(REPO_ROOT, 'dist', 'server', 'main.js');

/**
 * The jemalloc library `hardening/apply` would preload on this host (SIGIL_ALLOCATOR=auto: the same
 * places, in the same order), or undefined: the server then runs on glibc's malloc.
 */
export function jemallocLibrary(): string | undefined {
  const multiarch = ({ x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' } as Record<string, string>)[process.arch];
  const candidates = [...(multiarch ? [`/usr/lib/${multiarch}`] : []), '/usr/lib64', '/usr/lib'].map((d) => `${d}/libjemalloc.so.2`);
  return candidates.find((f) => {
    try {
      return lstatSync(f).isFile();
    } catch {
      return false;
    }
  });
}

/** What the systemd unit sets beside jemalloc (hardening/apply renders the same). */
export const JEMALLOC_CONF = 'dirty_decay_ms:1000,muzzy_decay_ms:0,oversize_threshold:33554432';

const childEnv = (extra: Record<string, string> = {}): Record<string, string> => {
  // The allocator, MALLOC_ARENA_MAX and UV_THREADPOOL_SIZE as the systemd unit sets them
  // (hardening/apply renders sigil-server.service.in); set any in the bench's environment, or in
  // BENCH_SERVER_ENV, to compare (`BENCH_SERVER_ENV=LD_PRELOAD=` runs on glibc's malloc).
  const env: Record<string, string> = { MALLOC_ARENA_MAX: '8', UV_THREADPOOL_SIZE: String(threadPoolSize()) };
  const jemalloc = jemallocLibrary();
  if (jemalloc) Object.assign(env, { LD_PRELOAD: jemalloc, MALLOC_CONF: JEMALLOC_CONF });
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'UV_THREADPOOL_SIZE', 'MALLOC_ARENA_MAX', 'LD_PRELOAD', 'MALLOC_CONF']) if (process.env[k]) env[k] = process.env[k] as string;
  // Nothing else of the bench's environment reaches the server (a stray variable must not change
  // what is measured) but what BENCH_SERVER_ENV names, `K=V K2=V2`: for experiments that read one.
  for (const kv of (process.env.BENCH_SERVER_ENV ?? '').split(' ').filter(Boolean)) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return { ...env, ...extra };
};

/** What `sigil-server init --json` prints (the fields the load tools use). */
export interface InitJson {
  url: string;
  ca: { root: string; chain: string };
  officer: { login: string; envelopePassword: string; p12: string; p12Password: string };
}

/**
 * `sigil-server init --json` into a fresh temp dir (or `dataDir`), then merges `config` into its
 * config.json (e.g. a cheaper argon2 for benches that are not about login).
 */
export async function initDataDir(opts: { profile?: ProfileName; config?: Record<string, unknown>; dataDir?: string } = {}): Promise<{ dataDir: string; init: InitJson }> {
  const dataDir = opts.dataDir ?? join(mkdtempSync(join(tmpdir(), 'sigil-load-')), 'data');
  const args = [SERVER_MAIN, 'init', '--data', dataDir, '--listen', '127.0.0.1:0', '--json', '--profile', opts.profile ?? 'p384'];
  const out = await new Promise<string>((res, rej) => {
    const child = spawn(process.execPath, args, { env: childEnv(), cwd: REPO_ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', rej);
    child.on('close', (code) => (code === 0 ? res(stdout) : rej(new Error(`init exited ${code}: ${stderr}`))));
  });
  const init = JSON.parse(out) as InitJson;
  if (opts.config) {
    const path = join(dataDir, 'config.json');
    const current = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...current, ...opts.config }, null, 2));
  }
  return { dataDir, init };
}

/** A running `sigil-server start` child. */
export interface ServerProc {
  child: ChildProcess;
  pid: number;
  url: string;
  stderr(): string;
  exited: Promise<number | null>;
  /** CPU seconds (user + system) the process used so far, from /proc/<pid>/stat. */
  cpuSeconds(): number;
  /** Resident set size now and at its peak, in MiB, from /proc/<pid>/status. */
  rssMb(): { now: number; peak: number; anon: number; file: number };
  /** SIGTERM and wait. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait. */
  kill(): Promise<number | null>;
}

/** Spawns `sigil-server start --data DIR` (with `nodeArgs` for node, e.g. `--cpu-prof`) and resolves once it logs its URL. */
export function startServerProc(dataDir: string, env: Record<string, string> = {}, timeoutMs = 60_000, nodeArgs: readonly string[] = []): Promise<ServerProc> {
  const child = spawn(process.execPath, [...nodeArgs, SERVER_MAIN, 'start', '--data', dataDir], { env: childEnv(env), cwd: REPO_ROOT });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stdout.resume();
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const pid = child.pid!;
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`server did not start: ${err}`));
    }, timeoutMs);
    let started = false;
    child.stderr.on('data', (d: string) => {
      // Keep only the tail: a long bench must not grow this without bound.
      err = (err + d).slice(-200_000);
      const m = started ? null : /"url":"(https:\/\/[^"]+)"/.exec(err);
      if (m) {
        started = true;
        clearTimeout(timer);
        res({
          child,
          pid,
          url: m[1]!,
          stderr: () => err,
          exited,
          cpuSeconds: () => procCpuSeconds(pid),
          rssMb: () => procRssMb(pid),
          stop: () => (child.kill('SIGTERM'), exited),
          kill: () => (child.kill('SIGKILL'), exited),
        });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      if (!started) rej(new Error(`server exited with ${code} before listening: ${err}`));
    });
  });
}

/** utime + stime of a process in seconds (/proc/<pid>/stat fields 14 and 15, in clock ticks of 1/100 s). */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces: split after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds of a process's main thread (tid = pid), of all its other threads together, and of each thread by id. */
export function procThreadCpuSeconds(pid: number): { main: number; others: number; byThread: Map<string, number> } {
  let main = 0;
  let others = 0;
  const byThread = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const s = (Number(fields[11]) + Number(fields[12])) / 100;
    byThread.set(tid, s);
    if (Number(tid) === pid) main += s;
    else others += s;
  }
  return { main, others, byThread };
}

/**
 * A run's server CPU by role, from two {@link procThreadCpuSeconds} readings: the main thread
 * (tid = pid); the check workers, taken as the `workerCount` busiest other threads (messages.js
 * passes CheckPool's default size, defaultCheckPoolSize: under a message load each runs near a whole
 * core, far above any other thread); and the rest. A thread born between the readings counts from
 * zero.
 */
export function threadSplit(
  before: Map<string, number>,
  after: Map<string, number>,
  pid: number,
  workerCount: number,
): { main: number; workers: number; rest: number; workerCount: number } {
  const others: number[] = [];
  let main = 0;
  for (const [tid, s] of after) {
    const d = s - (before.get(tid) ?? 0);
    if (Number(tid) === pid) main = d;
    else others.push(d);
  }
  others.sort((a, b) => b - a);
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  return { main, workers: sum(others.slice(0, workerCount)), rest: sum(others.slice(workerCount)), workerCount };
}

/** VmRSS and VmHWM of a process in MiB. */
export function procRssMb(pid: number): { now: number; peak: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  // RssFile is mostly node's own binary: mapped text pages count toward RSS once touched.
  return { now: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024, anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024 };
}

/** A response: status, parsed JSON body (or text / bytes), and the latency in ms. */
export interface LoadResponse<T = any> {
  status: number;
  body: T;
  ms: number;
  headers: Record<string, string | string[] | undefined>;
}

/** Request options of {@link Client.request}. */
export interface LoadRequest {
  method?: string;
  body?: unknown;
  raw?: Uint8Array | string;
  headers?: Record<string, string>;
  token?: string;
  /** Answer the body as bytes instead of JSON/text. */
  binary?: boolean;
  /** Use a new TLS connection instead of the keep-alive pool. */
  fresh?: boolean;
  timeoutMs?: number;
}

/** An HTTPS client over one keep-alive agent with a client certificate. */
export class Client {
  readonly agent: https.Agent;
  token = '';
  constructor(
    readonly url: string,
    readonly caPem: string,
    readonly certPem: string,
    readonly keyPem: string,
    maxSockets = 1,
  ) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets, ca: caPem, cert: certPem, key: keyPem, minVersion: 'TLSv1.3' });
  }

  request<T = any>(path: string, o: LoadRequest = {}): Promise<LoadResponse<T>> {
    const u = new URL(path, this.url);
    const payload = o.raw !== undefined ? o.raw : o.body !== undefined ? JSON.stringify(o.body) : undefined;
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (payload !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] ??= String(typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength);
    }
    const token = o.token ?? this.token;
    if (token) headers.authorization = `Bearer ${token}`;
    const started = performance.now();
    return new Promise((res, rej) => {
      const req = https.request(
        { host: u.hostname, port: u.port, path: u.pathname + u.search, method: o.method ?? (payload !== undefined ? 'POST' : 'GET'), headers,
          ...(o.fresh ? { agent: false as const, ca: this.caPem, cert: this.certPem, key: this.keyPem, minVersion: 'TLSv1.3' as const } : { agent: this.agent }) },
        (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('error', rej);
          r.on('end', () => {
            const buf = Buffer.concat(chunks);
            let body: unknown = buf;
            if (!o.binary) {
              const text = buf.toString('utf8');
              body = text;
              if ((r.headers['content-type'] ?? '').includes('application/json')) {
                try {
                  body = JSON.parse(text);
                } catch {
                  body = text;
                }
              }
            }
            res({ status: r.statusCode ?? 0, body: body as T, ms: performance.now() - started, headers: r.headers });
          });
        },
      );
      req.setTimeout(o.timeoutMs ?? 120_000, () => req.destroy(new Error(`request ${path} timed out`)));
      req.on('error', rej);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A logged-in user with its key, certificate and client. */
export interface LoadUser {
  login: string;
  cert: Certificate;
  key: CryptoKey;
  certPem: string;
  keyPem: string;
  password: string;
  client: Client;
}

/** Signs `content` with the user's key: detached CMS, base64. */
export async function signB64(u: { cert: Certificate; key: CryptoKey }, content: Uint8Array | string, label?: Clearance): Promise<string> {
  const bytes = typeof content === 'string' ? enc.encode(content) : content;
  const sig = await signDetached({ content: bytes, signerCert: u.cert, signerKey: u.key, ...(label ? { label } : {}) });
  return Buffer.from(sig).toString('base64');
}

/** Challenge + signed nonce + login over `client`; throws on a non-200. Returns the login answer. */
export async function login(client: Client, u: { login: string; cert: Certificate; key: CryptoKey }, password: string): Promise<LoadResponse> {
  const ch = await client.request('/v1/auth/challenge', { body: { login: u.login }, token: '' });
  if (ch.status !== 200) throw new Error(`challenge ${u.login}: ${ch.status} ${JSON.stringify(ch.body)}`);
  const signature = await signB64(u, loginStatement(u.login, ch.body.nonce));
  const r = await client.request('/v1/auth/login', { body: { login: u.login, password, nonce: ch.body.nonce, signature }, token: '' });
  if (r.status !== 200) throw new Error(`login ${u.login}: ${r.status} ${JSON.stringify(r.body)}`);
  return r;
}

/** Login with the envelope password, then first-login with a new password and the signed receipt. */
async function firstLogin(client: Client, u: { login: string; cert: Certificate; key: CryptoKey }, envelopePassword: string, newPassword: string): Promise<string> {
  const r = await login(client, u, envelopePassword);
  const receipt = await signB64(u, envelopeReceiptStatement(u.login, r.body.envelopeSerial));
  const f = await client.request('/v1/auth/first-login', { body: { newPassword, receipt }, token: r.body.token });
  if (f.status !== 200) throw new Error(`first-login ${u.login}: ${f.status} ${JSON.stringify(f.body)}`);
  return r.body.token as string;
}

/** The officer of a fresh data dir, first login done, over a keep-alive client. */
export async function officerOf(url: string, init: InitJson, maxSockets = 4): Promise<LoadUser & { caPem: string }> {
  const caPem = readFileSync(init.ca.chain, 'utf8');
  const p12 = await openPkcs12(new Uint8Array(readFileSync(init.officer.p12)), init.officer.p12Password);
  const keyPem = await exportPrivateKeyPem(p12.key);
  const client = new Client(url, caPem, p12.cert.pem, keyPem, maxSockets);
  const password = 'Chosen-passphrase-of-the-SO-1';
  client.token = await firstLogin(client, { login: init.officer.login, cert: p12.cert, key: p12.key }, init.officer.envelopePassword, password);
  return { login: init.officer.login, cert: p12.cert, key: p12.key, certPem: p12.cert.pem, keyPem, password, client, caPem };
}

/** The officer creates an account, issues a certificate from a CSR; the user does the first login. */
export async function createUser(
  officer: LoadUser & { caPem: string },
  p: { login: string; clearance: Clearance; profile: ProfileName; role?: string; maxSockets?: number },
): Promise<LoadUser> {
  const created = await officer.client.request('/v1/users', {
    body: { login: p.login, fullName: `User ${p.login}`, department: 'Load', clearance: p.clearance, role: p.role ?? 'staff' },
  });
  if (created.status !== 201) throw new Error(`create ${p.login}: ${created.status} ${JSON.stringify(created.body)}`);
  const keyPair = (await generateKeyPair(p.profile)) as CryptoKeyPair;
  const csr = await createCsr({ keyPair, subject: { commonName: p.login } });
  const issued = await officer.client.request(`/v1/users/${p.login}/certificates`, { body: { csr: csr.pem } });
  if (issued.status !== 201) throw new Error(`issue ${p.login}: ${issued.status} ${JSON.stringify(issued.body)}`);
  const cert = Certificate.fromPem(issued.body.certificate as string);
  const keyPem = await exportPrivateKeyPem(keyPair.privateKey);
  const client = new Client(officer.client.url, officer.caPem, cert.pem, keyPem, p.maxSockets ?? 1);
  const password = `Chosen-passphrase-${Buffer.from(p.login).toString("hex")}-2`;
  const u = { login: p.login, cert, key: keyPair.privateKey };
  client.token = await firstLogin(client, u, created.body.envelope.password as string, password);
  return { ...u, certPem: cert.pem, keyPem, password, client };
}

/** SHA-384 of bytes, base64. */
export async function sha384b64(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-384', bytes)).toString('base64');
}

/** A signed message ready to POST to /v1/messages: the JSON payload and its id. */
export interface SignedMessage {
  id: string;
  conversation: string;
  payload: string;
}

/**
 * The body of `POST /v1/messages/batch` for pre-signed messages: their payloads are JSON objects
 * already, so they are joined, not parsed and serialised again.
 */
export function batchPayload(ms: readonly SignedMessage[]): string {
  return `{"messages":[${ms.map((m) => m.payload).join(',')}]}`;
}

/** Builds and signs a message header for `body` in `conversation` (label `restricted` by default). */
export async function composeMessage(
  u: { login: string; cert: Certificate; key: CryptoKey },
  conversation: string,
  body: Uint8Array | string,
  over: Partial<MessageHeader> = {},
): Promise<SignedMessage> {
  const bytes = typeof body === 'string' ? enc.encode(body) : body;
  const header: MessageHeader = {
    attachments: [],
    body: { sha384: await sha384b64(bytes), size: bytes.length },
    conversation,
    id: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('base64url'),
    label: 'restricted',
    purpose: 'sigil-message',
    replyTo: null,
    sender: u.login,
    sentAt: new Date().toISOString(),
    urgent: false,
    v: 1,
    ...over,
  };
  const text = canonicalHeader(header);
  const signature = await signB64(u, text, header.label as Clearance);
  return { id: header.id, conversation, payload: JSON.stringify({ header: text, signature, body: Buffer.from(bytes).toString('base64') }) };
}

/** A signed `sigil-delete` request body for `target`. */
export async function deleteRequest(u: { cert: Certificate; key: CryptoKey }, target: string, reason = 'bench'): Promise<{ reason: string; statement: string; signature: string }> {
  const statement = canonicalDeleteStatement({ at: new Date().toISOString(), purpose: 'sigil-delete', reason, target });
  return { reason, statement, signature: await signB64(u, statement) };
}

/** The p-th percentile (0–100) of an ascending array (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

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

/** Formats a number with a fixed width. */
export const fmt = (n: number, digits = 0, width = 8): string => n.toFixed(digits).padStart(width);

/** A line saying the load generator and the server share this machine. */
export function machineNote(): string {
  const os = { cpus: 0, load: [0] as number[] };
  try {
    os.cpus = readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length;
    os.load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    /* not Linux: omit */
  }
  const malloc = process.env.BENCH_SERVER_ENV?.match(/(?:^| )LD_PRELOAD=(\S*)/)?.[1] ?? process.env.LD_PRELOAD ?? jemallocLibrary();
  return `machine: ${os.cpus} cores, load average ${os.load.join(' ')}, node ${process.version}, server malloc ${malloc ? `preloaded ${malloc}` : 'glibc'}; the load generator and the server share this machine`;
}

/** Resolves `p` relative to the repository root. */
export const repoPath = (...p: string[]): string => resolve(REPO_ROOT, ...p);
