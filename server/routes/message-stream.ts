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
import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import { z } from 'zod';
import { errorFields } from '../log.js';
import { MessageAnswers, messageBodyLimitBytes, principalOf, type MessagingRouteDeps } from '../messaging/http.js';
import type { MessageInput } from '../messaging/messages.js';
import type { AppEnv } from '../middleware/types.js';
import { parseJsonText } from '../middleware/validate.js';
import { STREAMS_PER_USER } from '../config.js';
import { LineStream } from './send-line-stream.js';
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
    const send = svc.sender(principalOf(c));
    const s = new LineStream({
      incoming: c.env.incoming,
      out,
      send: (line) => send(parseLine(line)),
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
