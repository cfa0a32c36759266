/**
 * End-to-end harness for the messaging routes: a real appliance (`startTestAppliance`: real TLS
 * on 127.0.0.1, real accounts, certificates and sessions) with the messaging sub-apps mounted the
 * way the shell mounts them, a messaging service built from the appliance by
 * `messagingPartsFrom`, helpers to compose signed messages, and an SSE reader.
 *
 * Run directly, this file checks itself (tap runs every file under test/).
 */
import https from 'node:https';
import { webcrypto } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { signDetached, type Clearance } from '../../../pki/index.js';
import type { AppDeps } from '../../../server/app.js';
import { messagingPartsFrom, type MessagingRouteDeps } from '../../../server/messaging/http.js';
import {
  canonicalDeleteStatement,
  canonicalHeader,
  createMessaging,
  type MessageHeader,
  type Messaging,
  type MessagingConfig,
} from '../../../server/messaging/index.js';
import { conversationsRoutes } from '../../../server/routes/conversations.js';
import { eventsRoutes } from '../../../server/routes/events.js';
import { filesRoutes } from '../../../server/routes/files.js';
import { groupsRoutes } from '../../../server/routes/groups.js';
import { correspondenceRoutes, messagesRoutes } from '../../../server/routes/messages.js';
import type { MessageStreamOptions } from '../../../server/routes/message-stream.js';
import { newMessageId } from './harness.js';
import { messageHeader } from '../../../bench/lib/signed-messages.js';
import { startTestAppliance, type TestAppliance, type TestApplianceOptions, type TestResponse, type TestUser } from '../../helpers/appliance.js';

const enc = new TextEncoder();

export interface HttpHarness {
  app: TestAppliance;
  messaging: Messaging;
  compose(
    u: TestUser,
    conversation: string,
    body: string | Uint8Array,
    over?: Partial<MessageHeader>,
  ): Promise<{ id: string; header: string; signature: string; body: string }>;
  deleteBody(u: TestUser, target: string, reason?: string): Promise<{ reason: string; statement: string; signature: string }>;
  as(u: TestUser): (path: string, o?: { method?: string; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string> }) => Promise<TestResponse>;
}

export async function sha384b64(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-384', bytes)).toString('base64');
}

/** Starts an appliance with messaging mounted; stopped when `t` ends. */
export async function httpHarness(
  t: { teardown(fn: () => void | Promise<void>): void },
  opts: {
    keepAliveMs?: number;
    eventQueueMax?: number;
    eventQueueMaxBytes?: number;
    captureLogs?: boolean;
    sessionIdleMs?: number;
    /** The appliance's clock (and messaging's). Default real time. */
    now?: () => Date;
    profile?: TestApplianceOptions['profile'];
    /** More configuration overrides. */
    config?: TestApplianceOptions['config'];
    rootCrlCheckEveryMs?: TestApplianceOptions['rootCrlCheckEveryMs'];
    /** Tunables of `POST /v1/messages/stream`. */
    stream?: MessageStreamOptions;
    /** More messaging configuration (e.g. the pending-upload cap). */
    messaging?: Partial<MessagingConfig>;
  } = {},
): Promise<HttpHarness> {
  const holder: { messaging?: Messaging } = {};
  const deps = (d: AppDeps): MessagingRouteDeps => ({
    appliance: d.appliance,
    get messaging(): Messaging {
      if (!holder.messaging) throw new Error('messaging not started yet');
      return holder.messaging;
    },
  });
  const app = await startTestAppliance({
    config: { bodyLimit: 16 * 1024 * 1024, ...(opts.sessionIdleMs ? { sessionIdleMs: opts.sessionIdleMs } : {}), ...opts.config },
    ...(opts.captureLogs ? { captureLogs: true } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.profile ? { profile: opts.profile } : {}),
    ...(opts.rootCrlCheckEveryMs !== undefined ? { rootCrlCheckEveryMs: opts.rootCrlCheckEveryMs } : {}),
    extraRoutes: {
      '/v1/conversations': (d) => conversationsRoutes(deps(d)),
      '/v1/messages': (d) => messagesRoutes(deps(d), opts.stream ? { stream: opts.stream } : {}),
      '/v1/groups': (d) => groupsRoutes(deps(d)),
      '/v1/files': (d) => filesRoutes(deps(d)),
      '/v1/events': (d) => eventsRoutes(deps(d), { keepAliveMs: opts.keepAliveMs ?? 15_000 }),
      '/v1/users': (d) => correspondenceRoutes(deps(d)),
    },
  });
  const messaging = createMessaging(
    await messagingPartsFrom(app.appliance, app.deps.now, {
      sweepIntervalMs: 0,
      maxFileBytes: 4 * 1024 * 1024,
      chunkBytes: 256 * 1024,
      ...(opts.eventQueueMax ? { eventQueueMax: opts.eventQueueMax } : {}),
      ...(opts.eventQueueMaxBytes ? { eventQueueMaxBytes: opts.eventQueueMaxBytes } : {}),
      ...opts.messaging,
    }, () => undefined),
  );
  await messaging.start();
  holder.messaging = messaging;
  t.teardown(async () => {
    await messaging.close();
    await app.stop();
  });
  return {
    app,
    messaging,
    async compose(u, conversation, body, over = {}) {
      const bytes = typeof body === 'string' ? enc.encode(body) : body;
      const header = messageHeader(u.login, conversation, { sha384: await sha384b64(bytes), size: bytes.length }, { id: newMessageId(), ...over });
      const text = canonicalHeader(header);
      const sig = await signDetached({ content: enc.encode(text), signerCert: u.cert, signerKey: u.key, label: header.label as Clearance });
      return { id: header.id, header: text, signature: Buffer.from(sig).toString('base64'), body: Buffer.from(bytes).toString('base64') };
    },
    async deleteBody(u, target, reason = 'no longer needed') {
      const statement = canonicalDeleteStatement({ at: new Date().toISOString(), purpose: 'sigil-delete', reason, target });
      const sig = await signDetached({ content: enc.encode(statement), signerCert: u.cert, signerKey: u.key });
      return { reason, statement, signature: Buffer.from(sig).toString('base64') };
    },
    as(u) {
      // An explicit Content-Length: node's client sends a DELETE body neither chunked nor sized
      // otherwise, and the server then reads it as a malformed next request.
      return (path, o = {}) => {
        const payload = o.rawBody ?? (o.body !== undefined ? JSON.stringify(o.body) : undefined);
        const headers = { ...(o.headers ?? {}), ...(payload !== undefined ? { 'content-length': String(Buffer.byteLength(payload)) } : {}) };
        return app.request(path, { ...o, headers, token: u.token, cert: u.certPem, key: u.keyPem });
      };
    },
  };
}

/**
 * Resolves once `holds()` is true, checked now and whenever the client calls its `waiters` (new
 * data); rejects after `ms` with what `what()` says was received.
 */
function waitUntil(waiters: Set<() => void>, holds: () => boolean, ms: number, what: () => string): Promise<void> {
  return new Promise<void>((res, rej) => {
    const check = (): void => {
      if (holds()) {
        waiters.delete(check);
        clearTimeout(timer);
        res();
      }
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      rej(new Error(`${what()} — not met in ${ms} ms`));
    }, ms);
    waiters.add(check);
    check();
  });
}

/** One parsed SSE event. */
export interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

/** A live SSE connection over real TLS. */
export interface SseClient {
  events: SseEvent[];
  /** Resolves once `pred` holds for the events received so far (or rejects after `ms`). */
  until(pred: (evs: SseEvent[]) => boolean, ms?: number): Promise<void>;
  /** True once the server ended the stream. */
  ended: boolean;
  /** Keep-alives (blocks of comment lines only) received so far. */
  keepAlives: number;
  close(): void;
}

/** Opens `/v1/events` as `u`, optionally resuming from `lastEventId`. */
export function openEvents(h: HttpHarness, u: TestUser, lastEventId?: number): Promise<SseClient> {
  const url = new URL('/v1/events', h.app.url);
  return new Promise((resolve, reject) => {
    const events: SseEvent[] = [];
    const waiters = new Set<() => void>();
    let buf = '';
    const client: SseClient = {
      events,
      ended: false,
      keepAlives: 0,
      until(pred, ms = 10_000) {
        return waitUntil(waiters, () => pred(events), ms, () => `SSE condition; got ${JSON.stringify(events.map((e) => [e.event, e.id]))}${client.ended ? ' (the server had ended the stream)' : ''}`);
      },
      close() {
        req.destroy();
      },
    };
    const req = https.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'GET',
        headers: {
          accept: 'text/event-stream',
          authorization: `Bearer ${u.token}`,
          ...(lastEventId !== undefined ? { 'last-event-id': String(lastEventId) } : {}),
        },
        ca: h.app.caPem,
        cert: u.certPem,
        key: u.keyPem,
        agent: false,
        minVersion: 'TLSv1.3',
      },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`events: HTTP ${res.statusCode}`));
          return;
        }
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let i: number;
          while ((i = buf.indexOf('\n\n')) !== -1) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const ev: SseEvent = { event: 'message', data: '' };
            let any = false;
            let comment = false;
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) {
                comment = true;
                continue;
              }
              const [k, ...rest] = line.split(':');
              const v = rest.join(':').replace(/^ /, '');
              if (k === 'event') ev.event = v;
              else if (k === 'id') ev.id = v;
              else if (k === 'data') ev.data += v;
              any = true;
            }
            if (any) events.push(ev);
            else if (comment) client.keepAlives++;
          }
          for (const w of [...waiters]) w();
        });
        res.on('end', () => {
          client.ended = true;
          for (const w of [...waiters]) w();
        });
        res.on('error', () => undefined);
        resolve(client);
      },
    );
    req.on('error', (err) => {
      client.ended = true;
      if ((err as { code?: string }).code !== 'ECONNRESET') reject(err);
    });
    req.end();
  });
}

/** A `POST /v1/messages/stream` over real TLS: lines out as the test writes them, answers parsed as they come. */
export interface SendStream {
  status: number;
  /** Every answer line so far, parsed. */
  answers: Record<string, any>[];
  /** Writes raw bytes (lines must carry their own newline). */
  write(bytes: string | Buffer): void;
  /** Ends the request body. */
  end(): void;
  /** Resolves once `pred` holds for the answers so far (or rejects after `ms`). */
  until(pred: (answers: Record<string, any>[]) => boolean, ms?: number): Promise<void>;
  /** Resolves when the response has ended or the connection closed; true if it ended cleanly. */
  closed: Promise<boolean>;
  destroy(): void;
}

/** Opens `/v1/messages/stream` as `u`; resolves once the answer's head arrived. */
export function openSendStream(h: HttpHarness, u: TestUser, o: { token?: string } = {}): Promise<SendStream> {
  const url = new URL('/v1/messages/stream', h.app.url);
  return new Promise((resolve, reject) => {
    const answers: Record<string, any>[] = [];
    const waiters = new Set<() => void>();
    let buf = '';
    let settle: (clean: boolean) => void = () => undefined;
    const closed = new Promise<boolean>((r) => (settle = r));
    const req = https.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${o.token ?? u.token}` },
      ca: h.app.caPem,
      cert: u.certPem,
      key: u.keyPem,
      agent: false,
      minVersion: 'TLSv1.3',
    });
    const stream: SendStream = {
      status: 0,
      answers,
      write: (bytes) => void req.write(bytes),
      end: () => void req.end(),
      until(pred, ms = 10_000) {
        return waitUntil(waiters, () => pred(answers), ms, () => `stream condition; got ${JSON.stringify(answers)}`);
      },
      closed,
      destroy: () => void req.destroy(),
    };
    req.on('response', (res) => {
      stream.status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n')) !== -1) {
          answers.push(JSON.parse(buf.slice(0, i)) as Record<string, any>);
          buf = buf.slice(i + 1);
        }
        for (const w of [...waiters]) w();
      });
      res.on('end', () => settle(true));
      res.on('close', () => settle(false));
      res.on('error', () => settle(false));
      resolve(stream);
    });
    req.on('error', (err) => {
      settle(false);
      reject(err);
    });
    // Headers go out at once: the server answers the head before any line arrives.
    req.flushHeaders();
  });
}

// Self-check when tap runs this file on its own.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { default: tap } = await import('tap');
  tap.test('when the HTTP harness starts then a staff member can open a direct conversation', async (t) => {
    const h = await httpHarness(t);
    const a = await h.app.createStaff({ login: 'hh-alice', clearance: 'secret' });
    const b = await h.app.createStaff({ login: 'hh-bob', clearance: 'secret' });
    const r = await h.as(a)('/v1/conversations/direct', { body: { peer: b.login } });
    t.equal(r.status, 200, JSON.stringify(r.body));
    t.equal(r.body.peer, b.login);
  });
}
