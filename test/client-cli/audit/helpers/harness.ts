/**
 * Shared set-up of the audit CLI tests: a real appliance on 127.0.0.1 with `/v1/audit` mounted,
 * restartable on the same port over the same data directory (so the SQLite file can be changed
 * while it is stopped), and CLI profiles for an auditor, a staff member and the officer.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sqlite3 from 'sqlite3';
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
}

export async function auditHarness(t: Teardownable, dir: string): Promise<AuditHarness> {
  let trail: ReturnType<typeof auditTrailOf> | undefined;
  const ta = await startTestAppliance({
    extraRoutes: { '/v1/audit': (d) => auditRoutes(d, (trail = auditTrailOf(d.appliance, d.now))) },
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
    const app = createApp({ appliance, now, config, log: silentLogger }, { '/v1/audit': (d) => auditRoutes(d, tr) });
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
  };
}
