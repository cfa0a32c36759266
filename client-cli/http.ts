/**
 * HTTPS client for the appliance's JSON API (server/API.md). TLS 1.3 only, the profile's
 * certificate and key presented on every connection, the server's certificate checked against
 * the pinned CA (and its name against the URL's host) — never the system trust store.
 * Error answers `{"error":{"code","message","requestId"}}` become `ServerError` with the
 * server's code, so `exit-codes.ts` maps them like local errors.
 */
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { z } from 'zod';
import {
  BadResponseError,
  ClientCertRefusedError,
  KeyUnlockError,
  ServerError,
  ServerTooSlowError,
  ServerUnreachableError,
  ServerUntrustedError,
} from './errors.js';

export interface HttpClientOptions {
  /** Base URL, e.g. `https://127.0.0.1:8443`. */
  baseUrl: string;
  /** Pinned CA certificate(s), PEM: the only trust anchors for the server's certificate. */
  caPem: string;
  /** Client certificate PEM (leaf first, then any issuing CA certificates). */
  certPem: string;
  /** Client private key PEM (unencrypted PKCS#8, held in memory only). */
  keyPem: string;
  /** Bearer token of the current session, if any. */
  token?: string;
  /** How long the connection may stay silent; default 30 s. */
  timeoutMs?: number;
  /** How long a whole request may take, answer read to its end; default ANSWER_DEADLINE_MS. */
  deadlineMs?: number;
  /** The most an answer may carry; default MAX_ANSWER_BYTES. */
  maxAnswerBytes?: number;
}

/**
 * A server that trickles one byte a second never trips the silence timeout: this deadline ends
 * the request anyway. Five minutes is far beyond the appliance's slowest answer (destroying a
 * correspondence of a million messages takes ~20 s).
 */
export const ANSWER_DEADLINE_MS = 300_000;
/**
 * The largest answer read into memory: a page of 200 messages of the largest body (1 MiB as
 * base64) is ~280 MiB. V8 cannot make a string of more than 2^29 - 24 characters; past this
 * the CLI says so instead of growing until the string fails or memory runs out.
 */
export const MAX_ANSWER_BYTES = 448 * 1024 * 1024;

/** OpenSSL/Node codes meaning the server's certificate did not verify against the pinned CA. */
const SERVER_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/** A JSON client bound to one server, one client certificate and optionally one session token. */
export class HttpClient {
  constructor(private readonly opts: HttpClientOptions) {}

  /** The same client with another (or no) session token. */
  withToken(token: string | undefined): HttpClient {
    return new HttpClient({ ...this.opts, token });
  }

  get<T>(path: string, schema: z.ZodType<T>): Promise<T> {
    return this.request('GET', path, undefined, schema);
  }

  post<T>(path: string, body: unknown, schema: z.ZodType<T>): Promise<T> {
    return this.request('POST', path, body ?? {}, schema);
  }

  /**
   * One request. Resolves with the parsed, schema-checked body of a 2xx answer.
   * @throws ServerError for an error answer; ServerUnreachableError, ServerUntrustedError,
   *   ClientCertRefusedError, KeyUnlockError for transport failures; BadResponseError otherwise.
   */
  async request<T>(method: string, path: string, body: unknown, schema: z.ZodType<T>): Promise<T> {
    const url = new URL(path, this.opts.baseUrl);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    const options: RequestOptions = {
      method,
      headers,
      ca: this.opts.caPem,
      cert: this.opts.certPem,
      key: this.opts.keyPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      rejectUnauthorized: true,
      // One short-lived CLI process: no connection pooling to keep the process alive.
      agent: false,
      timeout: this.opts.timeoutMs ?? 30_000,
    };
    const { status, text } = await this.send(url, options, payload, {
      deadlineMs: this.opts.deadlineMs ?? ANSWER_DEADLINE_MS,
      maxBytes: this.opts.maxAnswerBytes ?? MAX_ANSWER_BYTES,
    });
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch (cause) {
      throw new BadResponseError(`HTTP ${status} with a body that is not JSON`, { cause });
    }
    if (status < 200 || status >= 300) {
      const e = (json as { error?: { code?: unknown; message?: unknown; requestId?: unknown } }).error;
      if (e && typeof e.code === 'string') {
        throw new ServerError(
          e.code,
          typeof e.message === 'string' ? e.message : e.code,
          status,
          typeof e.requestId === 'string' ? e.requestId : undefined,
        );
      }
      throw new BadResponseError(`HTTP ${status} without an error code`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new BadResponseError(`${method} ${url.pathname}: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`, {
        cause: parsed.error,
      });
    }
    return parsed.data;
  }

  private send(
    url: URL,
    options: RequestOptions,
    payload: Buffer | undefined,
    limits: { deadlineMs: number; maxBytes: number },
  ): Promise<{ status: number; text: string }> {
    const base = this.opts.baseUrl;
    return new Promise((resolveSend, reject) => {
      let req: ReturnType<typeof httpsRequest>;
      let deadline: NodeJS.Timeout | undefined;
      const fail = (err: Error): void => {
        clearTimeout(deadline);
        reject(err);
        req?.destroy();
      };
      try {
        req = httpsRequest(url, options, (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > limits.maxBytes) return fail(new BadResponseError(`the answer is over ${limits.maxBytes} bytes`));
            chunks.push(c);
          });
          res.on('error', (err) => fail(mapTransportError(base, err)));
          res.on('end', () => {
            clearTimeout(deadline);
            resolveSend({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
          });
        });
      } catch (err) {
        // The secure context is built synchronously: a wrong passphrase surfaces here.
        reject(mapTransportError(base, err));
        return;
      }
      deadline = setTimeout(() => fail(new ServerTooSlowError(base, limits.deadlineMs)), limits.deadlineMs);
      req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => fail(mapTransportError(base, err)));
      req.end(payload);
    });
  }
}

/** Turns a socket/TLS error into the CLI error that says what went wrong. */
export function mapTransportError(baseUrl: string, err: unknown): Error {
  const code = String((err as { code?: unknown })?.code ?? '');
  const message = String((err as { message?: unknown })?.message ?? '');
  if (SERVER_TRUST_CODES.has(code)) return new ServerUntrustedError(baseUrl, code, { cause: err });
  if (UNREACHABLE_CODES.has(code)) return new ServerUnreachableError(baseUrl, { cause: err });
  if (code.startsWith('ERR_OSSL') && /decrypt|pass|bad.?password/i.test(code + message)) return new KeyUnlockError({ cause: err });
  // TLS 1.3: the server judges our certificate after the client has finished its side, so the
  // refusal arrives as an alert (or a reset) on the first read.
  if (/_ALERT_/.test(code) || code === 'ECONNRESET' || code === 'EPIPE') return new ClientCertRefusedError(baseUrl, { cause: err });
  return new ServerUnreachableError(baseUrl, { cause: err });
}
