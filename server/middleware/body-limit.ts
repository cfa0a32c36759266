/**
 * Request body limit: hono's `bodyLimit`, answering 413 BODY_TOO_LARGE in the error model's body
 * (it counts streamed bodies too, not only Content-Length).
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
  return honoBodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new BodyTooLargeError(maxBytes);
    },
  });
}
