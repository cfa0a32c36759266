/**
 * A parsed, read-only X.509 v3 certificate (RFC 5280 §4.1). Creation lives in
 * `certificate-builder.ts`; this module only reads. Parsed fields are computed once and cached, so
 * validation on the message hot path does not re-parse or re-import keys.
 */
import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Clearance } from './clearance.js';
import { MalformedInputError } from './errors.js';
import { decodeDer, integerHex, toHex } from './der.js';
import {
  EKU_OIDS,
  KEY_USAGE_BITS,
  OID,
  bitsSet,
  bytesToIp,
  oidFromAsn1Text,
  readClearance,
  type KeyUsage,
} from './extensions.js';
import { nameToString, parseName, type DistinguishedName } from './names.js';
import { derToPem, splitPemBlocks, toDer } from './pem.js';
import type { ProfileName } from './profiles.js';
import { importSpki, profileOfSpki } from './spki.js';
import type { CryptoKey } from './webcrypto.js';

export type { DistinguishedName } from './names.js';

export interface SubjectAltNames {
  dns: string[];
  ip: string[];
}

const PROCESSED_EXTENSIONS = new Set<string>([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.subjectDirectoryAttributes,
]);

const EKU_NAMES = new Map<string, string>(Object.entries(EKU_OIDS).map(([name, oid]) => [oid, name]));

export class Certificate {
  /** The pkijs object; internal to pki/ (other folders use the getters). */
  readonly asn: pkijs.Certificate;
  readonly der: Uint8Array;
  #fingerprint?: string;
  #publicKey?: Promise<CryptoKey>;
  #subjectDer?: Buffer;
  #issuerDer?: Buffer;
  #clearance?: { value: Clearance | undefined };
  /** Signature checks already done against issuers, by issuer fingerprint. */
  readonly #verifiedBy = new Map<string, Promise<boolean>>();

  private constructor(der: Uint8Array, asn: pkijs.Certificate) {
    this.der = der;
    this.asn = asn;
  }

  /**
   * Parses one DER certificate.
   * @throws MalformedInputError for anything that is not exactly one X.509 certificate.
   */
  static fromDer(der: Uint8Array | ArrayBuffer): Certificate {
    const bytes = new Uint8Array(der instanceof Uint8Array ? der : new Uint8Array(der)).slice();
    const asn = decodeDer(bytes, 'X.509 certificate', (schema) => new pkijs.Certificate({ schema }));
    if (asn.version !== 2) throw new MalformedInputError(`expected an X.509 v3 certificate, found version ${asn.version + 1}`);
    return new Certificate(bytes, asn);
  }

  /** Parses the first "CERTIFICATE" block of `pem`. @throws MalformedInputError */
  static fromPem(pem: string): Certificate {
    return Certificate.fromDer(toDer(pem, 'CERTIFICATE'));
  }

  /** Every "CERTIFICATE" block of `pem`, in order (a chain file). @throws MalformedInputError when there is none. */
  static fromPemBundle(pem: string): Certificate[] {
    if (typeof pem !== 'string') throw new MalformedInputError('expected PEM text with certificates');
    const certs = splitPemBlocks(pem)
      .filter((b) => b.label === 'CERTIFICATE')
      .map((b) => Certificate.fromDer(b.der));
    if (certs.length === 0) throw new MalformedInputError('expected at least one PEM "CERTIFICATE" block, found none');
    return certs;
  }

  get pem(): string {
    return derToPem(this.der, 'CERTIFICATE');
  }

  /** Serial number as lowercase hex without leading "00". */
  get serialNumber(): string {
    return integerHex(this.asn.serialNumber);
  }

  get subject(): DistinguishedName {
    return parseName(this.asn.subject);
  }

  get issuer(): DistinguishedName {
    return parseName(this.asn.issuer);
  }

  get subjectString(): string {
    return nameToString(this.asn.subject);
  }

  get issuerString(): string {
    return nameToString(this.asn.issuer);
  }

  /** DER of the subject name, for byte comparison with issuer names. */
  get subjectNameDer(): Buffer {
    return (this.#subjectDer ??= Buffer.from(this.asn.subject.toSchema().toBER(false)));
  }

  get issuerNameDer(): Buffer {
    return (this.#issuerDer ??= Buffer.from(this.asn.issuer.toSchema().toBER(false)));
  }

  get notBefore(): Date {
    return this.asn.notBefore.value;
  }

  get notAfter(): Date {
    return this.asn.notAfter.value;
  }

  #extension(oid: string): pkijs.Extension | undefined {
    return this.asn.extensions?.find((e) => e.extnID === oid);
  }

  get isCA(): boolean {
    const bc = this.#extension(OID.basicConstraints)?.parsedValue as pkijs.BasicConstraints | undefined;
    return bc?.cA === true;
  }

  /** basicConstraints pathLenConstraint, when the certificate is a CA and sets one. */
  get pathLength(): number | undefined {
    const bc = this.#extension(OID.basicConstraints)?.parsedValue as pkijs.BasicConstraints | undefined;
    if (!bc?.cA || bc.pathLenConstraint === undefined) return undefined;
    return typeof bc.pathLenConstraint === 'number' ? bc.pathLenConstraint : bc.pathLenConstraint.valueBlock.valueDec;
  }

  /** keyUsage bit names (RFC 5280 §4.2.1.3); empty when the extension is absent. */
  get keyUsage(): KeyUsage[] {
    const ku = this.#extension(OID.keyUsage)?.parsedValue;
    if (!(ku instanceof asn1js.BitString)) return [];
    return bitsSet(ku)
      .filter((b) => b < KEY_USAGE_BITS.length)
      .map((b) => KEY_USAGE_BITS[b]);
  }

  /** True when the certificate has a keyUsage extension (absent means "any" to RFC 5280). */
  get hasKeyUsage(): boolean {
    return this.#extension(OID.keyUsage) !== undefined;
  }

  /** extendedKeyUsage purposes by name ('clientAuth', 'serverAuth', 'emailProtection', 'sigilAuditSigning') or OID. */
  get extendedKeyUsage(): string[] {
    const eku = this.#extension(OID.extKeyUsage)?.parsedValue as pkijs.ExtKeyUsage | undefined;
    return (eku?.keyPurposes ?? []).map((text) => oidFromAsn1Text(text)).map((oid) => EKU_NAMES.get(oid) ?? oid);
  }

  /** The holder's clearance from the subjectDirectoryAttributes Clearance attribute, if any. */
  get clearance(): Clearance | undefined {
    // Read once: the server asks on every request, and decoding the attribute is asn1js work.
    if (!this.#clearance) {
      const sda = this.#extension(OID.subjectDirectoryAttributes)?.parsedValue as pkijs.SubjectDirectoryAttributes | undefined;
      this.#clearance = { value: sda ? readClearance(sda) : undefined };
    }
    return this.#clearance.value;
  }

  get subjectAltNames(): SubjectAltNames {
    const out: SubjectAltNames = { dns: [], ip: [] };
    const san = this.#extension(OID.subjectAltName)?.parsedValue as pkijs.AltName | undefined;
    for (const gn of san?.altNames ?? []) {
      if (gn.type === 2 && typeof gn.value === 'string') out.dns.push(gn.value);
      if (gn.type === 7 && gn.value instanceof asn1js.OctetString) out.ip.push(bytesToIp(gn.value.valueBlock.valueHexView));
    }
    return out;
  }

  /** subjectKeyIdentifier bytes as hex, if present. */
  get subjectKeyIdentifier(): string | undefined {
    const v = this.#extension(OID.subjectKeyIdentifier)?.parsedValue;
    return v instanceof asn1js.OctetString ? toHex(v.valueBlock.valueHexView) : undefined;
  }

  /** authorityKeyIdentifier keyIdentifier as hex, if present. */
  get authorityKeyIdentifier(): string | undefined {
    const aki = this.#extension(OID.authorityKeyIdentifier)?.parsedValue as pkijs.AuthorityKeyIdentifier | undefined;
    return aki?.keyIdentifier ? toHex(aki.keyIdentifier.valueBlock.valueHexView) : undefined;
  }

  /** OIDs of critical extensions outside those Sigil processes (RFC 5280 §4.2 says reject such certificates). */
  get unknownCriticalExtensions(): string[] {
    return (this.asn.extensions ?? []).filter((e) => e.critical && !PROCESSED_EXTENSIONS.has(e.extnID)).map((e) => e.extnID);
  }

  /** SHA-256 hex of the DER, computed once. */
  get fingerprint(): string {
    return (this.#fingerprint ??= createHash('sha256').update(this.der).digest('hex'));
  }

  /** The algorithm profile of the subject public key, or undefined when it fits none. */
  get profile(): ProfileName | undefined {
    return profileOfSpki(this.asn.subjectPublicKeyInfo)?.name;
  }

  /** DER SubjectPublicKeyInfo. */
  get publicKeySpki(): Uint8Array {
    return new Uint8Array(this.asn.subjectPublicKeyInfo.toSchema().toBER(false));
  }

  /** True when issuer and subject names are the same (self-issued, RFC 5280 §3.2). */
  get isSelfIssued(): boolean {
    return this.subjectNameDer.equals(this.issuerNameDer);
  }

  /**
   * The subject public key as a WebCrypto verification key, imported once.
   * @throws UnknownAlgorithmError when the key fits no profile.
   */
  publicKey(): Promise<CryptoKey> {
    if (!this.#publicKey) {
      this.#publicKey = importSpki(this.asn.subjectPublicKeyInfo, `certificate ${this.subjectString}`);
      this.#publicKey.catch(() => {
        this.#publicKey = undefined;
      });
    }
    return this.#publicKey;
  }

  /**
   * True when `issuer`'s subject is this certificate's issuer and its key verifies this signature.
   * The answer is cached per issuer (the DER of both never changes).
   */
  isIssuedBy(issuer: Certificate): Promise<boolean> {
    if (!this.issuerNameDer.equals(issuer.subjectNameDer)) return Promise.resolve(false);
    let result = this.#verifiedBy.get(issuer.fingerprint);
    if (!result) {
      result = this.#verifySignature(issuer);
      this.#verifiedBy.set(issuer.fingerprint, result);
    }
    return result;
  }

  async #verifySignature(issuer: Certificate): Promise<boolean> {
    try {
      return await this.asn.verify(issuer.asn);
    } catch {
      return false;
    }
  }
}
