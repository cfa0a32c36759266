/**
 * One keep-alive HTTP/1.1 connection over TLS 1.3 with a client certificate, sending requests
 * whose bytes were built before the timed phase. For bench/messages.ts's load only; everything
 * else (set-up, accounts, the fault tests) goes through `Client` in https-client.ts, on node:https.
 *
 * Why it exists: the load generator runs on the server's two cores, so every microsecond it
 * spends is taken from the server it measures. Through node:https it cost ~20 µs per message at
 * 16 messages per request (~300 µs of user time per request: ClientRequest, the agent, the
 * IncomingMessage stream; undici read 17). Here a request is one `write` of prebuilt bytes and an
 * answer is one JSON.parse. What it reads of HTTP is only what the messages bench meets: a status
 * line and a `content-length` body, one request in flight per connection. Anything else (chunked
 * framing, a closed connection, a timeout) fails the request loudly rather than being guessed at.
 */
import tls from 'node:tls';

/** What one request answered. */
export interface RawAnswer {
  status: number;
  body: unknown;
  /** From the write to the last byte of the answer. */
  ms: number;
}

/** A request's bytes (head and body), built once before the timed phase. */
export function requestBytes(url: URL, path: string, token: string, body: Uint8Array): Buffer {
  const head =
    `POST ${path} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\n` +
    `content-length: ${body.byteLength}\r\nauthorization: Bearer ${token}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

const HEAD_END = Buffer.from('\r\n\r\n');

interface Waiting {
  resolve: (a: RawAnswer) => void;
  reject: (e: Error) => void;
  started: number;
}

export class RawConnection {
  readonly #socket: tls.TLSSocket;
  #waiting: Waiting | undefined;
  #received: Buffer = Buffer.alloc(0);
  /** Once the head of the current answer is read: its status, and where its body starts and ends. */
  #answer: { status: number; bodyAt: number; end: number } | undefined;

  private constructor(socket: tls.TLSSocket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('error', (e) => this.#fail(e));
    socket.on('close', () => this.#fail(new Error('the server closed the connection')));
  }

  /** Opens a TLS 1.3 connection to `url` under the client certificate `cert`/`key`. */
  static open(url: URL, o: { ca: string; cert: string; key: string }): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca: o.ca, cert: o.cert, key: o.key, minVersion: 'TLSv1.3' }, () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Writes `bytes` (from {@link requestBytes}) and answers the response. One at a time. */
  send(bytes: Buffer, timeoutMs = 120_000): Promise<RawAnswer> {
    if (this.#waiting) return Promise.reject(new Error('a request is already in flight on this connection'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      this.#waiting = {
        resolve: (a) => (clearTimeout(timer), resolve(a)),
        reject: (e) => (clearTimeout(timer), reject(e)),
        started: performance.now(),
      };
      this.#socket.write(bytes);
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #read(chunk: Buffer): void {
    this.#received = this.#received.length === 0 ? chunk : Buffer.concat([this.#received, chunk]);
    if (!this.#answer) {
      const headEnd = this.#received.indexOf(HEAD_END);
      if (headEnd < 0) return;
      const head = this.#received.toString('latin1', 0, headEnd);
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(head);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (!status || !length || /\r\ntransfer-encoding:/i.test(head)) {
        return this.#fail(new Error(`an answer this client does not read: ${head.slice(0, 200)}`));
      }
      const bodyAt = headEnd + HEAD_END.length;
      this.#answer = { status: Number(status[1]), bodyAt, end: bodyAt + Number(length[1]) };
    }
    const { status, bodyAt, end } = this.#answer;
    if (this.#received.length < end) return;
    if (this.#received.length > end) return this.#fail(new Error('bytes beyond the answer: one request is in flight at a time'));
    const text = this.#received.toString('utf8', bodyAt, end);
    this.#received = Buffer.alloc(0);
    this.#answer = undefined;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (!waiting) return this.#fail(new Error('an answer to no request'));
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: the caller sees the text with the status.
    }
    waiting.resolve({ status, body, ms: performance.now() - waiting.started });
  }

  #fail(e: Error): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    this.#socket.destroy();
    waiting?.reject(e);
  }
}
