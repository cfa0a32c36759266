/**
 * The HTTPS listener: the Hono app on `@hono/node-server` over `https.createServer`, TLS 1.3
 * only, a client certificate from the appliance CA required at the handshake, the LAN-only peer
 * filter before TLS, and a graceful stop (in-flight requests finish, then the vault closes).
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Appliance } from './appliance.js';
import type { TlsMaterial } from './certs/tls-renewer.js';
import type { Logger } from './log.js';
import type { AppEnv } from './middleware/types.js';
import { assertLanListen, formatListen, type ListenAddress } from './net/lan.js';
import { answerAdapterError, answerClientError, requireHost } from './net/bare-errors.js';
import { attachPeerFilter } from './net/peer-filter.js';

/**
 * TLS options: TLS 1.3 only; client certificate required and verified against the appliance CA.
 * The listener is created with them, and its secure context is rebuilt from them with the new
 * `tls` material when the certificate is renewed.
 */
export function tlsServerOptions(appliance: Appliance, tls: TlsMaterial = appliance.tls): https.ServerOptions {
  return {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    cert: tls.chainPem,
    key: tls.keyPem,
    ca: [appliance.issuingCert.pem, appliance.rootCert.pem],
    requestCert: true,
    rejectUnauthorized: true,
    // No session resumption across restarts of trust: tickets would outlive a revocation check at handshake.
    sessionTimeout: 300,
  };
}

/** A running listener. */
export interface Listener {
  server: Server;
  /** Actual address (port resolved when 0 was asked). */
  address: ListenAddress;
  url: string;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), closes idle sockets. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of {@link listen}. */
export interface ListenOptions {
  app: Hono<AppEnv>;
  appliance: Appliance;
  address: ListenAddress;
  allowedPeers: readonly string[];
  log: Logger;
}

/**
 * Serves `app` on `address` over TLS. Refuses a public listen address (`ListenPublicError`).
 * Resolves once listening.
 */
export async function listen(opts: ListenOptions): Promise<Listener> {
  assertLanListen(opts.address);
  // getRequestListener rather than serve(): only the listener takes an errorHandler, for the
  // requests the adapter cannot turn into a Request (net/bare-errors.ts).
  const handler = getRequestListener(opts.app.fetch, { hostname: opts.address.host, errorHandler: answerAdapterError(opts.log) });
  // Slow clients (slowloris) must not hold sockets for minutes: the TLS handshake within 10 s
  // (Node: 120 s), headers within 10 s, a whole request body within 5 min (a 100 MiB upload on a
  // slow LAN), idle keep-alive sockets closed after 5 s, checked every 2 s (Node: 30 s). Live event
  // streams are responses, which these limits do not cut.
  const server = https.createServer(
    {
      ...tlsServerOptions(opts.appliance),
      handshakeTimeout: 10_000,
      headersTimeout: 10_000,
      requestTimeout: 300_000,
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: 2_000,
      // Node would answer a missing Host itself, a bare 400: requireHost answers it in JSON.
      requireHostHeader: false,
    },
    requireHost(opts.log, handler),
  );
  // Bounded in all: one client opening sockets by the thousand must not take every descriptor.
  server.maxConnections = opts.appliance.config.maxConnections;
  server.on('clientError', answerClientError(opts.log));
  server.listen(opts.address.port, opts.address.host);
  attachPeerFilter(server, {
    allowedPeers: opts.allowedPeers,
    onRefused: (p) => opts.log.warn('connection refused: peer outside the allowed ranges', { peer: p.address ?? null }),
  });
  // A renewed certificate (certs/tls-renewer.ts) is served without a restart: new handshakes get
  // it, connections already open keep the one they agreed on.
  const unsubscribe = opts.appliance.tlsRenewer?.subscribe((tls) => {
    server.setSecureContext(tlsServerOptions(opts.appliance, tls));
    opts.log.info('TLS certificate swapped in the listener', {});
  });
  server.on('close', () => unsubscribe?.());
  server.on('tlsClientError', (err) => opts.log.info('TLS handshake refused', { errorCode: (err as { code?: string }).code ?? err.message }));
  await new Promise<void>((resolve, reject) => {
    if (server.listening) return resolve();
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const a = server.address() as AddressInfo;
  const address: ListenAddress = { host: opts.address.host, port: a.port, family: opts.address.family };
  let stopping: Promise<void> | undefined;
  return {
    server,
    address,
    url: `https://${formatListen(address)}`,
    stop(graceMs = 10_000) {
      return (stopping ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        // Keep-alive sockets without a request in flight would hold close() open forever.
        server.closeIdleConnections();
      }));
    },
  };
}
