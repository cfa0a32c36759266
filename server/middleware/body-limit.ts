/**
 * Request body limit, answering 413 BODY_TOO_LARGE in the error model's body. A declared
 * Content-Length is checked from the header alone: Node's parser reads exactly that many bytes and
 * no more. A chunked body is counted while it streams, by hono's `bodyLimit`.
 *
 * Why not hono's `bodyLimit` for everything: its first step reads `c.req.raw.body`, which makes
 * @hono/node-server build a WHATWG Request and ReadableStream for every request, and the route's
 * JSON then travels through web streams instead of the direct read (~10 % of the main thread per
 * message in bench/messages, perf).
 */
import type { MiddlewareHandler } from 'hono';
import { bodyLimit as honoBodyLimit } from 'hono/body-limit';
import { BodyTooLargeError } from '../errors.js';
import type { AppEnv } from './types.js';

/**
 * Body-limit middleware factory.
 * @param maxBytes largest accepted body; validated here, at start-up.
 * @throws RangeError if `maxBytes` is not a positive integer.
 */
export function bodyLimit(maxBytes: number): MiddlewareHandler<AppEnv> {
  if (!Number.isInteger(maxBytes) || maxBytes <= 0) throw new RangeError(`bodyLimit: expected a positive integer, got ${maxBytes}`);
  const tooLarge = (): never => {
    throw new BodyTooLargeError(maxBytes);
  };
  const streamed = honoBodyLimit({ maxSize: maxBytes, onError: tooLarge });
  return async function bodyLimitMiddleware(c, next) {
    if (c.req.header('transfer-encoding') !== undefined) return streamed(c, next);
    const declared = c.req.header('content-length');
    if (declared === undefined) {
      // From Node's HTTP server, neither header means no body (RFC 9112 §6.3). A Request made
      // in-process (app.request) may carry one without either: count it.
      if ((c.env as { incoming?: unknown } | undefined)?.incoming === undefined) return streamed(c, next);
    } else if (Number(declared) > maxBytes) tooLarge();
    await next();
  };
}
