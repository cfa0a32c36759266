/**
 * One open send stream (`POST /v1/messages/stream`, message-stream.ts): the NDJSON lines it reads,
 * the window of lines in flight, the session asked again as it goes, and the answers written back
 * in line order, then the end line. The route (message-stream.ts) builds one per request and
 * hands it the request, the response and the sender; this file knows nothing of Hono.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mapError } from '../errors.js';
import type { MessageAnswers } from '../messaging/http.js';
import type { BatchOutcome } from '../messaging/messages.js';

const NEWLINE = 0x0a;
const CR = 0x0d;

/** Why the server stopped reading: the end line's `error` (none when the client ended it). */
export interface StopReason {
  code: string;
  message: string;
}

export const CLIENT_GONE: StopReason = { code: 'CLIENT_GONE', message: 'the connection closed' };

/** What a stream needs from its request and route. */
export interface StreamParts {
  incoming: IncomingMessage;
  out: ServerResponse;
  /**
   * Parses one line (without its line end) and sends its message; throws a line's refusal (bad
   * JSON, the wrong shape) at once, which is answered for that line only.
   */
  send: (line: Buffer) => Promise<BatchOutcome>;
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
export class LineStream {
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
      outcome = this.p.send(end === line.length ? line : line.subarray(0, end));
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
