/**
 * Public API of server/messaging: signed messages, conversations, groups, files, live events and
 * irreversible deletion. The appliance builds one {@link Messaging} with {@link createMessaging};
 * the route factories in `server/routes/{conversations,messages,groups,files,events}.ts` take it.
 */
import { webcrypto } from 'node:crypto';
import { verifyDetached, type Certificate, type Clearance } from '../../pki/index.js';
import { defaultRandom, MembershipCache, rank, type Ctx } from './context.js';
import * as conversations from './conversations.js';
import * as deletion from './deletion.js';
import type { DeleteRequest, Tombstone } from './deletion-record.js';
import { DeliveryMarks } from './delivery-marks.js';
import { EventHub, type Subscription } from './event-hub.js';
import * as files from './files.js';
import { sealLegacyDigests } from './file-digest.js';
import * as groups from './groups.js';
import * as messages from './messages.js';
import * as messageMarks from './message-marks.js';
import * as reading from './message-reading.js';
import { reconcileKeys } from './message-lookup.js';
import { sweepRetention } from './retention-sweep.js';
import { DEFAULT_CONFIG, NO_RESERVE, type KeyedHash, type MessagingParts, type Principal, type SignatureVerifier } from './ports.js';
import { MESSAGING_MIGRATIONS } from './schema.js';
import { chunks, marks as sqlMarks } from '../vault/index.js';
import { BatchWriter, highWater, type Committed, type StagedMessage } from './writer.js';
import { inThreadChecker } from './check-pool.js';
import { errorFields, type LogFields } from '../log.js';
import { LateDestruction } from './late-destruction.js';
import { KeyedQueue } from '../keyed-queue.js';

export * from './errors.js';
export type { ConversationView } from './conversations.js';
export type { DeleteRequest, Tombstone } from './deletion-record.js';
export type { LiveEvent, LiveSink, Subscription } from './event-hub.js';
export type { Discarded, Download, UploadResult } from './files.js';
export type { GroupView } from './groups.js';
export type { BatchOutcome, MessageInput, Receipt } from './messages.js';
export type { MessageView } from './message-reading.js';
export type {
  AuditEvent,
  AuditSink,
  Directory,
  KeyedHash,
  MessageKeyStore,
  MessagingConfig,
  MessagingParts,
  Person,
  Principal,
  SignatureCheck,
  SignatureVerifier,
  SpaceReserve,
} from './ports.js';
export { DEFAULT_CONFIG, NO_RESERVE } from './ports.js';
export { MESSAGING_MIGRATIONS } from './schema.js';
export {
  canonicalDeleteStatement,
  canonicalHeader,
  parseDeleteStatement,
  parseMessageHeader,
  type DeleteStatement,
  type MessageHeader,
} from './header.js';

/** pki's verifyDetached narrowed to what messaging needs. */
export const pkiVerifier: SignatureVerifier = async (signature, content, expectedSigner: Certificate) => {
  const r = await verifyDetached(signature, content, { expectedSigner });
  if (!r.ok) return { ok: false, reason: r.reason, detail: r.detail };
  return {
    ok: true,
    ...(r.label !== undefined ? { label: r.label as Clearance } : {}),
    ...(r.signingTime !== undefined ? { signingTime: r.signingTime } : {}),
    contentDigest: r.contentDigest,
  };
};

/** The messaging service: one per appliance. Every method takes the authenticated principal. */
export interface Messaging {
  /** Creates the tables (idempotent) and starts the sweep timer. Call once after construction. */
  start(): Promise<void>;
  /** Stops the timer, ends live streams, writes what is queued. */
  close(): Promise<void>;
  /**
   * Ends every live event stream now (a stopping server: streams are requests that never end by
   * themselves, so the listener would wait its whole grace period for them). Clients resume with
   * Last-Event-ID; messages are still accepted until {@link close}.
   */
  endLiveStreams(): void;
  /**
   * Calls `listener` when {@link endLiveStreams} runs: the send streams' route
   * (`POST /v1/messages/stream`) stops reading then and ends its streams once their messages
   * in flight are answered. Returns the unsubscribe.
   */
  onEndStreams(listener: () => void): () => void;

  send(p: Principal, input: messages.MessageInput): Promise<messages.Receipt>;
  /** Several messages of one sender, each accepted or refused on its own, stored in the given order. */
  sendMany(p: Principal, inputs: readonly messages.MessageInput[]): Promise<messages.BatchOutcome[]>;
  /**
   * One sender's stream of messages: each call checks one message alongside those in flight and
   * stores it after every earlier call's message (see `orderedAcceptor`).
   */
  sender(p: Principal): (input: messages.MessageInput) => Promise<messages.BatchOutcome>;
  message(p: Principal, id: string): Promise<reading.MessageView>;
  history(p: Principal, conv: string, opts: { before?: number; limit?: number }): ReturnType<typeof reading.history>;
  since(p: Principal, after: number, limit: number): Promise<reading.MessageView[]>;
  /**
   * The highest seq the vault ever gave, committed (deletions never lower it; nothing is numbered
   * above it yet). A live stream's resume point above it names nothing that exists: the stream
   * resumes from here instead, or it would skip new messages until the sequence caught up.
   */
  highWater(): Promise<number>;
  receipts(p: Principal, id: string): ReturnType<typeof messageMarks.receipts>;
  markRead(p: Principal, conv: string, upTo: number): Promise<void>;
  /** Delivery receipt: the caller received messages of `conv` up to `seq` (e.g. pushed live). */
  markDelivered(p: Principal, conv: string, seq: number): Promise<void>;
  /**
   * The same, batched (live delivery): kept in memory, written within 1 s in one transaction for
   * all, and at close. Takes the login only, so an idle live stream need not keep its principal.
   */
  reportDelivered(login: string, conv: string, seq: number): void;

  direct(p: Principal, peer: string): Promise<conversations.ConversationView>;
  conversations(p: Principal): Promise<conversations.ConversationView[]>;
  conversation(p: Principal, id: string): Promise<conversations.ConversationView>;
  mute(p: Principal, id: string, muted: boolean): Promise<conversations.ConversationView>;

  createGroup(p: Principal, input: { name: string; label: Clearance; retentionDays?: number | undefined }): Promise<groups.GroupView>;
  groups(p: Principal): Promise<groups.GroupView[]>;
  group(p: Principal, name: string): Promise<groups.GroupView>;
  addMember(p: Principal, name: string, input: { login: string; role?: 'owner' | 'member' | undefined }): Promise<groups.GroupView>;
  removeMember(p: Principal, name: string, login: string): Promise<groups.GroupView>;

  upload(p: Principal, conv: string, body: ReadableStream<Uint8Array> | null, length?: number): Promise<files.UploadResult>;
  download(p: Principal, fileId: string): Promise<files.Download>;
  /** The uploader discards their pending upload: rows, then key (see `files.discardUpload`). */
  discardUpload(p: Principal, fileId: string): Promise<files.Discarded>;

  deleteMessage(p: Principal, id: string, req: DeleteRequest): Promise<Tombstone>;
  deleteConversation(p: Principal, id: string, req: DeleteRequest): Promise<Tombstone>;
  deleteGroup(p: Principal, name: string, req: DeleteRequest): Promise<Tombstone>;
  deleteUserCorrespondence(p: Principal, login: string, req: DeleteRequest): Promise<Tombstone>;

  /** Retention and pending-upload sweep (the timer calls it; tests call it with a fake clock). */
  sweep(): Promise<{ retention: number; pendingFiles: number }>;
  /** Live events for a principal. */
  subscribe(p: Principal): Subscription;
  /** Waits until every queued message is written (tests, shutdown). */
  flush(): Promise<void>;
  readonly config: Readonly<typeof DEFAULT_CONFIG>;
}

/**
 * Builds the messaging service over the appliance's vault parts.
 *
 * @example
 * const messaging = createMessaging({ db: vault.db, keys: vault.keys, directory, audit, keyedHash });
 * await messaging.start();
 */
export function createMessaging(parts: MessagingParts): Messaging {
  const config = { ...DEFAULT_CONFIG, ...parts.config };
  const hub = new EventHub(config.eventQueueMax, config.eventQueueMaxBytes);
  /** The send streams' route, told when the server stops (see `onEndStreams`). */
  const streamEndListeners = new Set<() => void>();
  const log = parts.log ?? ((event: string, fields: LogFields) => process.stderr.write(`${JSON.stringify({ event, ...fields })}\n`));
  const room = parts.reserve ?? NO_RESERVE;
  const ctx: Ctx = {
    db: parts.db,
    keys: parts.keys,
    directory: parts.directory,
    audit: parts.audit,
    keyedHash: parts.keyedHash,
    verify: parts.verify ?? pkiVerifier,
    // An injected verifier (tests, benches) runs in-thread; otherwise the caller's checker, or WebCrypto.
    check: parts.verify || !parts.checker ? inThreadChecker(parts.verify ?? pkiVerifier, parts.keyedHash) : parts.checker,
    now: parts.now ?? (() => new Date()),
    random: parts.random ?? defaultRandom,
    config,
    hub,
    members: new MembershipCache(parts.db),
    log,
    room,
    // What a deletion left after its commit frees space too: on a full disk, through the reserve.
    late: new LateDestruction({
      keys: { destroyKeysAfter: (what, rowsGone) => room.freeing(() => parts.keys.destroyKeysAfter(what, rowsGone)) },
      checkpoint: () => room.freeing(() => parts.db.checkpointTruncate()),
      log,
      firstDelayMs: config.lateDestructionRetryMs,
    }),
    uploadAdmissions: new KeyedQueue(),
  };
  // Delivery receipts of live delivery, batched process-wide (delivery-marks.ts).
  const marks = new DeliveryMarks(ctx);
  // Audit indexes of the batch just committed, read by the requests it resolves.
  const auditIndex = new Map<string, number>();
  const writer = new BatchWriter(
    ctx,
    async (batch, withdrawn) => publish(batch, withdrawn),
    ctx.audit
      ? async (batch) => {
          const audit = ctx.audit!;
          const events = batch.map(({ m, c }) => ({
              type: 'message.accepted',
              actor: m.sender,
              subject: m.subject,
              at: new Date(c.receivedAt),
              // `header` ties the entry to the signed header without revealing it (keyed hash).
              // Keys in canonical order: the leaf's canonical JSON is then one JSON.stringify.
              data: { ...(m.headerHash ? { header: m.headerHash } : {}), label: m.label, seq: c.seq },
          }));
          // Joined, not a savepoint: the writer fails the whole batch if this throws.
          const entries = (await audit.append(events, { join: true })) ?? [];
          entries.forEach((e, i) => {
            const b = batch[i];
            if (b) auditIndex.set(b.m.id, Number(e.seq));
          });
        }
      : undefined,
  );
  async function publish(
    batch: readonly { m: StagedMessage; c: Committed }[],
    withdrawn: (conversation: string, id: string) => boolean,
  ): Promise<void> {
    // Nobody connected: no members query and no views (it runs in the writer's serial chain).
    // Whoever connects later catches up from the vault (Last-Event-ID).
    if (hub.empty) return;
    const convIds = [...new Set(batch.map(({ m }) => m.conversation))];
    const muted = new Map<string, Map<string, boolean>>();
    // One query for the batch's conversations (the reader connection answers it), not one each.
    for (const part of chunks(convIds, 500)) {
      const rows = await ctx.db.all<{ conversation: string; login: string; muted: number }>(
        `SELECT conversation, login, muted FROM msg_members WHERE conversation IN (${sqlMarks(part.length)})`,
        part,
      );
      for (const r of rows) {
        let m = muted.get(r.conversation);
        if (!m) muted.set(r.conversation, (m = new Map()));
        m.set(r.login, r.muted === 1);
      }
    }
    for (const { m, c } of batch) {
      // Deleted since its commit (while the query above waited): its withdrawal is past, so it
      // would reach every listener. Checked here, synchronously with the publication.
      if (withdrawn(m.conversation, m.id)) continue;
      hub.publishMessage(c.seq, reading.viewOfStaged(m, c), {
        conversation: m.conversation,
        labelRank: m.labelRank,
        urgent: m.urgent,
        members: muted.get(m.conversation) ?? new Map(),
      });
    }
  }
  const takeIndex = (id: string): number | undefined => {
    const i = auditIndex.get(id);
    auditIndex.delete(id);
    return i;
  };
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> | undefined;
  const sweep = async (): Promise<{ retention: number; pendingFiles: number }> => {
    try {
      const retention = await sweepRetention(ctx);
      const pendingFiles = await files.sweepPendingFiles(ctx);
      return { retention, pendingFiles };
    } finally {
      // A reserve released for deletions comes back once the disk has room (space freed or added).
      await room.remake();
    }
  };

  return {
    config,
    async start() {
      // An upgraded appliance's first start may rebuild msg_messages (~20–50 s per million
      // messages each, bench/experiments/migration-cost.ts): say so before, and how long after.
      await parts.db.migrate(MESSAGING_MIGRATIONS, {
        onApply: (id, phase, ms) => ctx.log('messaging.migration', { migration: id, file: 'vault.db', phase, ms }),
      });
      // An upload cut off by a crash left a pending row with some chunks: destroy it before the
      // key sweep below, so its key goes too (issue 8, kill -9 mid-upload). On a disk too full for
      // that (no reserve to release) the appliance still starts, where deletions can free space:
      // the pending-upload sweep takes the cut upload once its TTL is past.
      await files.discardIncompleteUploads(ctx).catch((err: unknown) => {
        if ((err as { code?: unknown } | null)?.code !== 'VAULT_FULL') throw err;
        ctx.log('messaging.start-discard-deferred', errorFields(err));
      });
      // Digests of files uploaded before they were sealed (file-digest.ts): sealed now.
      const sealedDigests = await sealLegacyDigests(ctx);
      if (sealedDigests) ctx.log('messaging.file-digests-sealed', { count: sealedDigests });
      // Keys without rows (a crash between a deletion's row and key steps, or a refused batch)
      // are destroyed at start (ARCHITECTURE.md, write order), and keys stored before keys.db kept
      // seqs get theirs, so lookups by id find their rows (message-lookup.ts).
      const reconciled = await reconcileKeys(ctx.keys, parts.db);
      if (reconciled.placed || reconciled.orphans.length) {
        ctx.log('messaging.keys-reconciled', { placed: reconciled.placed, orphans: reconciled.orphans.length });
      }
      // …and conversation keys whose conversation is gone (a crash mid-destroy: rows committed, keys not).
      const convs = await parts.db.all<{ id: string }>('SELECT id FROM msg_conversations');
      await ctx.keys.sweepOrphanConversations(new Set(convs.map((c) => c.id)));
      // Pages of rows deleted just before a crash may still sit in the WAL or, zeroed only in the
      // WAL, in vault.db: a TRUNCATE checkpoint makes the on-disk state the deleted one. Nothing
      // else uses the database yet; if it cannot complete, the next deletion's checkpoint will.
      await parts.db.checkpointTruncate().catch((err: unknown) => ctx.log('messaging.start-checkpoint-failed', errorFields(err)));
      if (config.sweepIntervalMs > 0 && !timer) {
        timer = setInterval(() => {
          if (sweeping) return;
          sweeping = sweep()
            .catch((err: unknown) => ctx.log('messaging.sweep-failed', errorFields(err)))
            .finally(() => (sweeping = undefined));
        }, config.sweepIntervalMs);
        timer.unref();
      }
    },
    endLiveStreams() {
      hub.closeAll();
      for (const l of [...streamEndListeners]) l();
    },
    onEndStreams(listener) {
      streamEndListeners.add(listener);
      return () => void streamEndListeners.delete(listener);
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      hub.closeAll();
      await writer.close();
      await marks.close(); // delivery receipts of what was pushed: none lost at a graceful stop
      await sweeping;
      // One last try at what a deletion left (so a clean stop leaves nothing for the next start),
      // then no more timers.
      if (ctx.late.pending) await ctx.late.attempt();
      await ctx.late.close();
    },
    send: (p, input) => messages.acceptMessage(ctx, writer, p, input, takeIndex),
    sendMany: (p, inputs) => messages.acceptMessages(ctx, writer, p, inputs, takeIndex),
    sender: (p) => messages.orderedAcceptor(ctx, writer, p, takeIndex),
    message: (p, id) => reading.getMessage(ctx, p, id),
    history: (p, conv, opts) => reading.history(ctx, p, conv, opts),
    since: (p, after, limit) => reading.messagesSince(ctx, p, after, limit),
    highWater: () => highWater(parts.db),
    receipts: (p, id) => messageMarks.receipts(ctx, p, id),
    markRead: (p, conv, upTo) => messageMarks.markRead(ctx, p, conv, upTo),
    markDelivered: (p, conv, seq) => messageMarks.markDelivered(ctx, p.login, conv, seq),
    reportDelivered: (login, conv, seq) => marks.report(login, conv, seq),
    direct: (p, peer) => conversations.ensureDirect(ctx, p, peer),
    conversations: (p) => conversations.listConversations(ctx, p),
    conversation: (p, id) => conversations.conversationView(ctx, p, id),
    mute: (p, id, muted) => conversations.setMuted(ctx, p, id, muted),
    createGroup: (p, input) => groups.createGroup(ctx, p, input),
    groups: (p) => groups.listGroups(ctx, p),
    group: (p, name) => groups.getGroup(ctx, p, name),
    addMember: (p, name, input) => groups.addMember(ctx, p, name, input),
    removeMember: (p, name, login) => groups.removeMember(ctx, p, name, login),
    upload: (p, conv, body, length) => files.uploadFile(ctx, p, conv, body, length),
    download: (p, id) => files.downloadFile(ctx, p, id),
    discardUpload: (p, id) => files.discardUpload(ctx, p, id),
    deleteMessage: (p, id, req) => deletion.deleteMessage(ctx, p, id, req),
    deleteConversation: (p, id, req) => deletion.deleteConversation(ctx, p, id, req),
    deleteGroup: (p, name, req) => deletion.deleteGroup(ctx, p, name, req),
    deleteUserCorrespondence: (p, login, req) => deletion.deleteUserCorrespondence(ctx, p, login, req),
    sweep,
    subscribe: (p) => hub.subscribe(p.login, rank(messagesClearance(p))),
    flush: () => writer.drain(),
  };
}

function messagesClearance(p: Principal): Clearance {
  const c = (p.certificate as { clearance?: Clearance }).clearance;
  return c ?? p.clearance;
}

/**
 * The keyed hash for tombstones and audit subjects: HMAC-SHA-256 under the `audit-hmac` secret of
 * the vault keyring (created on first use), hex. Without the key, a target cannot be confirmed
 * by guessing ids or logins.
 */
export async function keyedHashFromKeyring(keyring: { ensureSecret(name: string): Promise<Uint8Array> }): Promise<KeyedHash> {
  // Shared with the login hash (auth/login-hash.ts): whichever asks first creates it.
  const raw = await keyring.ensureSecret('audit-hmac');
  const key = await webcrypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const enc = new TextEncoder();
  return async (data) => Buffer.from(await webcrypto.subtle.sign('HMAC', key, enc.encode(data))).toString('hex');
}
