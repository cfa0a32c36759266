/**
 * Reading what a CMS signature claims — signing time, label, signer, digest — without verifying it,
 * for listings and audit displays only, never for a decision.
 */
import type { Clearance } from './clearance.js';
import { CMS_OID, hashOfDigestOid, type HashName } from './cms-algorithms.js';
import { MalformedCmsError } from './cms-errors.js';
import { CmsParseError, octets, parseSignedData, time } from './cms-parse.js';
import { ID_AA_SECURITY_LABEL, readSecurityLabel } from './ess-label.js';

/** What a signature claims, read without verifying it (for listings and audit displays). */
export interface SignedAttributesSummary {
  signingTime?: Date;
  label?: Clearance;
  /** Signer serial number as lowercase hex, when identified by issuer and serial. */
  signerSerial?: string;
  /** Signer subjectKeyIdentifier as hex, when identified by key identifier. */
  signerKeyId?: string;
  digestAlgorithm?: HashName;
  /** The signed messageDigest (hex). */
  messageDigest?: string;
}

/**
 * Reads signingTime, label, signer serial and digest algorithm from a signature WITHOUT verifying
 * it: for display only, never for a decision.
 * @throws MalformedCmsError (`CMS_MALFORMED`) when the bytes are not a SignedData Sigil can read.
 */
export function inspectSignature(signature: Uint8Array): SignedAttributesSummary {
  try {
    const { signer } = parseSignedData(signature);
    const out: SignedAttributesSummary = {
      signerSerial: signer.serialHex,
      signerKeyId: signer.skiHex,
      digestAlgorithm: hashOfDigestOid(signer.digestOid),
    };
    const t = signer.attributes.get(CMS_OID.signingTime);
    if (t) out.signingTime = time(t, 'signingTime value');
    const d = signer.attributes.get(CMS_OID.messageDigest);
    if (d) out.messageDigest = octets(d, 'messageDigest value').toString('hex');
    const l = signer.attributes.get(ID_AA_SECURITY_LABEL);
    if (l) {
      const reading = readSecurityLabel(l);
      if (!reading.ok) throw new CmsParseError('malformed', reading.detail);
      out.label = reading.label;
    }
    return out;
  } catch (e) {
    throw new MalformedCmsError(`cannot read the signature: ${e instanceof Error ? e.message : 'decode error'}`, { cause: e });
  }
}
