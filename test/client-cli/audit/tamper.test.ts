/**
 * Issue 6 end to end with the built `sigil` CLI against a real appliance on 127.0.0.1: an untouched
 * trail verifies; then, with the appliance stopped, the SQLite file is changed with raw sqlite3
 * (one byte of one entry, a deleted entry, two entries swapped, an edited entry whose leaf hash was
 * recomputed) and `sigil audit verify` fails naming the entry; a forked log rebuilt and re-signed
 * with the real audit key fails the consistency proof against the auditor's saved checkpoint.
 */
import t from 'tap';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sqlite3 from 'sqlite3';
import { AuditLog, Checkpointer, auditOrigin, leafHash, type AuditEntry } from '../../../server/audit/index.js';
import { createApp, listen, loadConfig, openAppliance, parseListen, PATHS, silentLogger } from '../../../server/index.js';
import { auditRoutes, auditTrailOf } from '../../../server/routes/audit.js';
import { startTestAppliance, type TestUser } from '../../helpers/appliance.js';
import { profileRunner } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';

type Running = { stop(): Promise<void> };

let trail: ReturnType<typeof auditTrailOf> | undefined;
const ta = await startTestAppliance({
  extraRoutes: { '/v1/audit': (d) => auditRoutes(d, (trail = auditTrailOf(d.appliance, d.now))) },
});
const dataDir = ta.dataDir;
const vaultDb = join(dataDir, PATHS.vault, 'vault.db');
let running: Running = {
  stop: async () => {
    await trail?.stop();
    await ta.listener.stop(2000);
    await ta.appliance.close();
  },
};
t.teardown(async () => {
  await running.stop().catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
});

/** Starts the appliance again on the same port over the same data directory. */
async function start(): Promise<Running> {
  const config = await loadConfig(join(dataDir, PATHS.config));
  const appliance = await openAppliance({ dataDir, config, masterKey: { keyFilePath: join(dataDir, PATHS.masterKeyFile) } });
  const now = () => new Date();
  const tr = auditTrailOf(appliance, now);
  const app = createApp({ appliance, now, config, log: silentLogger }, { '/v1/audit': (d) => auditRoutes(d, tr) });
  const listener = await listen({ app, appliance, address: parseListen(`127.0.0.1:${ta.port}`), allowedPeers: config.allowedPeers, log: silentLogger });
  return {
    stop: async () => {
      await tr.stop();
      await listener.stop(2000);
      await appliance.close();
    },
  };
}

async function raw(sql: string, params: unknown[] = []): Promise<void> {
  const db = new sqlite3.Database(vaultDb);
  await new Promise<void>((res, rej) => db.run(sql, params, (err) => (err ? rej(err) : res())));
  await new Promise<void>((res) => db.close(() => res()));
}

async function rawAll<T>(sql: string): Promise<T[]> {
  const db = new sqlite3.Database(vaultDb);
  const rows = await new Promise<T[]>((res, rej) => db.all(sql, (err, r) => (err ? rej(err) : res(r as T[]))));
  await new Promise<void>((res) => db.close(() => res()));
  return rows;
}

/** Stops the appliance, applies `change` to the stopped files, starts it again. */
async function whileStopped(change: () => Promise<void>): Promise<void> {
  await running.stop();
  await change();
  running = await start();
}

const dir = tmpDir(t, 'sigil-cli-audit-');

async function cliFor(user: TestUser) {
  const profile = join(dir, user.login);
  const cli = profileRunner(profile, { SIGIL_PASSWORD: user.password });
  const setup = await cli.run(['setup', '--server', ta.url, '--ca', ta.init.ca.root]);
  if (setup.code !== 0) throw new Error(setup.stderr);
  writeFileSync(join(profile, 'key.p8.pem'), user.keyPem, { mode: 0o600 });
  writeFileSync(join(profile, 'cert.pem'), user.certPem);
  const login = await cli.run(['login', '--login', user.login]);
  if (login.code !== 0) throw new Error(login.stderr);
  return cli;
}

const auditor = await cliFor(await ta.createStaff({ login: 'aud1', clearance: 'secret', role: 'auditor' }));
const staff = await cliFor(await ta.createStaff({ login: 'stf1', clearance: 'secret' }));
const officer = await cliFor({ ...ta.officer, login: ta.officer.login });

await t.test('when an officer records room access and an auditor verifies then the untouched trail verifies', async (t) => {
  const r = await officer.json(['audit', 'room-access', '--pass', 'P-0042', '--person', 'Ivan Petrov', '--direction', 'entry']);
  t.equal(r.direction, 'entry');
  const cp = await auditor.json(['audit', 'checkpoint']);
  t.equal(cp.saved, join(auditor.profile, 'audit', 'checkpoint.json'));
  t.ok(existsSync(cp.saved));
  await officer.json(['audit', 'room-access', '--pass', 'P-0042', '--person', 'Ivan Petrov', '--direction', 'exit']);
  const cp2 = await auditor.json(['audit', 'checkpoint']);
  t.equal(cp2.extends, cp.size, 'the new checkpoint was proven to extend the saved one');
  const v = await auditor.json(['audit', 'verify']);
  t.match(v, { ok: true, size: cp2.size, since: cp2.size });
  const text = await auditor.run(['audit', 'verify']);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /verified:\s+\d+ entries of sigil\//);
});

await t.test('when an auditor lists events then filters apply; staff are refused', async (t) => {
  const { events } = await auditor.json(['audit', 'events', '--type', 'room']);
  t.same(events.map((e: { type: string }) => e.type), ['room.entry', 'room.exit']);
  const { events: mine } = await auditor.json(['audit', 'events', '--user', 'aud1', '--type', 'login']);
  t.ok(mine.length > 0 && mine.every((e: { type: string }) => e.type.startsWith('login')));
  const bad = await auditor.run(['audit', 'events', '--since', 'yesterday']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--since/);
  const refused = await staff.run(['audit', 'events']);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /FORBIDDEN|role/);
});

await t.test('when staff prove an entry then the inclusion proof verifies against the signed checkpoint', async (t) => {
  const p = await staff.json(['audit', 'proof', '3']);
  t.match(p, { seq: 3, included: true });
  const beyond = await staff.run(['audit', 'proof', '999999']);
  t.equal(beyond.code, 3);
  t.match(beyond.stderr, /not-included at entry 999999/);
});

const exportDir = join(dir, 'export');
await t.test('when the trail is exported then it verifies offline with the appliance stopped, and a changed export fails', async (t) => {
  const e = await auditor.json(['audit', 'export', '--out', exportDir]);
  t.ok(e.size > 0);
  const again = await auditor.run(['audit', 'export', '--out', exportDir]);
  t.equal(again.code, 1);
  t.match(again.stderr, /not empty/);
  await running.stop();
  try {
    const off = await auditor.json(['audit', 'verify', '--offline', exportDir, '--ca', ta.init.ca.root]);
    t.match(off, { ok: true, size: e.size, source: exportDir });
    // A machine without any profile: trusts the export's CA, says so.
    const bare = profileRunner(join(dir, 'no-profile'));
    const b = await bare.run(['audit', 'verify', '--offline', exportDir]);
    t.equal(b.code, 0, b.stderr);
    t.match(b.stderr, /trusting the CA in/);
    // One changed byte in the exported entries.
    const lines = readFileSync(join(exportDir, 'entries.jsonl'), 'utf8').split('\n');
    const copy = join(dir, 'export-bad');
    rmSync(copy, { recursive: true, force: true });
    mkdirSync(copy, { recursive: true });
    for (const f of ['checkpoint.txt', 'checkpoint.sig.der', 'checkpoints.jsonl', 'chain.pem', 'ca.pem']) copyFileSync(join(exportDir, f), join(copy, f));
    const line4 = JSON.parse(lines[4]!) as { seq: number; data: string };
    t.equal(line4.seq, 4);
    line4.data = line4.data.replace('"type":"', '"type":"x');
    lines[4] = JSON.stringify(line4);
    writeFileSync(join(copy, 'entries.jsonl'), lines.join('\n'));
    const bad = await auditor.run(['audit', 'verify', '--offline', copy, '--ca', ta.init.ca.root]);
    t.equal(bad.code, 3, bad.stderr);
    t.match(bad.stderr, /leaf-hash-mismatch at entry 4/);
  } finally {
    running = await start();
  }
});

/** Runs one tamper case on a copy of the database and restores the original afterwards. */
async function tamperCase(name: string, change: () => Promise<void>, expect: RegExp): Promise<void> {
  await t.test(name, async (t) => {
    const backup = `${vaultDb}.orig`;
    await whileStopped(async () => {
      copyFileSync(vaultDb, backup);
      await change();
    });
    try {
      const r = await auditor.run(['audit', 'verify']);
      t.equal(r.code, 3, `exit 3 (verification), got ${r.code}: ${r.stderr}`);
      t.match(r.stderr, expect);
    } finally {
      await whileStopped(async () => {
        copyFileSync(backup, vaultDb);
        rmSync(backup);
      });
    }
    const ok = await auditor.run(['audit', 'verify']);
    t.equal(ok.code, 0, `restored log verifies again: ${ok.stderr}`);
  });
}

await tamperCase(
  'when one byte of one stored entry is changed then verify fails naming that entry',
  () => raw("UPDATE audit_log SET data = replace(data, '\"type\":\"', '\"type\":\"x') WHERE seq = 5"),
  /leaf-hash-mismatch at entry 5/,
);

await tamperCase('when an entry is deleted then verify fails naming it', () => raw('DELETE FROM audit_log WHERE seq = 6'), /sequence-gap at entry 6/);

await tamperCase(
  'when two entries are swapped then verify fails naming the first',
  async () => {
    await raw('UPDATE audit_log SET seq = -1 WHERE seq = 3');
    await raw('UPDATE audit_log SET seq = 3 WHERE seq = 4');
    await raw('UPDATE audit_log SET seq = 4 WHERE seq = -1');
  },
  /seq-mismatch at entry 3/,
);

await tamperCase(
  'when an entry is edited and its leaf hash recomputed then the signed checkpoint places the change',
  async () => {
    const [row] = await rawAll<{ data: string }>('SELECT data FROM audit_log WHERE seq = 2');
    const data = row!.data.replace('"type":"', '"type":"x');
    await raw('UPDATE audit_log SET data = ?, leaf_hash = ? WHERE seq = 2', [data, Buffer.from(leafHash(new TextEncoder().encode(data)))]);
  },
  /checkpoint-mismatch at entry 0: .*entries 0\.\.\d+ was changed/,
);

await t.test('when the attacker rebuilds the log with one entry changed and re-signs it with the audit key then the saved checkpoint catches the fork', async (t) => {
  const saved = JSON.parse(readFileSync(join(auditor.profile, 'audit', 'checkpoint.json'), 'utf8'));
  await whileStopped(async () => {
    // The attacker owns the appliance: master key, audit key, database.
    const config = await loadConfig(join(dataDir, PATHS.config));
    const appliance = await openAppliance({ dataDir, config, masterKey: { keyFilePath: join(dataDir, PATHS.masterKeyFile) } });
    try {
      const db = appliance.vault.db;
      const log = await AuditLog.open(db);
      const entries: AuditEntry[] = await log.entries(0, await log.size());
      await db.exec('DELETE FROM audit_log; DELETE FROM audit_nodes; UPDATE audit_head SET size = 0, root = x\'\'; DELETE FROM audit_checkpoints;');
      await log.append(
        entries.map((e, i) => ({
          type: e.type,
          at: new Date(e.at),
          ...(e.actor !== undefined ? { actor: i === 2 ? 'someone-else' : e.actor } : {}),
          ...(e.subject !== undefined ? { subject: e.subject } : {}),
          ...(e.data !== undefined ? { data: e.data } : {}),
        })),
      );
      t.ok((await log.verify()).ok, 'the forged log is internally consistent');
      const cp = await Checkpointer.open({ db, log, origin: auditOrigin(appliance.meta.org), cert: appliance.auditCert, key: appliance.auditKey, chain: [appliance.issuingCert] });
      const signed = await cp.current();
      t.equal(signed.size, saved.size);
      t.not(Buffer.from(signed.root).toString('base64'), saved.root, 'a different root, validly signed');
    } finally {
      await appliance.close();
    }
  });
  // Without the saved checkpoint the forged log looks fine: that is what saving one is for.
  const blind = await auditor.run(['audit', 'verify', '--since', join(dir, 'missing.json')]);
  t.equal(blind.code, 1);
  t.match(blind.stderr, /does not exist/);
  const r = await auditor.run(['audit', 'verify']);
  t.equal(r.code, 3, r.stderr);
  t.match(r.stderr, /inconsistent/);
  const c = await auditor.run(['audit', 'checkpoint']);
  t.equal(c.code, 3, 'the saved checkpoint is not replaced by a forked one');
  t.match(c.stderr, /history was rewritten|inconsistent/);
  const stillSaved = JSON.parse(readFileSync(join(auditor.profile, 'audit', 'checkpoint.json'), 'utf8'));
  t.equal(stillSaved.root, saved.root);
});
