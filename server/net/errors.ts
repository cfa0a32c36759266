/** Failure modes of the LAN-only rule. Domain errors: they know nothing of HTTP. */

/** A `--listen` value that is not `host:port` / `[v6]:port` with a literal IP and a port 0–65535. */
export class ListenInvalidError extends Error {
  readonly code = 'LISTEN_INVALID';
  constructor(value: string, why: string, options?: { cause?: unknown }) {
    super(`--listen expects host:port or [ipv6]:port with a literal IP address; got "${value}": ${why}`, options);
    this.name = 'ListenInvalidError';
  }
}

/** A listen address outside loopback, private (RFC 1918, RFC 4193) and link-local ranges. */
export class ListenPublicError extends Error {
  readonly code = 'LISTEN_PUBLIC';
  constructor(readonly address: string) {
    super(
      `refusing to listen on ${address}: it is a public address; Sigil listens only on loopback, ` +
        `private (10/8, 172.16/12, 192.168/16, fc00::/7) or link-local (169.254/16, fe80::/10) addresses`,
    );
    this.name = 'ListenPublicError';
  }
}

/** A CIDR in configuration that does not parse. */
export class CidrInvalidError extends Error {
  readonly code = 'CIDR_INVALID';
  constructor(readonly value: string, options?: { cause?: unknown }) {
    super(`expected an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or fc00::/7; got "${value}"`, options);
    this.name = 'CidrInvalidError';
  }
}
