/**
 * What every messaging command works with, built once per run: the JSON client with the session,
 * the user's login, key and certificate for signing, the trust material for local verification
 * (the served issuing CA and the CRL, fetched once and kept in memory only), and the resolution
 * of `<login|#group>` to a conversation.
 */
import { Certificate, Crl, signDetached, type Clearance } from '../../pki/index.js';
import { CaSchema, CrlSchema } from '../api.js';
import { checkCrl } from '../crl-check.js';
import type { HttpClient } from '../http.js';
import type { Credentials, Runtime } from '../runtime.js';
import { ConversationSchema, GroupSchema, type Conversation } from './api.js';
import { RecipientInvalidError } from './errors.js';
import { endpointOf, type Endpoint } from './transport.js';
import { verifyMessage, type MessageVerification, type ReceivedMessage, type Trust } from './verify.js';

const LOGIN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const GROUP = /^#(.{1,128})$/;

/** A parsed `<login|#group>` argument. */
export type Recipient = { kind: 'direct'; login: string } | { kind: 'group'; name: string };

/** @throws RecipientInvalidError (exit 2) for anything else. */
export function parseRecipient(text: string): Recipient {
  const g = GROUP.exec(text);
  if (g) return { kind: 'group', name: g[1] as string };
  if (LOGIN.test(text)) return { kind: 'direct', login: text };
  throw new RecipientInvalidError(text);
}

export class MessagingSession {
  private trustOnce?: Promise<Trust>;
  private endpointOnce?: Promise<Endpoint>;

  private constructor(
    readonly rt: Runtime,
    readonly http: HttpClient,
    readonly creds: Credentials,
    /** The logged-in user's login. */
    readonly login: string,
  ) {}

  /** @throws NotLoggedInError, credential errors (see Runtime). */
  static async open(rt: Runtime): Promise<MessagingSession> {
    const http = await rt.client({ session: true });
    const session = await rt.requireSession();
    return new MessagingSession(rt, http, await rt.unlock(), session.login);
  }

  endpoint(): Promise<Endpoint> {
    return (this.endpointOnce ??= endpointOf(this.rt));
  }

  /**
   * Pinned root, issuing CA from /v1/ca (trusted only as far as it chains to the pin) and the
   * CRL from /v1/crl with its signature checked. Once per run, in memory only.
   * @throws NotTrustedError when the CRL is not signed by a trusted CA.
   */
  trust(): Promise<Trust> {
    return (this.trustOnce ??= (async () => {
      const pinned = await this.rt.profile.read('ca');
      const [ca, crl] = await Promise.all([this.http.get('/v1/ca', CaSchema), this.http.get('/v1/crl', CrlSchema)]);
      await checkCrl(crl.crl, pinned, ca.chain, this.rt.io.now());
      return {
        anchors: Certificate.fromPemBundle(pinned),
        intermediates: Certificate.fromPemBundle(ca.chain).filter((c) => c.isCA),
        crls: [Crl.fromPem(crl.crl)],
      };
    })());
  }

  async verify(m: ReceivedMessage): Promise<MessageVerification> {
    return verifyMessage(m, await this.trust());
  }

  /** The conversation `<login|#group>` names; a direct one is created on first use (idempotent). */
  async resolve(text: string): Promise<Conversation> {
    const r = parseRecipient(text);
    if (r.kind === 'direct') return this.http.post('/v1/conversations/direct', { peer: r.login }, ConversationSchema);
    const group = await this.http.get(`/v1/groups/${encodeURIComponent(r.name)}`, GroupSchema);
    return this.http.get(`/v1/conversations/${encodeURIComponent(group.id)}`, ConversationSchema);
  }

  /** Detached CMS SignedData (RFC 5652 §5) over `bytes` with the user's key; base64 DER. */
  async sign(bytes: Uint8Array, label?: Clearance, at: Date = this.rt.io.now()): Promise<string> {
    const der = await signDetached({
      content: bytes,
      signerCert: Certificate.fromPem(this.creds.certPem),
      signerKey: this.creds.key,
      signingTime: at,
      ...(label ? { label } : {}),
    });
    return Buffer.from(der).toString('base64');
  }

  /** The clearance in the user's own certificate. */
  clearance(): Clearance | undefined {
    return Certificate.fromPem(this.creds.certPem).clearance;
  }
}
