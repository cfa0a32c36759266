/**
 * Test harness for messaging services: a real vault (vault.db + keys.db) in a temp directory, a
 * real audit log, a real CA issuing real staff certificates, real CMS signatures. Only the clock
 * is settable. The directory of people is the in-memory record of who was issued what
 * certificate here (the account store's job in the appliance).
 *
 * Run directly, this file checks itself (tap runs every file under test/).
 */
import { webcrypto } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signDetached, type Certificate, type Clearance, type CryptoKey } from '../../../pki/index.js';
import { AuditLog } from '../../../server/audit/index.js';
import {
  canonicalDeleteStatement,
  canonicalHeader,
  createMessaging,
  keyedHashFromKeyring,
  type ConversationView,
  type KeyedHash,
  type DeleteRequest,
  type MessageHeader,
  type MessageInput,
  type Messaging,
  type MessagingConfig,
  type MessagingParts,
  type Person,
  type Principal,
} from '../../../server/messaging/index.js';
import { initVault, type Vault, type VaultReserveOptions } from '../../../server/vault/index.js';
import { checkPool } from '../../../server/messaging/check-pool.js';
import { newId } from '../../../server/messaging/context.js';
import { makeTestCa, type TestCa } from '../../helpers/pki-fixtures.js';
import { tmpDir } from '../../helpers/tmp.js';

export interface User {
  login: string;
  principal: Principal;
  cert: Certificate;
  key: CryptoKey;
}

export interface Harness {
  dir: string;
  vault: Vault;
  audit: AuditLog;
  messaging: Messaging;
  ca: TestCa;
  clock: { now: Date };
  people: Map<string, Person>;
  user(login: string, clearance?: Clearance, role?: Principal['role']): Promise<User>;
  /** Two staff users (secret) and the direct conversation between them, opened by `a`. */
  direct(loginA: string, loginB: string): Promise<{ a: User; b: User; conv: ConversationView }>;
  /** Builds and signs a message as `u` would; `over` replaces header fields, `label` the signed label. */
  compose(
    u: User,
    conversation: string,
    body: string | Uint8Array,
    over?: Partial<MessageHeader>,
    sign?: { label?: Clearance; as?: User },
  ): Promise<MessageInput & { id: string }>;
  deleteRequest(u: User, target: string, reason?: string): Promise<DeleteRequest>;
  /**
   * Another messaging service over this vault, started, as after a restart (close `messaging`
   * first; the caller closes this one). `over` replaces the vault connection, the key store, the log
   * or the signature verifier, e.g. with a wrapper that injects a fault.
   */
  restart(over?: Partial<Pick<MessagingParts, 'db' | 'keys' | 'log' | 'verify'>>): Promise<Messaging>;
  close(): Promise<void>;
}

const enc = new TextEncoder();

export async function sha384b64(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-384', bytes)).toString('base64');
}

/**
 * Makes the next `destroyMessageKeys` of `h`'s key store fail as a full disk would (SQLITE_FULL),
 * once; later calls go through. Answers a count of the failures so far (0 or 1).
 */
export function failNextKeyDestruction(h: Harness): () => number {
  const keys = h.vault.keys as unknown as Record<string, unknown>;
  let failed = 0;
  keys.destroyMessageKeys = async () => {
    failed++;
    delete keys.destroyMessageKeys; // the own property goes: the prototype's method is back
    throw Object.assign(new Error('disk full'), { code: 'SQLITE_FULL' });
  };
  return () => failed;
}

/**
 * A message id as Sigil makes them (server/messaging/context.ts `newId`): never with a leading '-',
 * which a command line reads as an option (review: one `meeting answer <id>` in 64 failed on it).
 */
export function newMessageId(): string {
  return newId((n) => webcrypto.getRandomValues(new Uint8Array(n)));
}

let sharedCa: Promise<TestCa> | undefined;

/** Opens everything in a temp dir removed when `t` ends. */
export async function harness(
  t: { teardown(fn: () => void | Promise<void>): void },
  opts: {
    config?: Partial<MessagingConfig>;
    dir?: string;
    /** Check (and seal) messages in worker threads as the appliance does (check-pool.ts); default in-thread. */
    workers?: boolean;
    /** Wraps the keyed hash the service uses: a test's way in between two steps of an operation. */
    keyedHash?: (base: KeyedHash) => KeyedHash;
    /** A disk reserve in the vault directory (default none). */
    reserve?: VaultReserveOptions;
  } = {},
): Promise<Harness> {
  const dir = opts.dir ?? tmpDir(t, 'sigil-msg-');
  const data = join(dir, 'data');
  const clock = { now: new Date() };
  const now = (): Date => clock.now;
  const vault = await initVault({ dir: data, keyFilePath: join(dir, 'master.key'), now, ...(opts.reserve ? { reserve: opts.reserve } : {}) });
  const audit = await AuditLog.open(vault.db, { now });
  const baseKeyedHash = await keyedHashFromKeyring(vault.keyring);
  const keyedHash = opts.keyedHash ? opts.keyedHash(baseKeyedHash) : baseKeyedHash;
  const people = new Map<string, Person>();
  const checker = opts.workers ? { checker: checkPool().checker(await vault.keyring.getSecret('audit-hmac')) } : {};
  const startMessaging = async (over: Partial<Pick<MessagingParts, 'db' | 'keys' | 'log' | 'verify'>> = {}): Promise<Messaging> => {
    const m = createMessaging({
      db: vault.db,
      keys: vault.keys,
      directory: { person: async (login) => people.get(login) },
      audit,
      keyedHash,
      ...checker,
      reserve: vault.reserve,
      now,
      config: { sweepIntervalMs: 0, ...opts.config },
      log: () => undefined,
      ...over,
    });
    await m.start();
    return m;
  };
  const messaging = await startMessaging();
  sharedCa ??= makeTestCa('p256');
  const ca = await sharedCa;
  let closed = false;
  const h: Harness = {
    dir: data,
    vault,
    audit,
    messaging,
    ca,
    clock,
    people,
    async user(login, clearance = 'secret', role = 'staff') {
      const { cert, key } = await ca.staff(login, clearance);
      people.set(login, { login, role, active: true, certificateClearance: clearance });
      return { login, cert, key, principal: { login, role, clearance, certificate: cert } };
    },
    async direct(loginA, loginB) {
      const a = await h.user(loginA);
      const b = await h.user(loginB);
      return { a, b, conv: await h.messaging.direct(a.principal, b.login) };
    },
    async compose(u, conversation, body, over = {}, sign = {}) {
      const bytes = typeof body === 'string' ? enc.encode(body) : body;
      const header: MessageHeader = {
        attachments: [],
        body: { sha384: await sha384b64(bytes), size: bytes.length },
        conversation,
        id: newMessageId(),
        label: 'restricted',
        purpose: 'sigil-message',
        replyTo: null,
        sender: u.login,
        sentAt: clock.now.toISOString(),
        urgent: false,
        v: 1,
        ...over,
      };
      const text = canonicalHeader(header);
      const signer = sign.as ?? u;
      const sig = await signDetached({
        content: enc.encode(text),
        signerCert: signer.cert,
        signerKey: signer.key,
        label: sign.label ?? header.label,
        signingTime: clock.now,
      });
      return {
        id: header.id,
        header: text,
        signature: Buffer.from(sig).toString('base64'),
        body: Buffer.from(bytes).toString('base64'),
      };
    },
    async deleteRequest(u, target, reason = 'no longer needed') {
      const statement = canonicalDeleteStatement({ at: clock.now.toISOString(), purpose: 'sigil-delete', reason, target });
      const sig = await signDetached({ content: enc.encode(statement), signerCert: u.cert, signerKey: u.key, signingTime: clock.now });
      return { reason, statement, signature: Buffer.from(sig).toString('base64') };
    },
    restart: startMessaging,
    async close() {
      if (closed) return;
      closed = true;
      await messaging.close();
      await vault.close();
    },
  };
  t.teardown(() => h.close());
  return h;
}

// Self-check when tap runs this file on its own.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { default: tap } = await import('tap');
  tap.test('when the harness sends one message then it reads back', async (t) => {
    const h = await harness(t);
    const { a, b, conv } = await h.direct('h-alice', 'h-bob');
    const m = await h.compose(a, conv.id, 'hello');
    const r = await h.messaging.send(a.principal, m);
    const got = await h.messaging.message(b.principal, r.id);
    t.equal(Buffer.from(got.body ?? '', 'base64').toString(), 'hello');
  });
}
