/**
 * Issue 8 (kill -9 mid-destroy): the key store deletes beside the rows' vault transaction but
 * commits only after it. A real child process destroys a group and is SIGKILLed right after the
 * rows committed, with the keys' commit and vault.db's WAL truncation still pending: the rows must
 * stay gone, keys.db must still hold every key, and the start sweep must leave no key and no
 * ciphertext anywhere. Killed one step later, after the keys' deletes committed and before keys.db's
 * WAL was truncated, the wrapped keys still sit in that WAL: start must truncate it, though it
 * finds no orphan key to destroy.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { AuditLog } from '../../../server/audit/index.js';
import { createMessaging, keyedHashFromKeyring } from '../../../server/messaging/index.js';
import { unlockVault } from '../../../server/vault/index.js';
import { scanTree } from '../../helpers/forensics.js';
import { tmpDir } from '../../helpers/tmp.js';

const CHILD = fileURLToPath(new URL('./fixtures/deletion-crash-child.ts', import.meta.url));
const MESSAGES = 100;

interface Filled {
  conv: string;
  sealed: string[];
  wrapped: string[];
}

/** Runs the child until it says ROWS-COMMITTED (or, with `keys`, KEYS-COMMITTED), then SIGKILLs it. */
function destroyAndKill(dir: string, mode: 'rows' | 'keys' = 'rows'): Promise<{ filled: Filled; lines: string[]; signal: NodeJS.Signals | null }> {
  // The TypeScript loader tap runs this test with (and only it: no coverage or mock hooks).
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || a === '--enable-source-maps');
  const child = spawn(process.execPath, [...loader, CHILD, dir, String(MESSAGES), ...(mode === 'keys' ? ['keys'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let filled: Filled | undefined;
  const lines: string[] = [];
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      if (line.startsWith('FILLED ')) filled = JSON.parse(line.slice(7)) as Filled;
      else lines.push(line);
      if (line === (mode === 'keys' ? 'KEYS-COMMITTED' : 'ROWS-COMMITTED')) child.kill('SIGKILL');
    }
  });
  return new Promise((resolve, reject) => {
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      if (!filled) reject(new Error(`the child never filled the group: ${err}`));
      else resolve({ filled, lines, signal });
    });
  });
}

/** The messaging service over `vault`, started as the appliance starts it: its start is what sweeps. */
async function startMessaging(t: { teardown(fn: () => unknown): void }, vault: Awaited<ReturnType<typeof unlockVault>>): Promise<void> {
  const messaging = createMessaging({
    db: vault.db,
    keys: vault.keys,
    directory: { person: async () => undefined },
    audit: await AuditLog.open(vault.db),
    keyedHash: await keyedHashFromKeyring(vault.keyring),
    config: { sweepIntervalMs: 0 },
    log: () => undefined,
  });
  await messaging.start();
  t.teardown(() => messaging.close());
}

t.test('when the process is killed after a destroy committed its rows and before its keys then the rows stay gone, the keys were still there, and start sweeps them', async (t) => {
  const dir = tmpDir(t, 'sigil-crash-');
  const data = join(dir, 'data');
  const { filled, lines, signal } = await destroyAndKill(dir);
  t.equal(signal, 'SIGKILL');
  t.same(lines, ['ROWS-COMMITTED'], 'killed right after the rows committed, before the destroy returned');
  t.equal(filled.sealed.length, MESSAGES);
  t.equal(filled.wrapped.length, MESSAGES + 1, 'control: a DEK per message and the CK');
  const sealed = filled.sealed.map((b) => Buffer.from(b, 'base64'));
  const wrapped = filled.wrapped.map((b) => Buffer.from(b, 'base64'));
  const found = (needles: Buffer[]) => new Set(scanTree(data, needles).map((h) => h.needleIndex)).size;
  t.equal(found(wrapped), wrapped.length, 'keys.db still holds every key: they never go before the rows');
  t.same(scanTree(data, ['CRASH-MARKER']), [], 'no plaintext anywhere');

  const vault = await unlockVault({ dir: data, keyFilePath: join(dir, 'master.key') });
  t.teardown(() => vault.close());
  const left = await vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_messages WHERE conversation = ?', [filled.conv]);
  t.equal(left?.n, 0, 'the rows stay gone: their transaction committed');
  t.notOk(await vault.db.get('SELECT 1 AS x FROM msg_conversations WHERE id = ?', [filled.conv]), 'and the conversation row');

  await startMessaging(t, vault);
  const deks = await vault.keys.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM message_keys WHERE conv_id = ?', [filled.conv]);
  t.equal(deks?.n, 0, 'start swept every DEK of the destroyed conversation');
  t.notOk(await vault.keys.hasConversationKey(filled.conv), 'start swept its CK (sweepOrphanConversations)');
  t.same(scanTree(data, wrapped), [], 'no wrapped key of it left in any file');
  t.same(scanTree(data, sealed), [], 'no ciphertext of it left in any file: start truncated the vault WAL');
});

t.test('when the process is killed after a destroy committed its keys and before keys.db’s WAL was truncated then start truncates it', async (t) => {
  const dir = tmpDir(t, 'sigil-crash-keys-');
  const data = join(dir, 'data');
  const { filled, lines, signal } = await destroyAndKill(dir, 'keys');
  t.equal(signal, 'SIGKILL');
  t.same(lines, ['KEYS-COMMITTED'], 'killed right after the keys committed, before the destroy returned');
  const wrapped = filled.wrapped.map((b) => Buffer.from(b, 'base64'));
  const before = scanTree(data, wrapped);
  t.ok(before.length > 0, `control: ${new Set(before.map((h) => h.needleIndex)).size} deleted keys still readable in ${[...new Set(before.map((h) => h.file))].join(', ')}`);

  const vault = await unlockVault({ dir: data, keyFilePath: join(dir, 'master.key') });
  t.teardown(() => vault.close());
  t.equal((await vault.keys.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM message_keys WHERE conv_id = ?', [filled.conv]))?.n, 0, 'the deletes had committed');
  await startMessaging(t, vault);
  t.same(scanTree(data, wrapped), [], 'no wrapped key of it left in any file: start truncated keys.db’s WAL too');
});
