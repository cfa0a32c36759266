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

/**
 * Revoking the last certificate that any active officer can log in with. Nobody could then issue,
 * revoke or publish a CRL, and there is no way back short of re-initialising the appliance.
 * Carries its own status (409): the edge's table maps codes it lists, and this one sits here.
 */
export class LastOfficerCertificateError extends Error {
  readonly code = 'LAST_OFFICER_CERTIFICATE';
  readonly status = 409;
  constructor(readonly serial: string, login: string) {
    super(
      `certificate ${serial} is the last active certificate of the last active officer (${login}); ` +
        'issue another officer a certificate first, then revoke this one',
    );
    this.name = 'LastOfficerCertificateError';
  }
}

/**
 * A revocation was committed — in force, refused from now on — but the CRL that lists it could
 * not be published. Not "nothing was written", as a bare VAULT_FULL would say. Nothing is lost:
 * the refresher publishes a CRL at its next check (within a minute, and at start) whenever a
 * revoked certificate is missing from the latest one, and so does repeating the revocation.
 * 507 when the storage is full (someone must free space), else 503 (try again).
 */
export class CrlNotPublishedError extends Error {
  readonly code = 'CRL_NOT_PUBLISHED';
  readonly status: 503 | 507;
  constructor(what: string, cause: unknown) {
    const full = (cause as { code?: unknown } | null)?.code === 'VAULT_FULL';
    super(
      `${what} and refused from now on, but the CRL that lists the revocation could not be published ` +
        `(${full ? "the appliance's storage is full" : 'see the server log'}); the appliance publishes it at its next ` +
        `CRL check (within a minute), or repeat the request${full ? ' once space is freed' : ''}`,
      { cause },
    );
    this.name = 'CrlNotPublishedError';
    this.status = full ? 507 : 503;
  }
}

/**
 * A CSR whose key was in a certificate revoked for keyCompromise. Whoever holds a copy of that key
 * would get a valid certificate again: the revocation would be undone. Refused for every login,
 * the one it was compromised under too.
 */
export class KeyCompromisedError extends Error {
  readonly code = 'KEY_COMPROMISED';
  constructor(readonly serial: string) {
    super(
      `this key was revoked as compromised (certificate ${serial}) and is never certified again; ` +
        'make a new key and CSR (sigil keygen) and issue from that',
    );
    this.name = 'KeyCompromisedError';
  }
}

/**
 * A CSR whose key is certified for another login. One key under two logins logs in and signs as
 * both: nothing it signed would say who. A key belongs to one login for good (revoked or expired
 * certificates too); the same login may renew with it.
 */
export class KeyInUseError extends Error {
  readonly code = 'KEY_IN_USE';
  constructor(readonly serial: string, readonly login: string) {
    super(
      `this key is certified for another account (certificate ${serial} of ${login}); a key belongs to one login: ` +
        'make a new key and CSR (sigil keygen) for this one',
    );
    this.name = 'KeyInUseError';
  }
}
