/**
 * What messaging needs from the rest of the appliance, as narrow interfaces. The appliance passes
 * its real parts (vault Db, keystore, audit log, account store, pki verify); tests pass the same
 * real parts opened on a temp directory. Keeping the seams narrow lets messaging be wired into
 * `appliance.ts` without importing its internals.
 */
import type { Certificate, Clearance } from '../../pki/index.js';
import type { LogFields } from '../log.js';
import type { CryptoKey, Db, KeyDestruction, KeyPlace } from '../vault/index.js';
import type { SealedMessage } from './check-protocol.js';
import { DEFAULT_QUEUE_MAX_BYTES } from './event-hub.js';

/** The authenticated caller, as the session middleware establishes it. */
export interface Principal {
  login: string;
  role: 'staff' | 'officer' | 'auditor' | 'admin';
  /** The account's clearance; the certificate's (if present) is what messaging enforces. */
  clearance: Clearance;
  /** The TLS client certificate the session is bound to (already validated by the shell). */
  certificate: Certificate;
}

/** Destroyable keys (keys.db). Matches the vault's `Keystore`. */
export interface MessageKeyStore {
  createConversationKey(convId: string): Promise<unknown>;
  createMessageKeys(convId: string, ids: readonly string[]): Promise<Map<string, CryptoKey>>;
  messageKey(id: string): Promise<CryptoKey>;
  /** A conversation's key (cached), to seal its messages with (MessageCheckInput.sealWith). */
  conversationKey(convId: string): Promise<CryptoKey>;
  /**
   * Stores message keys wrapped by the checker, each only if its conversation still has a key;
   * answers the conversations that did. @throws KeyExistsError (VAULT_KEY_EXISTS) when any id
   * already has a key (nothing is stored).
   */
  storeWrappedKeys(rows: readonly { convId: string; msgId: string; wrapped: Uint8Array; order: number }[]): Promise<Set<string>>;
  destroyMessageKeys(ids: readonly string[]): Promise<unknown>;
  /** Where each id that has a key sits: its conversation and seq, hence its row (message-lookup.ts). */
  locate(ids: readonly string[]): Promise<Map<string, KeyPlace>>;
  /** Every key's place (a full scan), for the start's reconciliation. */
  keyPlaces(): Promise<KeyPlace[]>;
  /** Gives keys stored before their seq was kept (order 0) their message's seq. */
  placeKeys(places: readonly KeyPlace[]): Promise<number>;
  destroyConversation(convId: string): Promise<unknown>;
  /** Destroys conversation keys (and every DEK under them) whose conversation row does not exist. */
  sweepOrphanConversations(existingConvIds: Iterable<string>): Promise<unknown>;
  /**
   * Destroys keys beside the rows' vault transaction, committing only once `rowsGone` resolves
   * (rolling back if it rejects): the vault Keystore's destroyKeysAfter.
   */
  destroyKeysAfter(what: KeysToDestroy, rowsGone: Promise<unknown>): Promise<unknown>;
}

/**
 * The vault's disk reserve (server/vault/disk-reserve.ts) as messaging uses it: what frees space
 * runs through `freeing`, which on a full disk releases the reserve and retries once; what adds data
 * is refused while `takesNewData` is false, so that the released room goes to deletions.
 */
export interface SpaceReserve {
  readonly takesNewData: boolean;
  freeing<T>(op: () => Promise<T>): Promise<T>;
  /** `err` is an operation's failure: on VAULT_FULL with the reserve on, release it and run `op`; else throw `err`. */
  afterFull<T>(err: unknown, op: () => Promise<T>): Promise<T>;
  /**
   * Makes the reserve again if it is missing and the disk has room (the sweep tick; a refused write,
   * with `notWithinMs`: not if it looked less long ago). Never throws.
   */
  remake(notWithinMs?: number): Promise<unknown>;
}

/** No reserve: every operation runs once, new data is always taken. */
export const NO_RESERVE: SpaceReserve = {
  takesNewData: true,
  freeing: (op) => op(),
  afterFull: (err) => Promise.reject(err instanceof Error ? err : new Error(String(err))),
  remake: async () => undefined,
};

/** The keys a deletion destroys once its rows are gone (the key store's own type). */
export type KeysToDestroy = KeyDestruction;

/** A person as messaging sees them: for peer checks and group clearance rules. */
export interface Person {
  login: string;
  role: string;
  /** False when disabled or locked: such a person cannot be added to a conversation. */
  active: boolean;
  /** The clearance in their current valid certificate; undefined if they have none. */
  certificateClearance: Clearance | undefined;
}

/** Looks people up (the account store). */
export interface Directory {
  person(login: string): Promise<Person | undefined>;
}

/** One audit event (see server/audit). Never contains message content. */
export interface AuditEvent {
  type: string;
  actor?: string;
  subject?: string;
  data?: Record<string, unknown>;
  at?: Date;
}

/** The audit trail. */
export interface AuditSink {
  /** The Merkle log answers each entry's seq (put in receipts); a plain table sink may answer nothing. */
  /** `join`: inside the caller's transaction without a savepoint; the caller fails the transaction if this throws. */
  append(events: AuditEvent[], opts?: { join?: boolean }): Promise<readonly { seq: number | bigint }[] | void>;
}

/** Keyed hash for audit entries (HMAC under the appliance's audit key), hex or base64 text. */
export type KeyedHash = (data: string) => Promise<string>;

/** Outcome of checking a detached CMS signature (pki's verifyDetached, narrowed). */
export type SignatureCheck =
  | { ok: true; label?: Clearance; signingTime?: Date; /** digest of the signed content, already computed by the verifier */ contentDigest?: Uint8Array }
  | { ok: false; reason: string; detail: string };

/** Verifies a detached CMS signature over `content`, requiring `expectedSigner`. */
export type SignatureVerifier = (
  signature: Uint8Array,
  content: Uint8Array,
  expectedSigner: Certificate,
) => Promise<SignatureCheck>;

/** The bytes of one posted message that acceptance checks, and who must have signed them. */
export interface MessageCheckInput {
  /** The message id from the (already parsed) header: its keyed hash is the audit subject. */
  id: string;
  signature: Uint8Array;
  /** The header exactly as signed. */
  header: Uint8Array;
  body: Uint8Array;
  expectedSigner: Certificate;
  /**
   * The conversation key: a message that verifies is then also sealed under a fresh message key
   * wrapped under it (`MessageCheck.sealed`), so the writer has no crypto left to do.
   */
  sealWith?: CryptoKey;
}

/** What acceptance computes from a message's bytes, all of it crypto. */
export interface MessageCheck {
  check: SignatureCheck;
  /** SHA-384 of the body, base64 (compared with the signed header's). */
  bodySha384: string;
  /** Keyed hash of `message:<id>`. */
  subject: string;
  /** Keyed hash of `header:<base64 digest of the signed header>`, when the signature verified. */
  headerHash?: string;
  /** With `sealWith`, when the signature verified: the wrapped message key and the sealed message. */
  sealed?: SealedMessage;
}

/**
 * Verifies a message's signature and computes its digests and keyed hashes in one call, so an
 * implementation can do all of it off the main thread in one hop (check-pool.ts).
 */
export type MessageChecker = (input: MessageCheckInput) => Promise<MessageCheck>;

/** Everything {@link createMessaging} needs. */
export interface MessagingParts {
  /** vault.db */
  db: Db;
  keys: MessageKeyStore;
  directory: Directory;
  audit?: AuditSink;
  /** HMAC for tombstone targets; required for deletions to be logged with a keyed hash. */
  keyedHash: KeyedHash;
  verify?: SignatureVerifier;
  /**
   * The acceptance crypto of a message. Default: `verify` and `keyedHash` on this thread (WebCrypto);
   * the appliance passes the worker-thread pool of check-pool.ts.
   */
  checker?: MessageChecker;
  now?: () => Date;
  random?: (n: number) => Uint8Array;
  config?: Partial<MessagingConfig>;
  /** The vault's disk reserve (`vault.reserve`). Default none ({@link NO_RESERVE}). */
  reserve?: SpaceReserve;
  /** Where non-fatal background failures go (e.g. the audit append after a commit). */
  log?: (event: string, fields: LogFields) => void;
}

/** Tunables, each with its default. */
export interface MessagingConfig {
  /** Largest message body in bytes. Default 1 MiB. */
  maxBodyBytes: number;
  /**
   * Most messages in one `POST /v1/messages/batch`. Default 64. The request as a whole stays
   * under one message's body limit, so a batch never holds more bytes than a single send may.
   */
  maxBatchMessages: number;
  /** Largest attachment in bytes. Default 100 MiB. */
  maxFileBytes: number;
  /** Plaintext bytes per stored file chunk. Default 1 MiB. */
  chunkBytes: number;
  /** Accepted distance between a header's sentAt and server time. Default 5 minutes. */
  clockSkewMs: number;
  /** A pending (unreferenced) upload is destroyed after this long. Default 1 hour. */
  pendingFileTtlMs: number;
  /**
   * Most pending uploads (uploaded, not yet named by a message, or still streaming in) one person
   * may keep. Default 32: the most attachments one header may name, so any message the header
   * schema allows can still be staged. Without it one member could fill the vault with files no
   * one else can see or delete (reviewer's finding: 22 × 4 MiB filled a 96 MiB disk).
   */
  maxPendingUploads: number;
  /**
   * Most bytes one person's pending uploads may hold together; an upload in flight counts with its
   * announced length (or, unannounced, with what remains of this). Default 200 MiB, twice
   * `maxFileBytes`'s default: the largest file plus room to stage another beside it. Keep it at
   * least `maxFileBytes`, or the largest files can never be uploaded.
   */
  maxPendingUploadBytes: number;
  /** The batching writer commits when this many messages wait… Default 512. */
  batchMax: number;
  /** …or after this many milliseconds. Default 2. */
  batchDelayMs: number;
  /** Queued live events per SSE connection before it is dropped as too slow. Default 1024. */
  eventQueueMax: number;
  /**
   * …or queued bytes (about: the events' JSON), since a count alone lets one stalled reader pin
   * 1024 whole 1 MiB messages. Default 4 MiB.
   */
  eventQueueMaxBytes: number;
  /** Interval of the retention / pending-upload sweep; 0 disables the timer. Default 60 s. */
  sweepIntervalMs: number;
  /** Largest history page. Default 200. */
  maxPage: number;
  /**
   * First retry of a deletion's keys or checkpoint that failed after its rows committed
   * (late-destruction.ts); each failure doubles it, up to 60 s. Default 1 s.
   */
  lateDestructionRetryMs: number;
}

export const DEFAULT_CONFIG: MessagingConfig = {
  maxBodyBytes: 1024 * 1024,
  maxBatchMessages: 64,
  maxFileBytes: 100 * 1024 * 1024,
  chunkBytes: 1024 * 1024,
  clockSkewMs: 5 * 60 * 1000,
  pendingFileTtlMs: 60 * 60 * 1000,
  maxPendingUploads: 32,
  maxPendingUploadBytes: 2 * 100 * 1024 * 1024,
  batchMax: 512,
  batchDelayMs: 2,
  eventQueueMax: 1024,
  eventQueueMaxBytes: DEFAULT_QUEUE_MAX_BYTES,
  sweepIntervalMs: 60_000,
  maxPage: 200,
  lateDestructionRetryMs: 1000,
};
