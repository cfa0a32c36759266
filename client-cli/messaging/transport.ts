/**
 * Streaming HTTPS for what the JSON client (`../http.ts`) does not do: file uploads and downloads
 * that never hold a whole file in memory, and the long-lived Server-Sent Events stream. Same TLS
 * rules as `../http.ts`: TLS 1.3 only, the profile's certificate presented, the server checked
 * against the pinned CA only; transport errors are mapped by its `mapTransportError`.
 */
import { createHash } from 'node:crypto';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import { BadResponseError, InputFileError, ServerError } from '../errors.js';
import { mapTransportError } from '../http.js';
import type { Runtime } from '../runtime.js';
import { DiscardedSchema, UploadedSchema } from './api.js';
import { DownloadMismatchError, UploadMismatchError } from './errors.js';
import { createPartial, DownloadInterruptedError } from './partial-file.js';
import { abortReason } from '../interruptible.js';
import { OutputFileError } from '../output-file.js';

/** Where and as whom to connect: the profile's server, pin, certificate, key and session token. */
export interface Endpoint {
  baseUrl: string;
  caPem: string;
  certPem: string;
  keyPem: string;
  token: string;
}

/** The profile's endpoint with the current session (NotLoggedInError without one). */
export async function endpointOf(rt: Runtime): Promise<Endpoint> {
  const config = await rt.config();
  const session = await rt.requireSession();
  const creds = await rt.unlock();
  return {
    baseUrl: config.server,
    caPem: await rt.profile.read('ca'),
    certPem: creds.certPem.trimEnd() + '\n' + creds.chainPem,
    keyPem: creds.tlsKeyPem,
    token: session.token,
  };
}

function options(ep: Endpoint, method: string, headers: Record<string, string>, timeoutMs: number, signal?: AbortSignal): RequestOptions {
  return {
    signal,
    method,
    headers: { authorization: `Bearer ${ep.token}`, ...headers },
    ca: ep.caPem,
    cert: ep.certPem,
    key: ep.keyPem,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    rejectUnauthorized: true,
    agent: false,
    timeout: timeoutMs,
  };
}

/** An error answer is one small JSON object; a longer one is not read to its end. */
const MAX_ERROR_ANSWER_BYTES = 64 * 1024;

/** Reads an error answer into a ServerError (or BadResponseError). */
async function errorOf(res: IncomingMessage): Promise<Error> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res) {
    size += (c as Buffer).length;
    if (size > MAX_ERROR_ANSWER_BYTES) {
      res.destroy();
      return new BadResponseError(`HTTP ${res.statusCode} with an error answer over ${MAX_ERROR_ANSWER_BYTES} bytes`);
    }
    chunks.push(c as Buffer);
  }
  try {
    const e = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: unknown; message?: unknown; requestId?: unknown } }).error;
    if (e && typeof e.code === 'string') {
      return new ServerError(e.code, typeof e.message === 'string' ? e.message : e.code, res.statusCode ?? 0, typeof e.requestId === 'string' ? e.requestId : undefined);
    }
  } catch {
    // fall through
  }
  return new BadResponseError(`HTTP ${res.statusCode} without an error code`);
}

/**
 * Sends one request and resolves with the response once its head arrived. A 4xx/5xx answer is
 * read and rejected as ServerError. `body` is piped in (a stream is never buffered whole).
 */
export function open(
  ep: Endpoint,
  method: string,
  path: string,
  o: { headers?: Record<string, string>; body?: NodeJS.ReadableStream; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<IncomingMessage> {
  const url = new URL(path, ep.baseUrl);
  return new Promise((resolve, reject) => {
    let req;
    try {
      req = httpsRequest(url, options(ep, method, o.headers ?? {}, o.timeoutMs ?? 30_000, o.signal), (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(res);
        errorOf(res).then(reject, reject);
      });
    } catch (err) {
      reject(mapTransportError(ep.baseUrl, err));
      return;
    }
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => reject(mapTransportError(ep.baseUrl, err)));
    if (o.body) {
      o.body.on('error', (err) => req.destroy(err as Error));
      o.body.pipe(req);
    } else req.end();
  });
}

/** The file being uploaded ended before the size announced for it. */
class FileShrankError extends Error {
  constructor(read: number, announced: number) {
    super(`it shrank while being sent: ${read} of ${announced} bytes`);
  }
}

/**
 * A pass-through that hashes (SHA-384) and counts what flows, reporting progress. With `expected`,
 * fewer bytes than that is an error at the end: a request announcing more than it sends would
 * leave the server waiting for the rest.
 */
function hashing(onBytes: (done: number) => void, expected?: number): Transform & { digest(): string; bytes(): number } {
  const hash = createHash('sha384');
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      n += chunk.length;
      onBytes(n);
      cb(null, chunk);
    },
    flush(cb) {
      cb(expected !== undefined && n < expected ? new FileShrankError(n, expected) : null);
    },
  });
  // Incremental hashing has no WebCrypto form; it runs on chunks as they stream in this
  // one-user CLI process, never on the server's message path.
  return Object.assign(t, { digest: () => hash.digest('base64'), bytes: () => n });
}

/**
 * Streams `file` (of `size` bytes) to POST /v1/files?conversation=ID, hashing it on the way.
 * When `signal` aborts, the request is cut: the appliance discards an upload that did not complete.
 * @throws UploadMismatchError when the server stored another digest or size than was read.
 */
export async function uploadFile(
  ep: Endpoint,
  conversation: string,
  file: string,
  size: number,
  onBytes: (done: number) => void = () => {},
  signal?: AbortSignal,
) {
  let readError: unknown;
  const tap = hashing(onBytes, size);
  tap.on('error', (err) => {
    if (err instanceof FileShrankError) readError = err;
  });
  // Opened before anything is sent: a file that went away or cannot be read since it was looked
  // at is one clear error, not an unhandled stream error.
  let handle: FileHandle | undefined;
  try {
    handle = await openFile(file, 'r');
  } catch (cause) {
    throw new InputFileError(file, 'a readable file', { cause });
  }
  // Exactly the `size` bytes announced, even if the file grows meanwhile (and an error if it
  // shrank); the digest is of what was sent.
  const read = size === 0 ? Readable.from([]) : handle.createReadStream({ start: 0, end: size - 1 });
  // `pipe` passes no error on: a failed read ends the request through the hashing stream.
  read.on('error', (err: Error) => {
    readError = err;
    tap.destroy(err);
  });
  let res: IncomingMessage;
  try {
    res = await open(ep, 'POST', `/v1/files?conversation=${encodeURIComponent(conversation)}`, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: read.pipe(tap),
      timeoutMs: 300_000,
      signal,
    });
  } catch (err) {
    if (readError instanceof FileShrankError) throw new InputFileError(file, `a file that keeps its size while it is sent (${readError.message})`);
    if (readError !== undefined) throw new InputFileError(file, 'a readable file', { cause: readError });
    throw err;
  } finally {
    // The read stream closes the handle when it ends; this one is for the paths where it did not.
    await handle.close().catch(() => undefined);
  }
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const parsed = UploadedSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
  if (!parsed.success) throw new BadResponseError('POST /v1/files: no {fileId, sha384, size}');
  const sha384 = tap.digest();
  if (parsed.data.sha384 !== sha384 || parsed.data.size !== tap.bytes() || tap.bytes() !== size) {
    // Stored, but not what was read: no message will name it, so it would only hold the cap.
    await discardUploads(ep, [parsed.data.fileId]);
    throw new UploadMismatchError(file, `read ${tap.bytes()} bytes, server stored ${parsed.data.size}`);
  }
  return { ...parsed.data, sha384 };
}

/** How long one discard may take: it runs after a failure the user is waiting to be told of. */
const DISCARD_TIMEOUT_MS = 10_000;

/**
 * Discards the user's pending uploads (`DELETE /v1/files/:id`), all at once, so a send that
 * failed after uploading gives back the room they hold in the appliance's cap on pending uploads
 * now rather than when they expire. Best effort: never throws (an upload a discard misses still
 * expires on the appliance); answers the ids that were discarded.
 */
export async function discardUploads(ep: Endpoint, fileIds: readonly string[]): Promise<string[]> {
  const one = async (id: string): Promise<string> => {
    const res = await open(ep, 'DELETE', `/v1/files/${encodeURIComponent(id)}`, { timeoutMs: DISCARD_TIMEOUT_MS });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return DiscardedSchema.parse(JSON.parse(Buffer.concat(chunks).toString('utf8'))).id;
  };
  const results = await Promise.allSettled(fileIds.map(one));
  return results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
}

/** A failure of the file system calls that write and flush a file (not of a socket's read). */
function isFileWriteError(err: unknown): boolean {
  const syscall = (err as { syscall?: unknown } | null)?.syscall;
  return syscall === 'write' || syscall === 'fsync' || syscall === 'close';
}

/**
 * Streams GET /v1/files/:id into a hidden partial file beside `out`, checks SHA-384 and size
 * against the signed header, and only then puts it at `out` (created; replaced only with `force`,
 * and then only by a verified file). On any failure, or when `signal` aborts (its reason, e.g.
 * 'SIGINT', is named in the error), the partial file is removed and `out` is as it was.
 * @throws OutputExistsError, DownloadMismatchError, DownloadInterruptedError, ServerError
 */
export async function downloadFile(
  ep: Endpoint,
  fileId: string,
  out: string,
  expected: { sha384: string; size: number },
  o: { force?: boolean; onBytes?: (done: number) => void; signal?: AbortSignal } = {},
): Promise<{ bytes: number }> {
  const part = await createPartial(out, { force: Boolean(o.force) });
  const tap = hashing(o.onBytes ?? (() => {}));
  try {
    const res = await open(ep, 'GET', `/v1/files/${encodeURIComponent(fileId)}`, { timeoutMs: 300_000, signal: o.signal });
    try {
      await pipeline(res, tap, part.stream, { signal: o.signal });
    } catch (err) {
      // A write to the partial file that failed (a full disk, a file size limit) is this
      // workstation's failure to write, exit 1: never DOWNLOAD_MISMATCH (exit 3), which tells a
      // script the appliance sent something other than what was signed. pipeline rejects with
      // the first error; the file's own carries the file system call that failed, while the
      // response's are 'aborted' (ECONNRESET) or a premature close, with no such call.
      if (!o.signal?.aborted && isFileWriteError(err)) throw new OutputFileError(out, err);
      throw new DownloadMismatchError(out, `the transfer broke after ${tap.bytes()} bytes: ${(err as Error).message}`);
    }
    const sha384 = tap.digest();
    if (tap.bytes() !== expected.size || sha384 !== expected.sha384) {
      throw new DownloadMismatchError(out, tap.bytes() !== expected.size ? `${tap.bytes()} bytes, expected ${expected.size}` : 'SHA-384 differs');
    }
    await part.commit();
    return { bytes: tap.bytes() };
  } catch (err) {
    await part.discard();
    if (o.signal?.aborted) throw new DownloadInterruptedError(out, abortReason(o.signal));
    throw err;
  }
}
