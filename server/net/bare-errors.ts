/**
 * Answers for requests that never reach the Hono app, in the error model's JSON: Node's HTTP
 * parser refusing a request (a malformed header line, headers too large, headers too slow) and
 * the adapter failing to build a Request (no or a malformed Host, `OPTIONS *`). Node and
 * @hono/node-server answer those with a bare status and no body; a client of this API expects
 * `{"error":{"code","message","requestId"}}` on every 4xx, and the log a line saying what came.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';

/** Node's parser error codes and what we answer for them; anything else is 400. */
const PARSER_ANSWERS: Readonly<Record<string, { status: number; reason: string; code: string; message: string }>> = {
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', code: 'HEADERS_TOO_LARGE', message: 'the request headers are too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: 'Request Timeout', code: 'REQUEST_TIMEOUT', message: 'the request did not arrive in time' },
};
const BAD = { status: 400, reason: 'Bad Request', code: 'BAD_REQUEST', message: 'the request is not valid HTTP' };

function body(code: string, message: string, requestId: string): string {
  return JSON.stringify({ error: { code, message, requestId } });
}

/**
 * The listener's `clientError` handler: writes the JSON answer and destroys the connection. Once
 * a response has begun on the socket, or the peer is gone, it only closes (as Node's own does).
 */
export function answerClientError(log: Logger): (err: Error & { code?: string }, socket: Socket) => void {
  return (err, socket) => {
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight) {
      socket.destroy();
      return;
    }
    const a = PARSER_ANSWERS[err.code ?? ''] ?? BAD;
    const requestId = randomBytes(9).toString('base64url');
    const text = body(a.code, a.message, requestId);
    log.info('request refused by the HTTP parser', { requestId, status: a.status, errorCode: err.code ?? err.message });
    // Closed once the answer is out, whatever the peer does: a slow client that never reads or
    // closes must not keep the socket (Node's own handler destroys it too).
    socket.end(
      `HTTP/1.1 ${a.status} ${a.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n` +
        `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${text}`,
      () => socket.destroy(),
    );
    setTimeout(() => socket.destroy(), 1000).unref();
  };
}

/**
 * The adapter's `errorHandler`: a request it could not turn into a `Request` (the Host header
 * or the request target) is the client's fault, 400; the app's own errors never come here (its
 * onError answers them), so anything else is logged and answered 500 in the same shape.
 */
export function answerAdapterError(log: Logger): (err: unknown) => Response {
  return (err) => {
    const requestId = randomBytes(9).toString('base64url');
    const clientFault = err instanceof Error && err.name === 'RequestError';
    log[clientFault ? 'info' : 'error']('request refused before routing', { requestId, errorCode: err instanceof Error ? err.message : String(err) });
    const [status, code, message] = clientFault
      ? [400, 'BAD_REQUEST', 'the request target or Host header is not valid']
      : [500, 'INTERNAL', 'internal error; see the server log'];
    return new Response(body(code, message, requestId), { status, headers: { 'Content-Type': 'application/json', 'X-Request-Id': requestId } });
  };
}

/**
 * HTTP/1.1 requires a Host header (RFC 9112 §3.2). Node's own check answers a bare 400, and the
 * adapter, with Node's check off, would quietly use the listen address: refused here in JSON.
 */
export function requireHost(
  log: Logger,
  next: (req: IncomingMessage, res: ServerResponse) => unknown,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.headers.host !== undefined || req.httpVersion === '1.0') {
      void next(req, res);
      return;
    }
    const requestId = randomBytes(9).toString('base64url');
    log.info('request refused before routing', { requestId, errorCode: 'no Host header' });
    const text = body('BAD_REQUEST', 'the request has no Host header', requestId);
    res.writeHead(400, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'X-Request-Id': requestId, Connection: 'close' });
    res.end(text);
  };
}
