/**
 * Certificate revocation lists, version 2 (RFC 5280 §5): CRL number (§5.2.3), authority key
 * identifier (§5.2.1), and a reasonCode entry extension (§5.3.1) per revoked certificate.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Certificate } from './certificate.js';
import { decodeDer, integerHex, normaliseSerial, toArrayBuffer, wholeSeconds } from './der.js';
import { InvalidParameterError, MalformedInputError } from './errors.js';
import { OID, authorityKeyIdentifierExtension } from './extensions.js';
import { nameToString, parseName, type DistinguishedName } from './names.js';
import { derToPem, toDer } from './pem.js';
import { profileOfKey } from './profiles.js';
import type { CryptoKey } from './webcrypto.js';

export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'cACompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'privilegeWithdrawn';

/** CRLReason codes of RFC 5280 §5.3.1 (7 is unused; removeFromCRL 8 and aACompromise 10 not offered). */
export const REVOCATION_REASON_CODES: Readonly<Record<RevocationReason, number>> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
};

export function isRevocationReason(value: unknown): value is RevocationReason {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(REVOCATION_REASON_CODES, value);
}

export interface RevokedEntry {
  /** Lowercase hex without leading "00", as `Certificate.serialNumber`. */
  serialNumber: string;
  /**
   * When the certificate was revoked. Encoded in whole seconds, truncated (RFC 5280 §5.1.2.6: no
   * fractional seconds), so a caller that wants the CRL to say exactly this time passes a whole
   * second (the server rounds a revocation up to the next one: server/certs/revocation.ts).
   */
  revocationDate: Date;
  reason: RevocationReason;
}

export type CrlSignatureResult = { ok: true } | { ok: false; reason: 'bad-signature' | 'unknown-issuer'; detail: string };

export class Crl {
  readonly asn: pkijs.CertificateRevocationList;
  readonly der: Uint8Array;
  readonly revoked: readonly RevokedEntry[];
  readonly #bySerial: Map<string, RevokedEntry>;
  #issuerDer?: Buffer;
  readonly #verifiedBy = new Map<string, Promise<boolean>>();

  private constructor(der: Uint8Array, asn: pkijs.CertificateRevocationList) {
    this.der = der;
    this.asn = asn;
    const entries = (asn.revokedCertificates ?? []).map((rc): RevokedEntry => {
      const reasonExt = rc.crlEntryExtensions?.extensions.find((e) => e.extnID === OID.crlReason);
      let reason: RevocationReason = 'unspecified';
      if (reasonExt) {
        const enumerated = reasonExt.parsedValue as asn1js.Enumerated | undefined;
        const code = enumerated?.valueBlock.valueDec;
        const found = (Object.keys(REVOCATION_REASON_CODES) as RevocationReason[]).find((r) => REVOCATION_REASON_CODES[r] === code);
        if (!found) throw new MalformedInputError(`CRL entry has an unsupported reason code ${String(code)}`);
        reason = found;
      }
      return { serialNumber: integerHex(rc.userCertificate), revocationDate: rc.revocationDate.value, reason };
    });
    this.revoked = Object.freeze(entries);
    this.#bySerial = new Map(entries.map((e) => [e.serialNumber, e]));
  }

  /** @throws MalformedInputError */
  static fromDer(der: Uint8Array | ArrayBuffer): Crl {
    const bytes = new Uint8Array(der instanceof Uint8Array ? der : new Uint8Array(der)).slice();
    const asn = decodeDer(bytes, 'X.509 CRL', (schema) => new pkijs.CertificateRevocationList({ schema }));
    if (asn.version !== 1) throw new MalformedInputError(`expected a CRL v2, found version ${asn.version + 1}`);
    if (!asn.nextUpdate) throw new MalformedInputError('expected a CRL with nextUpdate (RFC 5280 §5.1.2.5)');
    return new Crl(bytes, asn);
  }

  /** @throws MalformedInputError */
  static fromPem(pem: string): Crl {
    return Crl.fromDer(toDer(pem, 'X509 CRL'));
  }

  get pem(): string {
    return derToPem(this.der, 'X509 CRL');
  }

  get issuer(): DistinguishedName {
    return parseName(this.asn.issuer);
  }

  get issuerString(): string {
    return nameToString(this.asn.issuer);
  }

  get issuerNameDer(): Buffer {
    return (this.#issuerDer ??= Buffer.from(this.asn.issuer.toSchema().toBER(false)));
  }

  /** CRL number (§5.2.3); 0n when the extension is absent (not a CRL we made). */
  get crlNumber(): bigint {
    const ext = this.asn.crlExtensions?.extensions.find((e) => e.extnID === OID.crlNumber);
    const value = ext?.parsedValue;
    return value instanceof asn1js.Integer ? value.toBigInt() : 0n;
  }

  get thisUpdate(): Date {
    return this.asn.thisUpdate.value;
  }

  get nextUpdate(): Date {
    return this.asn.nextUpdate!.value;
  }

  /** The entry for `serialNumber` (hex, any case, with or without leading zeros or colons). */
  find(serialNumber: string): RevokedEntry | undefined {
    return this.#bySerial.get(normaliseSerial(serialNumber));
  }

  /** Checks the CRL signature with `issuer`'s key; cached per issuer. */
  async verifySignature(issuer: Certificate): Promise<CrlSignatureResult> {
    if (!this.issuerNameDer.equals(issuer.subjectNameDer)) {
      return { ok: false, reason: 'unknown-issuer', detail: `CRL issuer ${this.issuerString} is not ${issuer.subjectString}` };
    }
    let result = this.#verifiedBy.get(issuer.fingerprint);
    if (!result) {
      result = this.asn.verify({ issuerCertificate: issuer.asn }).catch(() => false);
      this.#verifiedBy.set(issuer.fingerprint, result);
    }
    return (await result) ? { ok: true } : { ok: false, reason: 'bad-signature', detail: `CRL signature does not verify with ${issuer.subjectString}` };
  }
}

/** Internal: builds and signs a CRL. Use `Issuer.createCrl`. */
export async function buildCrl(p: {
  issuer: Certificate;
  key: CryptoKey;
  revoked: RevokedEntry[];
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
}): Promise<Crl> {
  if (typeof p.crlNumber !== 'bigint' || p.crlNumber < 0n) throw new InvalidParameterError('crlNumber', 'expected a non-negative bigint');
  if (!(p.nextUpdate > p.thisUpdate)) throw new InvalidParameterError('nextUpdate', 'expected a date after thisUpdate');
  const time = (d: Date) => new pkijs.Time({ type: d.getUTCFullYear() < 2050 ? pkijs.TimeType.UTCTime : pkijs.TimeType.GeneralizedTime, value: wholeSeconds(d) });
  const crl = new pkijs.CertificateRevocationList();
  crl.version = 1;
  crl.issuer = p.issuer.asn.subject;
  crl.thisUpdate = time(p.thisUpdate);
  crl.nextUpdate = time(p.nextUpdate);
  const seen = new Set<string>();
  const entries = p.revoked.map((entry) => {
    const serial = normaliseSerial(entry.serialNumber);
    if (!/^[0-9a-f]+$/.test(serial)) throw new InvalidParameterError('revoked.serialNumber', `expected hex, got "${entry.serialNumber.slice(0, 40)}"`);
    if (!isRevocationReason(entry.reason)) throw new InvalidParameterError('revoked.reason', `unknown reason "${String(entry.reason).slice(0, 30)}"`);
    if (seen.has(serial)) throw new InvalidParameterError('revoked.serialNumber', `serial ${serial} listed twice`);
    seen.add(serial);
    // A leading 00 keeps a serial with its top bit set positive (X.690 §8.3).
    const bytes = Buffer.from(parseInt(serial.slice(0, 2), 16) >= 0x80 ? `00${serial}` : serial, 'hex');
    const rc = new pkijs.RevokedCertificate({
      userCertificate: new asn1js.Integer({ valueHex: toArrayBuffer(bytes) }),
      revocationDate: time(entry.revocationDate),
    });
    // RFC 5280 §5.3.1: the reasonCode SHOULD be absent rather than "unspecified".
    if (entry.reason !== 'unspecified') {
      const code = new asn1js.Enumerated({ value: REVOCATION_REASON_CODES[entry.reason] });
      rc.crlEntryExtensions = new pkijs.Extensions({
        extensions: [new pkijs.Extension({ extnID: OID.crlReason, critical: false, extnValue: code.toBER(false), parsedValue: code })],
      });
    }
    return rc;
  });
  if (entries.length > 0) crl.revokedCertificates = entries;
  const issuerKeyId = p.issuer.subjectKeyIdentifier;
  const extensions = [
    new pkijs.Extension({ extnID: OID.crlNumber, critical: false, extnValue: asn1js.Integer.fromBigInt(p.crlNumber).toBER(false) }),
  ];
  if (issuerKeyId) extensions.unshift(authorityKeyIdentifierExtension(new Uint8Array(Buffer.from(issuerKeyId, 'hex'))));
  crl.crlExtensions = new pkijs.Extensions({ extensions });
  await crl.sign(p.key, profileOfKey(p.key).hash);
  return Crl.fromDer(new Uint8Array(crl.toSchema(true).toBER(false)));
}
