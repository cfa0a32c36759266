/**
 * Fixtures for the ops tests: a real appliance with messaging mounted (the messaging HTTP
 * harness: real TLS, accounts, certificates, signed messages), helpers to send and delete, to
 * stop it while keeping its data directory (offline commands), to start it again on the same
 * directory with any master key, and to run the ops subcommands through sigil-server's real
 * commander program with captured I/O and main.ts's exit-code rules.
 *
 * Run directly, this file checks itself (tap runs every file under test/).
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import type { Hono } from 'hono';
import {
  buildProgram,
  createApp,
  listen,
  loadConfig,
  loginStatement,
  openAppliance,
  parseListen,
  PATHS,
  silentLogger,
  type AppDeps,
  type Appliance,
  type AppEnv,
  type Listener,
  type MainIo,
  type MasterKeySource,
} from '../../../server/index.js';
import { messagingPartsFrom, type MessagingRouteDeps } from '../../../server/messaging/http.js';
import { createMessaging, type Messaging } from '../../../server/messaging/index.js';
import { claimRunFile, OPS_USAGE_CODES } from '../../../server/ops/index.js';
import { conversationsRoutes } from '../../../server/routes/conversations.js';
import { filesRoutes } from '../../../server/routes/files.js';
import { groupsRoutes } from '../../../server/routes/groups.js';
import { correspondenceRoutes, messagesRoutes } from '../../../server/routes/messages.js';
import { httpsRequest, signB64, type TestResponse, type TestUser } from '../../helpers/appliance.js';
import { httpHarness, type HttpHarness } from '../messaging/http-harness.js';

/** main.ts's usage codes (kept in sync by hand until main.ts merges OPS_USAGE_CODES). */
const MAIN_USAGE = new Set([
  'LISTEN_INVALID',
  'LISTEN_PUBLIC',
  'CIDR_INVALID',
  'CONFIG_INVALID',
  'APPLIANCE_EXISTS',
  'APPLIANCE_NOT_INITIALISED',
  'MASTER_KEY_ARGUMENT',
  'MASTER_KEY_EXISTS',
  ...OPS_USAGE_CODES,
]);

/** Outcome of one command run. */
export interface OpsRun {
  code: number;
  stdout: string;
  stderr: string;
  /** The error thrown, if any (its `code` is the stable error code). */
  error?: { code?: string; message: string };
  json<T = any>(): T;
}

/** Runs `sigil-server <argv>` through buildProgram (which registers the ops commands), like main() does. */
export async function runOps(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<OpsRun> {
  let stdout = '';
  let stderr = '';
  const io: MainIo = { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), env, onSignal: () => undefined };
  const program = buildProgram(io);
  let code = 0;
  let error: OpsRun['error'];
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    const e = err as { code?: string; message: string; exitCode?: number };
    error = { code: e.code, message: e.message };
    if (err instanceof CommanderError) code = err.exitCode === 0 ? 0 : 2;
    else code = e.code && MAIN_USAGE.has(e.code) ? 2 : 1;
  }
  return { code, stdout, stderr, ...(error ? { error } : {}), json: () => JSON.parse(stdout) };
}

/** A live appliance with messaging, whose data directory survives {@link Live.stopKeepingData}. */
export interface Live {
  h: HttpHarness;
  dataDir: string;
  keyFile: string;
  alice: TestUser;
  bob: TestUser;
  /** Sends a text message as `u`; returns its id. */
  send(u: TestUser, conv: string, text: string, over?: Record<string, unknown>): Promise<string>;
  del(u: TestUser, path: string, target: string): Promise<TestResponse>;
  /** Releases the run file, stops messaging, TLS and the vault; the data directory stays (removed when the test ends). */
  stopKeepingData(): Promise<void>;
}

/** Starts an appliance with two staff members and messaging. */
export async function live(t: { teardown(fn: () => void | Promise<void>): void }): Promise<Live> {
  const h = await httpHarness(t);
  const alice = await h.app.createStaff({ login: 'ops-alice', clearance: 'secret' });
  const bob = await h.app.createStaff({ login: 'ops-bob', clearance: 'secret' });
  // What `sigil-server start` does once listening (see server/ops/README.md): claim the run file.
  const run = claimRunFile(h.app.dataDir, { url: h.app.url, version: '0.1.0' });
  t.teardown(() => run.release());
  return {
    h,
    dataDir: h.app.dataDir,
    keyFile: join(h.app.dataDir, PATHS.masterKeyFile),
    alice,
    bob,
    async send(u, conv, text, over = {}) {
      const m = await h.compose(u, conv, text, over);
      const r = await h.as(u)('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } });
      if (r.status !== 201) throw new Error(`send: ${r.status} ${JSON.stringify(r.body)}`);
      return m.id;
    },
    async del(u, path, target) {
      return h.as(u)(path, { method: 'DELETE', body: await h.deleteBody(u, target) });
    },
    async stopKeepingData() {
      run.release();
      await h.messaging.close();
      await h.app.listener.stop(2000);
      await h.app.appliance.close();
    },
  };
}

/** The appliance started again on an existing data directory (messaging mounted, real TLS). */
export interface Reopened {
  appliance: Appliance;
  messaging: Messaging;
  url: string;
  /** A request as `u` after a fresh login (sessions are not assumed to survive). */
  as(u: TestUser): Promise<(path: string, o?: { method?: string; body?: unknown }) => Promise<TestResponse>>;
  close(): Promise<void>;
}

/** Opens the appliance in `dataDir` with `masterKey` and serves it on 127.0.0.1:0. */
export async function reopen(dataDir: string, masterKey: MasterKeySource, caPem: string): Promise<Reopened> {
  const config = await loadConfig(join(dataDir, PATHS.config));
  const now = () => new Date();
  const appliance = await openAppliance({ dataDir, config, masterKey, now });
  const messaging = createMessaging(await messagingPartsFrom(appliance, now, { sweepIntervalMs: 0 }, () => undefined));
  await messaging.start();
  const deps = (d: AppDeps): MessagingRouteDeps => ({ appliance: d.appliance, messaging });
  const extra: Record<string, (d: AppDeps) => Hono<AppEnv>> = {
    '/v1/conversations': (d) => conversationsRoutes(deps(d)),
    '/v1/messages': (d) => messagesRoutes(deps(d)),
    '/v1/groups': (d) => groupsRoutes(deps(d)),
    '/v1/files': (d) => filesRoutes(deps(d)),
    '/v1/users': (d) => correspondenceRoutes(deps(d)),
  };
  const app = createApp({ appliance, now, config, log: silentLogger }, extra);
  const listener: Listener = await listen({ app, appliance, address: parseListen('127.0.0.1:0'), allowedPeers: config.allowedPeers, log: silentLogger });
  const url = listener.url;
  return {
    appliance,
    messaging,
    url,
    async as(u) {
      const opts = { cert: u.certPem, key: u.keyPem };
      const ch = await httpsRequest(url, '/v1/auth/challenge', caPem, { ...opts, body: { login: u.login } });
      if (ch.status !== 200) throw new Error(`challenge: ${ch.status} ${JSON.stringify(ch.body)}`);
      const signature = await signB64(loginStatement(u.login, ch.body.nonce), u.cert, u.key);
      const lr = await httpsRequest(url, '/v1/auth/login', caPem, { ...opts, body: { login: u.login, password: u.password, nonce: ch.body.nonce, signature } });
      if (lr.status !== 200) throw new Error(`login: ${lr.status} ${JSON.stringify(lr.body)}`);
      const token = lr.body.token as string;
      return (path, o = {}) => {
        const payload = o.body !== undefined ? JSON.stringify(o.body) : undefined;
        const headers = payload !== undefined ? { 'content-length': String(Buffer.byteLength(payload)) } : undefined;
        return httpsRequest(url, path, caPem, { ...opts, token, ...(o.method ? { method: o.method } : {}), ...(o.body !== undefined ? { body: o.body } : {}), ...(headers ? { headers } : {}) });
      };
    },
    async close() {
      await messaging.close();
      await listener.stop(2000);
      await appliance.close();
    },
  };
}

// Self-check when tap runs this file on its own.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { default: tap } = await import('tap');
  tap.test('when ops commands are registered then sigil-server lists them in its help', async (t) => {
    const r = await runOps(['--help']);
    t.equal(r.code, 0);
    for (const c of ['backup', 'restore', 'check', 'status', 'rotate-master-key']) t.match(r.stdout, c);
  });
}
