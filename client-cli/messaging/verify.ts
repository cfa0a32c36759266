/**
 * Local verification of a received message: the reader's CLI does not take the server's word.
 * The detached CMS signature (RFC 5652 §5.6) over the exact header bytes is checked with the
 * signer's chain up to the pinned root and against the CRL (RFC 5280 §6.1, §6.3) at the time the
 * server received the message (the server's word over TLS; never the signer's own signingTime),
 * then the signed header is held against the message: sender = the signer's login, body SHA-384
 * and size, the ESS label (RFC 2634 §5.4) = the header's label, that label within the signer's
 * clearance, and id/conversation equal to what the server filed it under.
 */
import { Certificate, Crl, dominates, isClearance, verifyDetached, type Clearance } from '../../pki/index.js';
import { parseHeader, sha384B64, type MessageHeader } from './header.js';

/** What a message is verified against; fetched once per command run, held in memory only. */
export interface Trust {
  /** The profile's pinned CA certificate(s). */
  anchors: Certificate[];
  /** Issuing CA certificates (served by /v1/ca; trusted only as far as they chain to an anchor). */
  intermediates: Certificate[];
  /** CRLs whose signatures were already checked (crl-check.ts). */
  crls: Crl[];
  /**
   * Require a CRL from the signer's issuing CA among `crls`. A session always holds the appliance's
   * current one (`/v1/crl`): without it (say, the root's CRL served in its place) a revoked signer
   * verified with no word said.
   */
  requireSignerCrl?: boolean;
}

/** The parts of an API `message` that verification reads. */
export interface ReceivedMessage {
  id: string;
  conversation: string;
  header: string;
  /** Base64 DER. */
  signature: string;
  /** Base64; absent for auditors and officers, who verify without reading the body. */
  body?: string | null;
  receivedAt: string;
}

export type MessageFailureReason =
  | 'header-invalid'
  | 'sender-mismatch'
  | 'body-mismatch'
  | 'label-mismatch'
  | 'label-above-clearance'
  | 'envelope-mismatch'
  | string;

export type MessageVerification =
  | {
      ok: true;
      header: MessageHeader;
      /** The signer certificate's login (UID). */
      signer: string;
      signerCert: Certificate;
      /** The validated chain, signer first. */
      chain: Certificate[];
      signingTime?: Date;
      /** Set when the signer's certificate was revoked after the time it was judged at (receipt, or now). */
      revokedLater?: { at: Date; reason: string };
      /** False when no body was given (auditor view): the body digest was not checked. */
      bodyChecked: boolean;
    }
  | { ok: false; reason: MessageFailureReason; detail: string; header?: MessageHeader };

function fail(reason: MessageFailureReason, detail: string, header?: MessageHeader): MessageVerification {
  return { ok: false, reason, detail, ...(header ? { header } : {}) };
}

/**
 * Verifies one message in full. Never throws for a bad message: every problem is a reason.
 * @param opts.at - time the chain and CRL are judged at. Default: the message's `receivedAt`,
 *   which must then be the appliance's word, authenticated (read over the pinned TLS channel):
 *   a revoked key cannot backdate it. A caller holding only an unauthenticated receipt time (an
 *   evidence package's message.json) must pass `at` (now) instead.
 * @param opts.now - the clock used when `receivedAt` is absent or not a date. Default: `new Date()`.
 *   Never the signature's signingTime: that is the signer's own claim, and a stolen key can write any.
 */
export async function verifyMessage(m: ReceivedMessage, trust: Trust, opts: { at?: Date; now?: () => Date } = {}): Promise<MessageVerification> {
  const parsed = parseHeader(m.header);
  if (!parsed.ok) return fail('header-invalid', parsed.detail);
  const header = parsed.header;
  const headerBytes = new TextEncoder().encode(m.header);
  const receivedAt = new Date(m.receivedAt);
  const at = opts.at ?? (Number.isNaN(receivedAt.getTime()) ? (opts.now ?? (() => new Date()))() : receivedAt);
  const result = await verifyDetached(new Uint8Array(Buffer.from(m.signature, 'base64')), headerBytes, {
    trust: { trustAnchors: trust.anchors, intermediates: trust.intermediates, crls: trust.crls, at, ...(trust.requireSignerCrl ? { requireCrl: 'leaf' as const } : {}) },
  });
  if (!result.ok) return fail(result.reason, result.detail, header);
  const signer = result.signer;
  const login = signer.subject.login ?? signer.subject.commonName;
  if (header.sender !== login) {
    return fail('sender-mismatch', `the header names sender ${header.sender} but the signer's certificate is ${login ?? signer.subjectString}`, header);
  }
  if (header.id !== m.id || header.conversation !== m.conversation) {
    return fail('envelope-mismatch', `the server filed message ${m.id} in ${m.conversation} but the signed header says ${header.id} in ${header.conversation}`, header);
  }
  if (result.label !== header.label) {
    return fail('label-mismatch', `the header says ${header.label} but the signature's security label is ${result.label ?? 'absent'}`, header);
  }
  const clearance = signer.clearance;
  if (!clearance || !isClearance(header.label) || !dominates(clearance as Clearance, header.label)) {
    return fail('label-above-clearance', `label ${header.label} is above the signer's clearance ${clearance ?? '(none)'}`, header);
  }
  let bodyChecked = false;
  if (m.body !== undefined && m.body !== null) {
    const body = new Uint8Array(Buffer.from(m.body, 'base64'));
    if (body.length !== header.body.size) return fail('body-mismatch', `the body is ${body.length} bytes; the header says ${header.body.size}`, header);
    if ((await sha384B64(body)) !== header.body.sha384) return fail('body-mismatch', 'the body SHA-384 differs from the signed digest', header);
    bodyChecked = true;
  }
  return {
    ok: true,
    header,
    signer: login ?? signer.subjectString,
    signerCert: signer,
    chain: result.chain ?? [signer],
    ...(result.signingTime ? { signingTime: result.signingTime } : {}),
    ...(result.revokedLater ? { revokedLater: { at: result.revokedLater.revocationDate, reason: result.revokedLater.reason } } : {}),
    bodyChecked,
  };
}

/** One line saying why a message failed, for people. */
export function failureText(v: Extract<MessageVerification, { ok: false }>): string {
  return `${v.reason}: ${v.detail}`;
}
