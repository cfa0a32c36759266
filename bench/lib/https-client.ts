/**
 * The load tools' HTTPS client on node:https: one keep-alive agent with a client certificate,
 * JSON in and out, the latency of each request. Set-up, accounts and the fault tests go through
 * it; the messages bench's timed load uses the leaner raw-client.ts / stream-client.ts.
 */
import https from 'node:https';

/** A response: status, parsed JSON body (or text / bytes), and the latency in ms. */
export interface LoadResponse<T = any> {
  status: number;
  body: T;
  ms: number;
  headers: Record<string, string | string[] | undefined>;
}

/** Request options of {@link Client.request}. */
export interface LoadRequest {
  method?: string;
  body?: unknown;
  raw?: Uint8Array | string;
  headers?: Record<string, string>;
  token?: string;
  /** Answer the body as bytes instead of JSON/text. */
  binary?: boolean;
  /** Use a new TLS connection instead of the keep-alive pool. */
  fresh?: boolean;
  timeoutMs?: number;
}

/** An HTTPS client over one keep-alive agent with a client certificate. */
export class Client {
  readonly agent: https.Agent;
  token = '';
  constructor(
    readonly url: string,
    readonly caPem: string,
    readonly certPem: string,
    readonly keyPem: string,
    maxSockets = 1,
  ) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets, ca: caPem, cert: certPem, key: keyPem, minVersion: 'TLSv1.3' });
  }

  request<T = any>(path: string, o: LoadRequest = {}): Promise<LoadResponse<T>> {
    const u = new URL(path, this.url);
    const payload = o.raw !== undefined ? o.raw : o.body !== undefined ? JSON.stringify(o.body) : undefined;
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (payload !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] ??= String(typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength);
    }
    const token = o.token ?? this.token;
    if (token) headers.authorization = `Bearer ${token}`;
    const started = performance.now();
    return new Promise((res, rej) => {
      const req = https.request(
        { host: u.hostname, port: u.port, path: u.pathname + u.search, method: o.method ?? (payload !== undefined ? 'POST' : 'GET'), headers,
          ...(o.fresh ? { agent: false as const, ca: this.caPem, cert: this.certPem, key: this.keyPem, minVersion: 'TLSv1.3' as const } : { agent: this.agent }) },
        (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('error', rej);
          r.on('end', () => {
            const buf = Buffer.concat(chunks);
            let body: unknown = buf;
            if (!o.binary) {
              const text = buf.toString('utf8');
              body = text;
              if ((r.headers['content-type'] ?? '').includes('application/json')) {
                try {
                  body = JSON.parse(text);
                } catch {
                  body = text;
                }
              }
            }
            res({ status: r.statusCode ?? 0, body: body as T, ms: performance.now() - started, headers: r.headers });
          });
        },
      );
      req.setTimeout(o.timeoutMs ?? 120_000, () => req.destroy(new Error(`request ${path} timed out`)));
      req.on('error', rej);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
