/**
 * Shared set-up of the audit CLI tests: a real appliance on 127.0.0.1 with `/v1/audit` mounted,
 * restartable on the same port over the same data directory (so the SQLite file can be changed
 * while it is stopped), and CLI profiles for an auditor, a staff member and the officer.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sqlite3 from 'sqlite3';
import { Hono } from 'hono';
import type { AuditTrail } from '../../../../server/audit/index.js';
import type { AppDeps } from '../../../../server/app.js';
import type { AppEnv } from '../../../../server/middleware/types.js';
import { createApp, listen, loadConfig, openAppliance, parseListen, PATHS, silentLogger } from '../../../../server/index.js';
import { auditRoutes, auditTrailOf } from '../../../../server/routes/audit.js';
import { startTestAppliance, type TestAppliance, type TestUser } from '../../../helpers/appliance.js';
import { profileRunner, type ProfileRunner } from '../../../helpers/cli.js';

type Running = { stop(): Promise<void> };

interface Teardownable {
  teardown(fn: () => void | Promise<void>): void;
}

export interface AuditHarness {
  ta: TestAppliance;
  dataDir: string;
  vaultDb: string;
  auditor: ProfileRunner;
  staff: ProfileRunner;
  officer: ProfileRunner;
  /** Stops the appliance (idempotent until the next start). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the appliance, applies `change` to the stopped files, starts it again. */
  whileStopped(change: () => Promise<void>): Promise<void>;
  raw(sql: string, params?: unknown[]): Promise<void>;
  rawAll<T>(sql: string): Promise<T[]>;
  /** The running appliance's audit trail (its timer is not started: checkpoints are signed on request only). */
  trail(): AuditTrail;
}

/** Options of {@link auditHarness}. */
export interface AuditHarnessOptions {
  /**
   * Runs before each `/v1/audit` request is handled (path relative to `/v1/audit`, e.g.
   * `/checkpoints`), with the running trail: a seam to change the log between two requests.
   */
  beforeRequest?: (path: string, trail: AuditTrail) => Promise<void>;
}

/** The audit routes over `trail`, behind `o.beforeRequest` when given. */
function routesOf(d: AppDeps, trail: AuditTrail, o: AuditHarnessOptions): Hono<AppEnv> {
  const routes = auditRoutes(d, trail);
  const hook = o.beforeRequest;
  if (!hook) return routes;
  const app = new Hono<AppEnv>();
  app.use('*', async (c, next) => {
    await hook(c.req.path.replace(/^\/v1\/audit/, ''), trail);
    await next();
  });
  app.route('/', routes);
  return app;
}

export async function auditHarness(t: Teardownable, dir: string, o: AuditHarnessOptions = {}): Promise<AuditHarness> {
  let trail: ReturnType<typeof auditTrailOf> | undefined;
  const ta = await startTestAppliance({
    extraRoutes: { '/v1/audit': (d) => routesOf(d, (trail = auditTrailOf(d.appliance, d.now)), o) },
  });
  const dataDir = ta.dataDir;
  const vaultDb = join(dataDir, PATHS.vault, 'vault.db');
  let running: Running | undefined = {
    stop: async () => {
      await trail?.stop();
      await ta.listener.stop(2000);
      await ta.appliance.close();
    },
  };
  t.teardown(async () => {
    await running?.stop().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  const stop = async () => {
    const r = running;
    running = undefined;
    await r?.stop();
  };
  const start = async () => {
    const config = await loadConfig(join(dataDir, PATHS.config));
    const appliance = await openAppliance({ dataDir, config, masterKey: { keyFilePath: join(dataDir, PATHS.masterKeyFile) } });
    const now = () => new Date();
    const tr = auditTrailOf(appliance, now);
    trail = tr;
    const app = createApp({ appliance, now, config, log: silentLogger }, { '/v1/audit': (d) => routesOf(d, tr, o) });
    const listener = await listen({ app, appliance, address: parseListen(`127.0.0.1:${ta.port}`), allowedPeers: config.allowedPeers, log: silentLogger });
    running = {
      stop: async () => {
        await tr.stop();
        await listener.stop(2000);
        await appliance.close();
      },
    };
  };
  const db = () => new sqlite3.Database(vaultDb);
  const raw = async (sql: string, params: unknown[] = []) => {
    const d = db();
    try {
      await new Promise<void>((res, rej) => d.run(sql, params, (err) => (err ? rej(err) : res())));
    } finally {
      await new Promise<void>((res) => d.close(() => res()));
    }
  };
  const rawAll = async <T>(sql: string): Promise<T[]> => {
    const d = db();
    try {
      return await new Promise<T[]>((res, rej) => d.all(sql, (err, r) => (err ? rej(err) : res(r as T[]))));
    } finally {
      await new Promise<void>((res) => d.close(() => res()));
    }
  };

  async function cliFor(user: Pick<TestUser, 'login' | 'password' | 'keyPem' | 'certPem'>): Promise<ProfileRunner> {
    const profile = join(dir, user.login);
    mkdirSync(profile, { recursive: true });
    const cli = profileRunner(profile, { SIGIL_PASSWORD: user.password });
    const setup = await cli.run(['setup', '--server', ta.url, '--ca', ta.init.ca.root]);
    if (setup.code !== 0) throw new Error(setup.stderr);
    writeFileSync(join(profile, 'key.p8.pem'), user.keyPem, { mode: 0o600 });
    writeFileSync(join(profile, 'cert.pem'), user.certPem);
    const login = await cli.run(['login', '--login', user.login]);
    if (login.code !== 0) throw new Error(login.stderr);
    return cli;
  }
  const [auditor, staff, officer] = await Promise.all([
    ta.createStaff({ login: 'aud1', clearance: 'secret', role: 'auditor' }).then(cliFor),
    ta.createStaff({ login: 'stf1', clearance: 'secret' }).then(cliFor),
    cliFor(ta.officer),
  ]);
  return {
    ta,
    dataDir,
    vaultDb,
    auditor,
    staff,
    officer,
    stop,
    start,
    whileStopped: async (change) => {
      await stop();
      await change();
      await start();
    },
    raw,
    rawAll,
    trail: () => {
      if (!trail) throw new Error('the appliance is not running');
      return trail;
    },
  };
}
