/**
 * What happens to the rest of a request body the answer did not need — an upload refused up front
 * (its conversation is gone, the vault is full), a body over the limit.
 *
 * That rest is still on the wire. If the server answered and then dropped the socket, a
 * keep-alive client would send its next request into it and meet a reset, or lose the answer
 * itself to the reset (found by the disk-full fault test, once sessions came from memory and a
 * 507 went out before the upload's 2 MiB had). So the rest is read and discarded first, within
 * bounds, and the connection stays usable; past the bounds (a huge or a slow body) the answer
 * says `Connection: close` (RFC 9112 §9.6) and the server closes once it is sent.
 */
import type { IncomingMessage } from 'node:http';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './types.js';

/** Bounds of the discarding: a 100 MiB upload on the LAN fits; a slowloris body does not. */
export interface UnreadBodyLimits {
  maxBytes: number;
  maxMs: number;
}

const DEFAULT_LIMITS: UnreadBodyLimits = { maxBytes: 128 * 1024 * 1024, maxMs: 2000 };

/** Reads `body` to its end unless it exceeds the bounds; true if it ended. */
async function discard(body: ReadableStream<Uint8Array>, limits: UnreadBodyLimits): Promise<boolean> {
  const reader = body.getReader();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), limits.maxMs)));
  let bytes = 0;
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), late]);
      if (r === 'late') return false;
      if (r.done) return true;
      bytes += r.value.byteLength;
      if (bytes > limits.maxBytes) return false;
    }
  } catch {
    return false; // the client went away: nothing to keep alive
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
}

/** Middleware factory; mount it first so it sees the final answer, errors included. */
export function unreadBody(limits: UnreadBodyLimits = DEFAULT_LIMITS): MiddlewareHandler<AppEnv> {
  return async function unreadBodyMiddleware(c, next) {
    await next();
    // `complete` turns true once the parser has taken in the whole message, read or not.
    const incoming: IncomingMessage | undefined = c.env?.incoming;
    if (!incoming || incoming.complete) return;
    const declared = Number(incoming.headers['content-length'] ?? NaN);
    const body = c.req.raw.body;
    const drained = !(declared > limits.maxBytes) && body !== null && !body.locked && (await discard(body, limits));
    if (!drained) c.res.headers.set('connection', 'close');
  };
}
