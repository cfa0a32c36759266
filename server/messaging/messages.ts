/**
 * Accepting signed messages (issue 4, "Messages"): one message, a batch of one sender's, or a
 * sender's stream, each checked on its own and entering the batching writer in the order given,
 * and the receipt each answers. Reading is message-reading.ts; delivery and read marks and a
 * message's receipts message-marks.ts.
 *
 * Acceptance pipeline, cheapest checks first so garbage costs little: schema + canonical form of
 * the header → sender is the session's login → sentAt within the skew → body size, body and
 * signature base64 → membership and labels (cached) → in one hop to a worker thread (ctx.check,
 * check-pool.ts): the CMS signature against the session's TLS certificate (already validated by
 * the shell per request, so the chain is not validated again here), the body's SHA-384 and the
 * keyed hashes (all of these: message-checks.ts) → the batching writer. Each failure is one typed
 * error.
 */
import type { Ctx } from './context.js';
import { headerHashInput } from './check-protocol.js';
import { checkMessage } from './message-checks.js';
import type { Principal } from './ports.js';
import type { BatchWriter, Committed, StagedMessage } from './writer.js';

/** What a client posts: the header exactly as signed, the detached CMS signature and the body (base64). */
export interface MessageInput {
  header: string;
  signature: string;
  body: string;
}

/** The acceptance receipt (API.md). */
export interface Receipt {
  id: string;
  seq: number;
  conversation: string;
  serverTime: string;
  audit?: { index: number };
}

/**
 * Verifies and stores one message. Rejects with the messaging error naming the first rule broken.
 * Not async, for the reason {@link checkMessage} gives.
 */
export function acceptMessage(
  ctx: Ctx,
  writer: BatchWriter,
  p: Principal,
  input: MessageInput,
  auditIndex: (id: string) => number | undefined,
): Promise<Receipt> {
  return checkMessage(ctx, p, input)
    .then((staged) => writer.submit(staged))
    .then((c) => receiptOf(c, auditIndex));
}

/** One message of a batch: its receipt, or the error that refused it alone. */
export type BatchOutcome = { ok: true; receipt: Receipt } | { ok: false; error: unknown };

/**
 * Verifies and stores several messages of one sender (`POST /v1/messages/batch`): each is checked
 * and refused on its own, exactly as {@link acceptMessage} would, and the ones that pass enter the
 * writer in the caller's order, all in one turn — so messages to one conversation get ascending
 * sequence numbers in that order, and usually share one vault transaction.
 *
 * Not async, for the reason {@link checkMessage} gives: `inputs` is the batch's text.
 */
export function acceptMessages(
  ctx: Ctx,
  writer: BatchWriter,
  p: Principal,
  inputs: readonly MessageInput[],
  auditIndex: (id: string) => number | undefined,
): Promise<BatchOutcome[]> {
  return commitChecked(writer, inputs.map((input) => checkMessage(ctx, p, input)), auditIndex);
}

/**
 * Verifies and stores a sender's messages one at a time as they arrive (`POST /v1/messages/stream`):
 * each is checked alongside those still in flight and refused on its own, exactly as
 * {@link acceptMessage} would, but enters the writer only after every earlier one has entered it
 * or been refused — so messages to one conversation get ascending sequence numbers in the order
 * given, as in a batch, although their checks finish in any order.
 *
 * The returned function is not async, for the reason {@link checkMessage} gives.
 */
export function orderedAcceptor(
  ctx: Ctx,
  writer: BatchWriter,
  p: Principal,
  auditIndex: (id: string) => number | undefined,
): (input: MessageInput) => Promise<BatchOutcome> {
  /** Settles once the previous message entered the writer or was refused; never rejects. */
  let turn: Promise<unknown> = Promise.resolve();
  return (input) => {
    const check = checkMessage(ctx, p, input);
    // Its refusal is read only once the messages before it are through: marked handled now, or
    // node would call it unhandled (and stop the process) meanwhile.
    check.catch(() => undefined);
    // The commit is wrapped so that `turn` settles at submission, not at the commit it awaits.
    const submitted = turn.then(() => check).then(
      (staged) => ({ committed: writer.submit(staged) }),
      (error: unknown) => ({ error }),
    );
    turn = submitted;
    return submitted.then((s): BatchOutcome | Promise<BatchOutcome> =>
      'error' in s
        ? { ok: false, error: s.error }
        : s.committed.then(
            (c): BatchOutcome => ({ ok: true, receipt: receiptOf(c, auditIndex) }),
            (error: unknown): BatchOutcome => ({ ok: false, error }),
          ),
    );
  };
}

async function commitChecked(writer: BatchWriter, checks: Promise<StagedMessage>[], auditIndex: (id: string) => number | undefined): Promise<BatchOutcome[]> {
  const checked = await Promise.allSettled(checks);
  const committed = await Promise.allSettled(
    checked.map((c) => (c.status === 'fulfilled' ? writer.submit(c.value) : Promise.reject(c.reason as Error))),
  );
  return committed.map((c) => (c.status === 'fulfilled' ? { ok: true, receipt: receiptOf(c.value, auditIndex) } : { ok: false, error: c.reason }));
}

function receiptOf(c: Committed, auditIndex: (id: string) => number | undefined): Receipt {
  const index = auditIndex(c.id);
  return {
    id: c.id,
    seq: c.seq,
    conversation: c.conversation,
    serverTime: c.receivedAt,
    ...(index !== undefined ? { audit: { index } } : {}),
  };
}

/** The audit trail's keyed hash of a signed header's digest (content-free; see server/audit/README.md). */
export function headerAuditHash(ctx: Pick<Ctx, 'keyedHash'>, digest: Uint8Array): Promise<string> {
  return ctx.keyedHash(headerHashInput(digest));
}
