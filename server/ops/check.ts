/**
 * `sigil-server check`: is the vault whole? Each item passes, warns or fails with a reason:
 *
 * - `master-key`        the secret unlocks vault-key.json; no rotation left half done (fail), no
 *                       committed rotation's clean-up left undone (warn: vault-key.prev.json)
 * - `vault-db`/`keys-db` `PRAGMA integrity_check`
 * - `keyring`           every keyring row opens under MK; the appliance's own keys are there
 * - `conversation-keys` every CK unwraps under MK
 * - `message-keys`      every DEK (messages and files) unwraps under its CK
 * - `messages`          a sample (random + the newest) decrypts and its header names its id
 * - `files`             a sample of final files decrypts chunk by chunk and matches its SHA-384
 * - `audit-log`         every leaf and stored subtree recomputed, and every stored signed
 *                       checkpoint verified and held against the tree (`verifyAuditTrail`)
 * - `orphans`           keys without rows (warn: swept at start), rows without keys (fail)
 * - `root-crl`          the root CA's CRL is there and not within 30 days of its nextUpdate (warn,
 *                       naming the root key ceremony `sign-root-crl`: the server cannot renew it)
 * - `working-copies`    no `.backup-`/`.restore-`/`.repack-*.db` left in the vault directory by an
 *                       interrupted command (fail: it keeps vault pages that deletions cannot
 *                       reach; warn while the command that made it still runs)
 *
 * Read-mostly and safe while the server runs (WAL readers do not block it).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { webcrypto } from 'node:crypto';
import { KEYRING, PATHS, readMeta, type MasterKeySource } from '../appliance.js';
import { verifyAuditTrail } from '../audit/index.js';
import { Certificate } from '../../pki/index.js';
import { ApplianceMissingError } from '../errors.js';
import { rootCrlState } from '../root-crl-state.js';
import { chunkAad, fileKeyId, messageAad, unpackMessage } from '../messaging/context.js';
import { openDigest } from '../messaging/file-digest.js';
import {
  ckAad,
  Db,
  Keyring,
  Keystore,
  KEYS_DB_FILE,
  open,
  VAULT_DB_FILE,
  VAULT_KEY_NEXT_FILE,
  VAULT_KEY_PREV_FILE,
  type MasterKey,
} from '../vault/index.js';
import { integrityProblems } from './backup.js';
import { hasTable } from './counts.js';
import { readOpsState } from './data-claim.js';
import { unlockCurrent } from './master-source.js';
import { findWorkingCopies } from './working-copies.js';

/** Outcome of one item. `skipped` items could not run because an earlier one failed. */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skipped';

/** One problem found, named by id (never by content). */
export interface CheckFailure {
  id: string;
  reason: string;
}

/** One line of the report. */
export interface CheckItem {
  name: string;
  status: CheckStatus;
  /** What was checked, or why it failed. */
  detail: string;
  /** How many things were checked. */
  checked?: number;
  /** The first problems (at most {@link MAX_LISTED}). */
  failures?: CheckFailure[];
}

/** The whole report: `ok` is false when any item failed. */
export interface CheckReport {
  ok: boolean;
  dataDir: string;
  checkedAt: string;
  items: CheckItem[];
}

/** Options of {@link checkAppliance}. */
export interface CheckOptions {
  dataDir: string;
  masterKey: MasterKeySource;
  /** Random messages to decrypt besides the newest; default 20. */
  messageSample?: number;
  /** Random final files to decrypt besides the newest; default 5. */
  fileSample?: number;
  now?: () => Date;
  /** Randomness for sampling; default CSPRNG. */
  random?: (n: number) => Uint8Array;
}

/** Problems listed per item; the count says how many there were in all. */
export const MAX_LISTED = 20;

const reasonOf = (err: unknown): string => {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
};

function item(name: string, checked: number, failures: CheckFailure[], what: string, warnOnly = false): CheckItem {
  if (failures.length === 0) return { name, status: 'pass', detail: what, checked };
  return {
    name,
    status: warnOnly ? 'warn' : 'fail',
    detail: `${failures.length} of ${checked} ${warnOnly ? 'need attention' : 'failed'}: ${failures[0]!.id}: ${failures[0]!.reason}`,
    checked,
    failures: failures.slice(0, MAX_LISTED),
  };
}

/**
 * Working copies of vault.db in the vault directory. While the command holding the data
 * directory's claim runs, its own copy is expected (warn); otherwise every one is a leftover of an
 * interrupted command (fail): it keeps the vault's pages of the time, out of reach of any deletion.
 */
function checkWorkingCopies(dataDir: string, vaultDir: string): CheckItem {
  const names = findWorkingCopies(vaultDir);
  const name = 'working-copies';
  if (names.length === 0) return { name, status: 'pass', detail: 'no working copy of vault.db left in the vault directory', checked: 0 };
  const holder = readOpsState(dataDir);
  if (holder.running) {
    return {
      name,
      status: 'warn',
      detail: `${names.length} working file(s) of \`sigil-server ${holder.info.command ?? 'start'}\` (pid ${holder.info.pid}), which is running: ${names.join(', ')}`,
      checked: names.length,
    };
  }
  return {
    name,
    status: 'fail',
    detail:
      `leftover: ${names.join(', ')} — a working copy of vault.db that an interrupted backup, restore or repack left; it keeps vault pages ` +
      'out of reach of deletions. The next backup, restore, repack or start removes it securely',
    checked: names.length,
    failures: names.slice(0, MAX_LISTED).map((n) => ({ id: n, reason: 'leftover working copy' })),
  };
}

/** The root CRL: a warning (never a failure: the vault is whole) when absent, due within 30 days or past. */
async function checkRootCrl(dataDir: string, at: Date): Promise<CheckItem> {
  try {
    const { state, warning } = await rootCrlState(dataDir, at);
    if (warning) return { name: 'root-crl', status: 'warn', detail: warning, checked: state ? 1 : 0 };
    return { name: 'root-crl', status: 'pass', detail: `root CRL ${state!.number}, nextUpdate ${state!.nextUpdate} (${state!.daysLeft} days)`, checked: 1 };
  } catch (err) {
    return { name: 'root-crl', status: 'warn', detail: `${reasonOf(err)}: ${(err as Error).message}` };
  }
}

/** Picks up to `n` distinct elements at random. */
function sample<T>(all: readonly T[], n: number, random: (n: number) => Uint8Array): T[] {
  if (all.length <= n) return [...all];
  const pool = [...all];
  const out: T[] = [];
  while (out.length < n) {
    const r = new DataView(random(4).buffer).getUint32(0);
    out.push(pool.splice(r % pool.length, 1)[0]!);
  }
  return out;
}

/**
 * Checks the appliance's vault. Never throws for a finding: every finding is an item.
 * @throws ApplianceMissingError if `dataDir` holds no appliance.
 */
export async function checkAppliance(opts: CheckOptions): Promise<CheckReport> {
  const dataDir = resolve(opts.dataDir);
  const now = opts.now ?? (() => new Date());
  const random = opts.random ?? ((n: number) => webcrypto.getRandomValues(new Uint8Array(n)));
  if (!existsSync(join(dataDir, PATHS.meta))) throw new ApplianceMissingError(dataDir);
  const vaultDir = join(dataDir, PATHS.vault);
  const items: CheckItem[] = [];
  const needsMk = ['keyring', 'conversation-keys', 'message-keys', 'messages', 'files'];

  let mk: MasterKey | undefined;
  try {
    mk = await unlockCurrent(dataDir, opts.masterKey);
    const pending = existsSync(join(vaultDir, VAULT_KEY_NEXT_FILE));
    // Committed (the vault serves under this key), but the old secret was never checked to be
    // refused nor its key file shredded: a warning, the appliance works.
    const cleanUp = !pending && existsSync(join(vaultDir, VAULT_KEY_PREV_FILE));
    items.push(
      pending
        ? { name: 'master-key', status: 'fail', detail: `rotation-pending: ${VAULT_KEY_NEXT_FILE} exists; finish with rotate-master-key` }
        : cleanUp
          ? {
              name: 'master-key',
              status: 'warn',
              detail:
                `a master-key rotation was committed but its clean-up (old key refused, --shred-old-key-file) did not finish ` +
                `(${VAULT_KEY_PREV_FILE} exists): run the same rotate-master-key command again (server stopped); the master key unlocks vault-key.json`,
            }
          : { name: 'master-key', status: 'pass', detail: 'the master key unlocks vault-key.json' },
    );
  } catch (err) {
    items.push({ name: 'master-key', status: 'fail', detail: `${reasonOf(err)}: ${(err as Error).message}` });
  }

  items.push(checkWorkingCopies(dataDir, vaultDir));
  items.push(await checkRootCrl(dataDir, now()));

  const vaultPath = join(vaultDir, VAULT_DB_FILE);
  const keysPath = join(vaultDir, KEYS_DB_FILE);
  const dbs: { vault?: Db; keys?: Db } = {};
  try {
    for (const [name, path, slot] of [
      ['vault-db', vaultPath, 'vault'],
      ['keys-db', keysPath, 'keys'],
    ] as const) {
      if (!existsSync(path)) {
        items.push({ name, status: 'fail', detail: `missing: ${path}` });
        continue;
      }
      try {
        const db = await Db.open(path);
        dbs[slot] = db;
        const problems = await integrityProblems(db);
        items.push(
          problems.length === 0
            ? { name, status: 'pass', detail: 'PRAGMA integrity_check: ok' }
            : { name, status: 'fail', detail: `integrity-check: ${problems[0]}`, failures: problems.slice(0, MAX_LISTED).map((p) => ({ id: name, reason: p })) },
        );
      } catch (err) {
        items.push({ name, status: 'fail', detail: `${reasonOf(err)}: ${(err as Error).message}` });
      }
    }
    const { vault, keys } = dbs;

    if (mk && vault && keys) {
      items.push(await checkKeyring(vault, mk));
      const keyItems = await checkKeys(keys, keysPath, mk);
      items.push(...keyItems.items);
      items.push(await checkMessages(vault, keyItems.store, opts.messageSample ?? 20, random));
      items.push(await checkFiles(vault, keyItems.store, opts.fileSample ?? 5, random));
      await keyItems.store.close();
    } else {
      for (const name of needsMk) {
        items.push({ name, status: 'skipped', detail: mk ? 'not checked: a database is missing or unreadable' : 'not checked: the master key did not unlock' });
      }
    }
    items.push(vault ? await checkAudit(vault, dataDir) : { name: 'audit-log', status: 'skipped', detail: 'not checked: vault.db is unreadable' });
    items.push(vault && keys ? await checkOrphans(vault, keys) : { name: 'orphans', status: 'skipped', detail: 'not checked: a database is unreadable' });
  } finally {
    await dbs.vault?.close();
    await dbs.keys?.close();
  }
  return { ok: items.every((i) => i.status !== 'fail'), dataDir, checkedAt: now().toISOString(), items };
}

async function checkKeyring(db: Db, mk: MasterKey): Promise<CheckItem> {
  if (!(await hasTable(db, 'keyring'))) return { name: 'keyring', status: 'fail', detail: 'table keyring is missing' };
  const ring = await Keyring.open(db, mk);
  const rows = await db.all<{ name: string; kind: 'key' | 'secret' }>('SELECT name, kind FROM keyring ORDER BY kind, name');
  const failures: CheckFailure[] = [];
  for (const r of rows) {
    try {
      if (r.kind === 'key') await ring.getKey(r.name);
      else (await ring.getSecret(r.name)).fill(0);
    } catch (err) {
      failures.push({ id: `${r.kind}:${r.name}`, reason: reasonOf(err) });
    }
  }
  const names = new Set(rows.filter((r) => r.kind === 'secret').map((r) => r.name));
  for (const required of Object.values(KEYRING)) {
    if (!names.has(required)) failures.push({ id: `secret:${required}`, reason: 'missing' });
  }
  return item('keyring', rows.length, failures, `${rows.length} keyring rows open under the master key`);
}

async function checkKeys(db: Db, path: string, mk: MasterKey): Promise<{ items: CheckItem[]; store: Keystore }> {
  const store = await Keystore.open(path, mk, { cacheSize: 1 });
  const cks = (await hasTable(db, 'conversation_keys'))
    ? await db.all<{ conv_id: string; wrapped: Uint8Array }>('SELECT conv_id, wrapped FROM conversation_keys')
    : [];
  const ckFailures: CheckFailure[] = [];
  for (const r of cks) {
    await mk.unwrapKey(r.wrapped, ckAad(r.conv_id)).catch((err: unknown) => ckFailures.push({ id: `conversation:${r.conv_id}`, reason: reasonOf(err) }));
  }
  const ids = (await hasTable(db, 'message_keys')) ? (await db.all<{ msg_id: string }>('SELECT msg_id FROM message_keys')).map((r) => r.msg_id) : [];
  const dekFailures: CheckFailure[] = [];
  // Unwrap in small parallel batches: WebCrypto runs them on the thread pool.
  for (let i = 0; i < ids.length; i += 64) {
    await Promise.all(
      ids.slice(i, i + 64).map((id) => store.messageKey(id).catch((err: unknown) => dekFailures.push({ id: `message-key:${id}`, reason: reasonOf(err) }))),
    );
  }
  return {
    store,
    items: [
      item('conversation-keys', cks.length, ckFailures, `${cks.length} conversation keys unwrap under the master key`),
      item('message-keys', ids.length, dekFailures, `${ids.length} message and file keys unwrap under their conversation keys`),
    ],
  };
}

async function checkMessages(db: Db, keys: Keystore, n: number, random: (n: number) => Uint8Array): Promise<CheckItem> {
  if (!(await hasTable(db, 'msg_messages'))) return { name: 'messages', status: 'pass', detail: 'no messages yet', checked: 0 };
  // By rowid: vault.db has no index on message ids (messaging-004), and the rowid is the row's
  // address in every layout a vault was ever in.
  const rows = await db.all<{ r: number; id: string }>('SELECT rowid AS r, id FROM msg_messages ORDER BY seq');
  const picked = new Set(sample(rows.slice(0, -1), n, random));
  if (rows.length > 0) picked.add(rows[rows.length - 1]!);
  const failures: CheckFailure[] = [];
  for (const { r, id } of picked) {
    try {
      const row = await db.get<{ sealed: Uint8Array }>('SELECT sealed FROM msg_messages WHERE rowid = ?', [r]);
      const plain = await open(await keys.messageKey(id), row!.sealed, messageAad(id));
      const header = JSON.parse(Buffer.from(unpackMessage(plain).header).toString('utf8')) as { id?: unknown };
      plain.fill(0);
      if (header.id !== id) failures.push({ id: `message:${id}`, reason: 'header-id-mismatch' });
    } catch (err) {
      failures.push({ id: `message:${id}`, reason: reasonOf(err) });
    }
  }
  return item('messages', picked.size, failures, `${picked.size} of ${rows.length} messages (random sample and the newest) decrypt`);
}

async function checkFiles(db: Db, keys: Keystore, n: number, random: (n: number) => Uint8Array): Promise<CheckItem> {
  if (!(await hasTable(db, 'msg_files'))) return { name: 'files', status: 'pass', detail: 'no files yet', checked: 0 };
  const rows = await db.all<{ id: string; sha384: string; chunk_count: number }>(
    "SELECT id, sha384, chunk_count FROM msg_files WHERE state = 'final' ORDER BY created_at, id",
  );
  const picked = new Set(sample(rows.slice(0, -1), n, random));
  if (rows.length > 0) picked.add(rows[rows.length - 1]!);
  const failures: CheckFailure[] = [];
  for (const f of picked) {
    try {
      const key = await keys.messageKey(fileKeyId(f.id));
      const hash = createHash('sha384');
      for (let idx = 0; idx < f.chunk_count; idx++) {
        const row = await db.get<{ data: Uint8Array }>('SELECT data FROM msg_file_chunks WHERE file = ? AND idx = ?', [f.id, idx]);
        if (!row) throw Object.assign(new Error(`chunk ${idx} missing`), { code: 'chunk-missing' });
        const plain = await open(key, row.data, chunkAad(f.id, idx));
        hash.update(plain);
        plain.fill(0);
      }
      if (hash.digest('base64') !== (await openDigest(key, f.id, f.sha384))) failures.push({ id: `file:${f.id}`, reason: 'sha384-mismatch' });
    } catch (err) {
      failures.push({ id: `file:${f.id}`, reason: reasonOf(err) });
    }
  }
  return item('files', picked.size, failures, `${picked.size} of ${rows.length} files (random sample and the newest) decrypt and match their SHA-384`);
}

/**
 * The trail as an auditor checks it, without the audit key: every leaf and stored subtree
 * recomputed, and every stored checkpoint's signature (audit certificate to the appliance's root)
 * and root held against the tree. The leaves alone cannot tell a history that was rewritten
 * consistently (entries, nodes and head together) from the real one; the checkpoints signed before
 * the rewrite can.
 */
async function checkAudit(db: Db, dataDir: string): Promise<CheckItem> {
  try {
    const meta = await readMeta(dataDir);
    const cert = async (rel: string): Promise<Certificate> => Certificate.fromPem(await readFile(join(dataDir, rel), 'utf8'));
    const v = await verifyAuditTrail({ db, issuingCert: await cert(PATHS.issuingCert), rootCert: await cert(PATHS.rootCert), org: meta.org });
    if (v.ok) {
      return { name: 'audit-log', status: 'pass', detail: `${v.size} entries verify; ${v.checkpoints} signed checkpoints match the tree`, checked: v.size };
    }
    return {
      name: 'audit-log',
      status: 'fail',
      detail: `${v.reason}: ${v.detail}`,
      failures: [{ id: v.seq !== undefined ? `entry:${v.seq}` : v.range ? `entries:${v.range.from}-${v.range.to}` : 'log', reason: v.reason }],
    };
  } catch (err) {
    return { name: 'audit-log', status: 'fail', detail: `${reasonOf(err)}: ${(err as Error).message}` };
  }
}

async function checkOrphans(vault: Db, keys: Db): Promise<CheckItem> {
  const rowsOf = async (db: Db, table: string, sql: string): Promise<string[]> =>
    (await hasTable(db, table)) ? (await db.all<{ id: string }>(sql)).map((r) => r.id) : [];
  const msgIds = await rowsOf(vault, 'msg_messages', 'SELECT id FROM msg_messages');
  const fileIds = (await rowsOf(vault, 'msg_files', 'SELECT id FROM msg_files')).map(fileKeyId);
  const convIds = await rowsOf(vault, 'msg_conversations', 'SELECT id FROM msg_conversations');
  const deks = new Set(await rowsOf(keys, 'message_keys', 'SELECT msg_id AS id FROM message_keys'));
  const cks = new Set(await rowsOf(keys, 'conversation_keys', 'SELECT conv_id AS id FROM conversation_keys'));
  const needed = new Set([...msgIds, ...fileIds]);
  const convSet = new Set(convIds);
  const failures: CheckFailure[] = [];
  const warnings: CheckFailure[] = [];
  for (const id of needed) if (!deks.has(id)) failures.push({ id: `row:${id}`, reason: 'row-without-key (unreadable)' });
  for (const id of convIds) if (!cks.has(id)) failures.push({ id: `conversation:${id}`, reason: 'conversation-without-key' });
  for (const id of deks) if (!needed.has(id)) warnings.push({ id: `message-key:${id}`, reason: 'key-without-row' });
  for (const id of cks) if (!convSet.has(id)) warnings.push({ id: `conversation-key:${id}`, reason: 'key-without-conversation' });
  const checked = needed.size + convIds.length + deks.size + cks.size;
  if (failures.length > 0) {
    const all = [...failures, ...warnings];
    return { name: 'orphans', status: 'fail', detail: `${failures.length} rows whose key no longer exists: ${failures[0]!.id}`, checked, failures: all.slice(0, MAX_LISTED) };
  }
  return item('orphans', checked, warnings, 'every row has its key and every key its row', true);
}
