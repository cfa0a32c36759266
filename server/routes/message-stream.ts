/**
 * `POST /v1/messages/stream` (API.md "Send stream"): one request that carries a sender's signed
 * messages as NDJSON lines for as long as the client keeps it open, and answers each line with one
 * line of its own, in the same order, as soon as that message is stored or refused.
 *
 * Why it exists: a request costs the server ~240 µs of CPU beside its messages (node's HTTP
 * machinery, the middleware, the answer; bench/README.md), so a client that wants each message
 * answered quickly had to choose between small requests (that cost) and batches (latency while a
 * batch fills and waits). A stream pays that once and keeps only a few messages of each client in
 * flight, the way an XMPP stream does.
 *
 * Every line is held to what `POST /v1/messages` holds a message to (the service's `sender`, so
 * each line is checked alone and stored in the order given). The request's checks (certificate,
 * session) ran once, at the start; after that the stream takes no further line once its session
 * is no longer valid: sessions ended elsewhere (logout, revocation, clearance change, a disabled
 * account, a revoked issuing CA) are announced by the store, and the session is asked again at
 * least every second while lines arrive and at the instant it would expire unless used (an idle
 * stream ends then).
 *
 * The response is `application/x-ndjson`: `{"n":i,"receipt":{…}}` or `{"n":i,"error":{code,
 * message,status}}` per line read (n counts from 0, blank lines not counted), then one last
 * `{"end":{lines,accepted,refused[,error]}}`. The `error` of the end says why the server stopped
 * reading early (the session, the time limit, a line over the limit, the server stopping): the
 * lines after the last answered one were not read, and nothing of them is stored. A stream without
 * its end line was cut: the lines without an answer may or may not be stored (as with any request
 * whose answer was lost). The connection closes with the stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import { z } from 'zod';
import { mapError } from '../errors.js';
import { errorFields } from '../log.js';
import { MessageAnswers, messageBodyLimitBytes, principalOf, type MessagingRouteDeps } from '../messaging/http.js';
import type { BatchOutcome, MessageInput } from '../messaging/messages.js';
import type { AppEnv } from '../middleware/types.js';
import { parseJsonText } from '../middleware/validate.js';
import { STREAMS_PER_USER } from '../config.js';
import { StreamSlots } from './stream-slots.js';

/** The body of `POST /v1/messages`, each item of a batch, and each line of a stream. */
export const SendBody = z
  .object({
    header: z.string().min(1).max(64 * 1024),
    signature: z.string().min(1).max(64 * 1024),
    body: z.string(),
  })
  .strict();

/** Tunables of the stream route (tests shorten them). */
export interface MessageStreamOptions {
  /** Lines read and not yet answered, at most (default 64): the client's window. */
  maxInFlight?: number;
  /**
   * A stream ends (end line `STREAM_TIME_LIMIT`) after this long (default 240 s): below the
   * listener's request timeout (300 s, tls.ts), which would cut it without an end line.
   */
  maxStreamMs?: number;
  /** The session is asked again at least this often while lines arrive (default 1 s). */
  recheckMs?: number;
  /** Send streams one account may hold at once (config `maxSendStreamsPerUser`). */
  maxPerUser?: number;
}

const NEWLINE = 0x0a;
const CR = 0x0d;

/** Why the server stopped reading: the end line's `error` (none when the client ended it). */
interface StopReason {
  code: string;
  message: string;
}

const CLIENT_GONE: StopReason = { code: 'CLIENT_GONE', message: 'the connection closed' };

/** What a stream needs from its request and route. */
interface StreamParts {
  incoming: IncomingMessage;
  out: ServerResponse;
  send: (input: MessageInput) => Promise<BatchOutcome>;
  /**
   * Asks the session again; rejects with the refusal. Resolves to how long it stays valid (ms).
   * `touch`: counts as use of the session (lines are waiting), as a request does.
   */
  resolveSession: (touch: boolean) => Promise<number>;
  /** How long the session stays valid unless used again, as the session middleware just answered. */
  validForMs: number;
  requestId: string;
  maxLine: number;
  maxInFlight: number;
  recheckMs: number;
  /** Answers each line's outcome and counts them for the end line and the access log. */
  answers: MessageAnswers;
}

/**
 * One open stream. Event-driven rather than a loop of awaits: at a few messages in flight per
 * client a read carries one to three lines, so whatever a read or a line costs beyond the message
 * itself is paid per message (bench/README.md, twenty-first session).
 *
 * Reading: each complete line is taken at once while there is room (window, bytes, the answer
 * socket not congested, the session not due for asking again); otherwise it waits in `#backlog`
 * and the request is paused, so TCP holds the client back. Answering: outcomes are put in line
 * order and everything answered within one tick goes out in one write.
 */
class LineStream {
  /** Lines taken (answered or in flight). */
  lines = 0;
  /** Set once the server stops reading; the end line's error (or none: the client ended it). */
  stopped: StopReason | undefined;
  /** Resolves when the end line is written (or the connection is gone). */
  readonly done: Promise<void>;
  #finish!: () => void;
  /** The session is to be asked again before the next line (an announcement). */
  #stale = false;
  /** When (performance.now()) the session must be asked again at the latest. */
  #dueAt: number;
  #asking = false;
  #clientEnded = false;
  /** No more bytes are read (a line over the limit): stop with this once the backlog is taken. */
  #stopWhenTaken: StopReason | undefined;
  #finished = false;
  #backlog: Buffer[] = [];
  #partial: Buffer[] = [];
  #partialBytes = 0;
  #inFlightBytes = 0;
  /** Answers not yet written, in line order from line `#written`; undefined while in flight. */
  #pending: (string | undefined)[] = [];
  #written = 0;
  #outBuf = '';
  #flushQueued = false;
  /** Asks the session again at the instant it would expire unless used: an idle stream ends then. */
  #expiry: NodeJS.Timeout | undefined;

  constructor(readonly p: StreamParts) {
    this.#dueAt = performance.now() + p.recheckMs;
    this.done = new Promise<void>((r) => (this.#finish = r));
    const { incoming, out } = p;
    incoming.on('data', (chunk: Buffer) => this.#read(chunk));
    incoming.on('end', () => {
      this.#clientEnded = true;
      if (this.#partialBytes > 0 && !this.stopped && !this.#stopWhenTaken) this.#backlog.push(this.#takePartial());
      this.#pump();
    });
    incoming.on('error', () => this.stop(CLIENT_GONE));
    out.on('close', () => this.stop(CLIENT_GONE));
    out.on('drain', () => this.#pump());
    this.#armExpiry(p.validForMs);
  }

  /**
   * One timer per stream, re-armed at each answer of the store (at most about once a second while
   * lines arrive): when it fires the session is looked at (not used), and a stream whose session
   * idled out or reached its end stops then rather than at its next line.
   */
  #armExpiry(validForMs: number): void {
    if (this.#expiry) clearTimeout(this.#expiry);
    // Never 0: a store whose clock lags the timers answers "valid for 0.3 ms more" (no busy loop).
    const delay = Math.min(2 ** 31 - 1, Math.max(1, Math.ceil(validForMs)));
    this.#expiry = setTimeout(() => {
      this.#expiry = undefined;
      if (!this.stopped && !this.#asking) this.#ask(false);
    }, delay).unref();
  }

  /** Stops reading (idempotent); the end line follows once what was taken is answered. */
  stop(reason: StopReason): void {
    if (this.stopped) return;
    this.stopped = reason;
    if (this.#expiry) clearTimeout(this.#expiry);
    this.#expiry = undefined;
    this.#backlog.length = 0;
    this.#partial = [];
    this.#partialBytes = 0;
    this.p.incoming.pause();
    this.#maybeFinish();
  }

  /** Sessions ended somewhere: ask again before the next line — now, if the stream is idle. */
  sessionsEnded(): void {
    this.#stale = true;
    this.#pump();
    // Idle: only a look, so that the announcement does not itself extend the session.
    if (!this.stopped && !this.#asking && this.#backlog.length === 0) this.#ask(false);
  }

  #read(chunk: Buffer): void {
    if (this.stopped || this.#stopWhenTaken) return;
    let from = 0;
    const max = this.p.maxLine;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, from)) {
      if (this.#partialBytes + nl - from > max) return this.#tooLarge();
      const piece = chunk.subarray(from, nl);
      from = nl + 1;
      this.#backlog.push(this.#partialBytes > 0 ? this.#takePartial(piece) : piece);
    }
    if (from < chunk.length) {
      this.#partialBytes += chunk.length - from;
      if (this.#partialBytes > max) return this.#tooLarge();
      this.#partial.push(chunk.subarray(from));
    }
    this.#pump();
  }

  /** The partial line, completed by `piece`. */
  #takePartial(piece?: Buffer): Buffer {
    const line = Buffer.concat(piece ? [...this.#partial, piece] : this.#partial);
    this.#partial = [];
    this.#partialBytes = 0;
    return line;
  }

  /**
   * A line over the limit: nothing after it is read. The lines before it are taken as any others
   * (window, session), then the stream stops with BODY_TOO_LARGE.
   */
  #tooLarge(): void {
    this.#partial = [];
    this.#partialBytes = 0;
    this.#stopWhenTaken = {
      code: 'BODY_TOO_LARGE',
      message: `a line is over the limit of ${this.p.maxLine} bytes; the stream stopped reading there`,
    };
    this.#pump();
  }

  /** Takes backlog lines while there is room; pauses the request when there is none. */
  #pump(): void {
    const { out, incoming, maxInFlight, maxLine } = this.p;
    while (!this.stopped && this.#backlog.length > 0) {
      if (this.#asking) return;
      if (this.#stale || performance.now() >= this.#dueAt) return this.#ask(true);
      const line = this.#backlog[0]!;
      const inFlight = this.#pending.length;
      if (inFlight >= maxInFlight || (inFlight > 0 && this.#inFlightBytes + line.length > maxLine) || out.writableNeedDrain) {
        incoming.pause();
        return;
      }
      this.#backlog.shift();
      this.#take(line);
    }
    if (!this.stopped && this.#backlog.length === 0) {
      if (this.#stopWhenTaken) this.stop(this.#stopWhenTaken);
      else if (this.#clientEnded) this.#maybeFinish();
      else incoming.resume();
    }
  }

  /** Asks the session again; a refusal stops the stream with its code. */
  #ask(touch: boolean): void {
    this.#asking = true;
    this.#stale = false;
    this.p.incoming.pause();
    const asked = performance.now();
    this.p.resolveSession(touch).then(
      (validForMs) => {
        this.#asking = false;
        this.#dueAt = asked + Math.min(this.p.recheckMs, validForMs);
        this.#armExpiry(validForMs);
        this.#pump();
      },
      (err: unknown) => {
        this.#asking = false;
        const { body } = mapError(err, this.p.requestId);
        this.stop({ code: body.error.code, message: body.error.message });
      },
    );
  }

  #take(line: Buffer): void {
    const bytes = line.length;
    const end = bytes > 0 && line[bytes - 1] === CR ? bytes - 1 : bytes;
    if (end === 0) return; // a blank line is no line
    const n = this.lines++;
    let outcome: Promise<BatchOutcome>;
    try {
      outcome = this.p.send(parseLine(end === line.length ? line : line.subarray(0, end)));
    } catch (error) {
      outcome = Promise.resolve({ ok: false, error });
    }
    this.#inFlightBytes += bytes;
    this.#pending.push(undefined);
    outcome.then(
      (o) => this.#answer(n, bytes, o),
      (error: unknown) => this.#answer(n, bytes, { ok: false, error }),
    );
  }

  #answer(n: number, bytes: number, o: BatchOutcome): void {
    this.#inFlightBytes -= bytes;
    const text = `${JSON.stringify({ n, ...this.p.answers.answer(o) })}\n`;
    const pending = this.#pending;
    pending[n - this.#written] = text;
    let ready = 0;
    while (ready < pending.length && pending[ready] !== undefined) this.#outBuf += pending[ready++];
    if (ready > 0) {
      pending.splice(0, ready);
      this.#written += ready;
      this.#queueFlush();
    }
    this.#pump();
    this.#maybeFinish();
  }

  /** Everything answered within this tick goes out in one write. */
  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    process.nextTick(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#outBuf.length === 0 || this.p.out.destroyed) return;
    this.p.out.write(this.#outBuf);
    this.#outBuf = '';
  }

  /** Once nothing more will be read and everything taken is answered: the end line, the end. */
  #maybeFinish(): void {
    if (this.#finished || this.#pending.length > 0) return;
    if (!this.stopped && !(this.#clientEnded && this.#backlog.length === 0 && !this.#asking)) return;
    this.#finished = true;
    if (this.#expiry) clearTimeout(this.#expiry);
    this.#expiry = undefined;
    const out = this.p.out;
    if (!out.destroyed) {
      const stopped = this.stopped;
      const error = stopped && stopped !== CLIENT_GONE ? { error: stopped } : {};
      const { accepted, refused } = this.p.answers;
      this.#outBuf += `${JSON.stringify({ end: { lines: this.lines, accepted, refused, ...error } })}\n`;
      this.#flush();
      out.end();
    }
    this.#finish();
  }
}

/**
 * The handler of `POST /stream`, and the route-wide listeners (session announcements, the server
 * stopping) that reach its open streams.
 */
export function messageStreamHandler(deps: MessagingRouteDeps, opts: MessageStreamOptions = {}) {
  const maxInFlight = opts.maxInFlight ?? 64;
  const maxStreamMs = opts.maxStreamMs ?? 240_000;
  const recheckMs = opts.recheckMs ?? 1000;
  const open = new Set<LineStream>();
  const slots = new StreamSlots(opts.maxPerUser ?? STREAMS_PER_USER.send, 'send streams');
  deps.appliance.sessions.onSessionsEnded(() => {
    for (const s of open) s.sessionsEnded();
  });
  let stopListening: (() => void) | undefined;
  /** Subscribed on first use: the service may be built after the routes are mounted. */
  const listenForStop = (): void => {
    stopListening ??= deps.messaging.onEndStreams(() => {
      for (const s of open) s.stop({ code: 'UNAVAILABLE', message: 'the appliance is shutting down; open a new stream once it is back' });
    });
  };

  return async function messageStream(c: Context<AppEnv>): Promise<Response> {
    listenForStop();
    const log = c.get('log');
    const requestId = c.get('requestId') ?? 'none';
    const token = /^Bearer (\S+)$/.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
    const fingerprint = c.get('clientCert').fingerprint;
    const out: ServerResponse = c.env.outgoing;
    // Before anything is written: over the cap is an ordinary error answer.
    const release = slots.take(principalOf(c).login);
    try {
      return await serveStream(c, out, requestId, token, fingerprint, log);
    } finally {
      release();
    }
  };

  async function serveStream(
    c: Context<AppEnv>,
    out: ServerResponse,
    requestId: string,
    token: string,
    fingerprint: string,
    log: AppEnv['Variables']['log'],
  ): Promise<Response> {
    const svc = deps.messaging;
    out.writeHead(200, {
      'Content-Type': 'application/x-ndjson',
      'Cache-Control': 'no-store',
      Connection: 'close',
      'X-Request-Id': requestId,
    });
    out.flushHeaders();
    const s = new LineStream({
      incoming: c.env.incoming,
      out,
      send: svc.sender(principalOf(c)),
      validForMs: c.get('principal').session.validForMs,
      resolveSession: (touch) => deps.appliance.sessions.resolve(token, fingerprint, { touch }).then((session) => session.validForMs),
      requestId,
      maxLine: messageBodyLimitBytes(svc.config),
      maxInFlight,
      recheckMs,
      answers: new MessageAnswers(requestId, (err) => log.error('internal error', { path: c.req.path, ...errorFields(err) })),
    });
    open.add(s);
    const timeLimit = setTimeout(() => s.stop({ code: 'STREAM_TIME_LIMIT', message: `a stream lasts at most ${maxStreamMs / 1000} s; open a new one` }), maxStreamMs).unref();
    await s.done;
    clearTimeout(timeLimit);
    open.delete(s);
    c.set('accessLogFields', { ...s.p.answers.logFields(), ...(s.stopped ? { reason: s.stopped.code } : {}) });
    // Returned once the socket is gone: with the rest of an unread body it cannot be reused, and
    // nothing else may answer on it (the shell's unread-body middleware).
    if (!out.socket?.destroyed && !out.destroyed) await new Promise<void>((r) => out.once('close', () => r()));
    return RESPONSE_ALREADY_SENT;
  }
}

/** A line's JSON against the message schema; throws BadRequestError (answered for that line only). */
function parseLine(line: Buffer): MessageInput {
  return parseJsonText(line.toString('utf8'), SendBody, 'line');
}
