/**
 * Refuses connections whose peer is outside the allowed ranges, before any TLS byte is read.
 *
 * Attached to the raw `connection` event of the listening server (a `tls.Server` emits it with the
 * plain TCP socket before the handshake), so a refused peer never reaches TLS or HTTP code.
 */
import type net from 'node:net';
import { cidrMatcher, DEFAULT_ALLOWED_PEERS } from './lan.js';

/** Options of {@link attachPeerFilter}. */
export interface PeerFilterOptions {
  /** CIDRs whose peers are accepted. Default: loopback, private and link-local ranges. */
  allowedPeers?: readonly string[];
  /** Told about each refused peer (for the log); never about accepted ones. */
  onRefused?: (peer: { address: string | undefined; port: number | undefined }) => void;
}

/**
 * Installs the LAN-only peer check on `server`. Returns a function that removes it.
 * Throws `CidrInvalidError` if a configured CIDR does not parse (at start, not per connection).
 */
export function attachPeerFilter(server: net.Server, options: PeerFilterOptions = {}): () => void {
  const allowed = cidrMatcher(options.allowedPeers ?? DEFAULT_ALLOWED_PEERS);
  const listener = function refuseNonLanPeer(socket: net.Socket): void {
    const address = socket.remoteAddress;
    if (address !== undefined && allowed(address)) return;
    options.onRefused?.({ address, port: socket.remotePort });
    socket.destroy();
  };
  // prependListener: run before the TLS layer's own connection handler starts the handshake.
  server.prependListener('connection', listener);
  return () => server.off('connection', listener);
}
