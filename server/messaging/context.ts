/**
 * The shared context of the messaging services (one per appliance) and small helpers they share:
 * ids, base64, clearance ranks, and the in-memory membership cache that keeps the hot message
 * path from querying membership per message.
 */
import { webcrypto } from 'node:crypto';
import { clearanceRank, isClearance, type Clearance } from '../../pki/index.js';
import { chunks, marks, VaultFullError, type Db, type DbTx } from '../vault/index.js';
import type { KeyedQueue } from '../keyed-queue.js';
import type { LogFields } from '../log.js';
import { subjectInput } from './check-protocol.js';
import { ConversationNotFoundError, HeaderInvalidError, NotAMemberError } from './errors.js';
import type { EventHub } from './event-hub.js';
import type { LateDestruction } from './late-destruction.js';
import type {
  AuditSink,
  Directory,
  KeyedHash,
  MessageChecker,
  MessageKeyStore,
  MessagingConfig,
  Principal,
  SignatureVerifier,
  SpaceReserve,
} from './ports.js';

/** Everything a messaging service function reads; built once by `createMessaging`. */
export interface Ctx {
  db: Db;
  keys: MessageKeyStore;
  directory: Directory;
  audit: AuditSink | undefined;
  keyedHash: KeyedHash;
  verify: SignatureVerifier;
  /** The acceptance crypto of one message (check-pool.ts): signature, body digest, keyed hashes. */
  check: MessageChecker;
  now: () => Date;
  random: (n: number) => Uint8Array;
  config: MessagingConfig;
  hub: EventHub;
  members: MembershipCache;
  log: (event: string, fields: LogFields) => void;
  /** A deletion's keys and checkpoint that failed after its commit, retried (late-destruction.ts). */
  late: LateDestruction;
  /** One upload's admission (quota check, file key, row) at a time per uploader (upload-quota.ts). */
  uploadAdmissions: KeyedQueue;
  /** The disk reserve: deletions run through `room.freeing`; new data waits while `room.takesNewData` is false. */
  room: SpaceReserve;
}

/**
 * Refuses new data while the disk reserve is released (ports.ts SpaceReserve): the room it freed is
 * for deletions. @throws VaultFullError
 */
export function requireRoom(ctx: Pick<Ctx, 'room'>): void {
  if (!ctx.room.takesNewData) {
    void ctx.room.remake(1000); // space may have returned: a request a second later sees it
    throw new VaultFullError(
      'the disk is full: the room kept for deletions is not in place (used, or no room to make it), so new messages and uploads are refused until space is freed',
    );
  }
}

/**
 * A new random id: 16 bytes as 22 characters of base64url (the header's id format). Never with a
 * leading '-': a command line reads `sigil download -B5o…` as an option, so one id in 64 would
 * need `--`. A leading '-' becomes '_' (that costs ~0.02 of the 128 bits). The CLI's own
 * newId (client-cli/messaging/header.ts) does the same.
 */
export function newId(random: (n: number) => Uint8Array): string {
  const id = Buffer.from(random(16)).toString('base64url');
  return id.startsWith('-') ? `_${id.slice(1)}` : id;
}

export const defaultRandom = (n: number): Uint8Array => webcrypto.getRandomValues(new Uint8Array(n));

/**
 * Decodes strict standard base64: only the one canonical spelling of the bytes. Buffer.from
 * silently skips junk and ignores padding bits, which would let different strings stand for the
 * same bytes; decoding and encoding again refuses all of them (and costs ~1/10 of the regular
 * expression this replaced, which also let non-zero padding bits through).
 *
 * @throws the error `onError` builds, naming `field`.
 */
export function fromB64(text: string, field: string, onError: (m: string) => Error = (m) => new HeaderInvalidError(m)): Uint8Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) throw onError(`field ${field}: must be standard base64`);
  // A copy of its own: a small Buffer is a view of Node's shared 8 KiB pool.
  return new Uint8Array(bytes);
}

export function toB64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** The clearance messaging enforces for a principal: the one in their certificate. */
export function principalClearance(p: Principal): Clearance {
  const c = (p.certificate as { clearance?: Clearance }).clearance;
  return c !== undefined && isClearance(c) ? c : p.clearance;
}

export function rank(c: Clearance): number {
  return clearanceRank(c);
}

/** The lower of two levels. */
export function minClearance(a: Clearance, b: Clearance): Clearance {
  return rank(a) <= rank(b) ? a : b;
}

/** A conversation as the cache holds it. */
export interface ConvInfo {
  id: string;
  kind: 'direct' | 'group';
  name: string | null;
  label: Clearance;
  retentionDays: number | null;
  /** login → role */
  members: Map<string, 'owner' | 'member'>;
}

interface ConvRow {
  id: string;
  kind: 'direct' | 'group';
  name: string | null;
  label: Clearance;
  retention_days: number | null;
}

/**
 * Conversations and their member lists, loaded on first use and dropped on every change made
 * through this service (all changes are). Bounded: beyond `max` entries the oldest is evicted.
 */
export class MembershipCache {
  readonly #db: Db;
  readonly #max: number;
  readonly #map = new Map<string, Promise<ConvInfo | undefined>>();

  constructor(db: Db, max = 10_000) {
    this.#db = db;
    this.#max = max;
  }

  /** The conversation, or undefined if it does not exist. */
  get(id: string): Promise<ConvInfo | undefined> {
    const hit = this.#map.get(id);
    if (hit) return hit;
    const load = this.#load(id);
    this.#map.set(id, load);
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next().value;
      if (oldest !== undefined) this.#map.delete(oldest);
    }
    load.catch(() => this.#map.delete(id));
    return load;
  }

  invalidate(id: string): void {
    this.#map.delete(id);
  }

  async #load(id: string): Promise<ConvInfo | undefined> {
    const row = await this.#db.get<ConvRow>(
      'SELECT id, kind, name, label, retention_days FROM msg_conversations WHERE id = ?',
      [id],
    );
    if (!row) return undefined;
    const mem = await this.#db.all<{ login: string; role: 'owner' | 'member' }>(
      'SELECT login, role FROM msg_members WHERE conversation = ?',
      [id],
    );
    return {
      id: row.id,
      kind: row.kind,
      name: row.name,
      label: row.label,
      retentionDays: row.retention_days,
      members: new Map(mem.map((m) => [m.login, m.role])),
    };
  }
}

/**
 * The conversation if `p` is a member. One `p` is not in is reported as not found, direct or
 * group alike: its existence and its group's name are private to its members, as the group
 * routes keep them (GROUP_NOT_FOUND). A group id reaches outsiders easily (a former member, an
 * exported header), and a 403 naming the group told them it exists and what it is called.
 * Officers, who may see every group, are told NOT_A_MEMBER.
 *
 * @throws ConversationNotFoundError | NotAMemberError
 */
export async function requireMember(ctx: Ctx, p: Principal, convId: string): Promise<ConvInfo> {
  const conv = await ctx.members.get(convId);
  if (!conv) throw new ConversationNotFoundError(`conversation ${convId} does not exist or is not yours`);
  if (!conv.members.has(p.login)) {
    if (conv.kind === 'group' && p.role === 'officer') throw new NotAMemberError(`${p.login} is not a member of group ${conv.name ?? convId}`);
    throw new ConversationNotFoundError(`conversation ${convId} does not exist or is not yours`);
  }
  return conv;
}

/** Officers may destroy any correspondence (and manage any group). */
export function isOfficer(p: Principal): boolean {
  return p.role === 'officer';
}

export { messageAad, packMessage, unpackMessage } from './sealed-message.js';

/** The key-store id of a file's own key (a DEK under the conversation's CK). */
export function fileKeyId(fileId: string): string {
  return `file:${fileId}`;
}

export function chunkAad(fileId: string, idx: number): string {
  return `sigil-file:${fileId}:${idx}`;
}

/** The keyed hash naming a message in the audit trail and in the replay guard of deleted ids. */
export function messageSubject(ctx: Pick<Ctx, 'keyedHash'>, id: string): Promise<string> {
  return ctx.keyedHash(subjectInput(id));
}

/**
 * Puts message subjects ({@link messageSubject}) into the replay guard until `until` (ISO time),
 * so the signed originals of deleted messages cannot be accepted again: deletion and the restore
 * sweep. A few multi-row statements, not one per id.
 */
export async function guardSubjects(tx: Pick<DbTx, 'run'>, subjects: readonly string[], until: string): Promise<void> {
  for (const part of chunks(subjects, 400)) {
    await tx.run(`INSERT OR REPLACE INTO msg_replay_guard (id_hash, until) VALUES ${marks(part.length, '(?, ?)')}`, part.flatMap((h) => [h, until]));
  }
}
