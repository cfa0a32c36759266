/** Failure modes of the appliance's certificate records. Domain errors: no HTTP here. */

/** No certificate with this serial among those the appliance issued. */
export class CertificateNotFoundError extends Error {
  readonly code = 'CERTIFICATE_NOT_FOUND';
  constructor(readonly serial: string) {
    super(`no certificate with serial ${serial} was issued by this appliance`);
    this.name = 'CertificateNotFoundError';
  }
}

/** Revoking a certificate that is already revoked. */
export class CertificateAlreadyRevokedError extends Error {
  readonly code = 'CERTIFICATE_ALREADY_REVOKED';
  constructor(readonly serial: string, revokedAt: Date) {
    super(`certificate ${serial} is already revoked (since ${revokedAt.toISOString()})`);
    this.name = 'CertificateAlreadyRevokedError';
  }
}
