/** Failure modes of the transport checks done per request. Domain errors: no HTTP here. */

/** No client certificate on the connection (only possible outside the TLS server, e.g. tests via app.request). */
export class ClientCertRequiredError extends Error {
  readonly code = 'CLIENT_CERT_REQUIRED';
  constructor() {
    super('a client certificate issued by this appliance is required');
    this.name = 'ClientCertRequiredError';
  }
}

/** The client certificate is on the revocation list. */
export class CertRevokedError extends Error {
  readonly code = 'CERT_REVOKED';
  constructor(serial: string) {
    super(`the client certificate (serial ${serial}) is revoked`);
    this.name = 'CertRevokedError';
  }
}

/**
 * The root CA's CRL revokes the appliance's issuing CA: no certificate it issued is valid, the
 * client's included (certs/root-crl-watch.ts).
 */
export class IssuingCaRevokedError extends Error {
  readonly code = 'ISSUING_CA_REVOKED';
  constructor(serial: string, crlNumber: number) {
    super(
      `the appliance's issuing CA (serial ${serial}) is revoked by root CRL ${crlNumber}: no certificate it issued is valid, ` +
        'this one included; only the CA certificates and CRLs are served until the CA is replaced',
    );
    this.name = 'IssuingCaRevokedError';
  }
}

/** The client certificate's notAfter is before the server's time. */
export class CertExpiredError extends Error {
  readonly code = 'CERT_EXPIRED';
  constructor(serial: string, notAfter: Date, now: Date) {
    super(`the client certificate (serial ${serial}) expired at ${notAfter.toISOString()}; server time is ${now.toISOString()}`);
    this.name = 'CertExpiredError';
  }
}

/** The client certificate's notBefore is after the server's time. */
export class CertNotYetValidError extends Error {
  readonly code = 'CERT_NOT_YET_VALID';
  constructor(serial: string, notBefore: Date, now: Date) {
    super(`the client certificate (serial ${serial}) is valid from ${notBefore.toISOString()}; server time is ${now.toISOString()}`);
    this.name = 'CertNotYetValidError';
  }
}
