/**
 * What every messaging command works with, built once per run: the JSON client with the session,
 * the user's login, key and certificate for signing, the trust material for local verification
 * (the served issuing CA, its CRL and the root's CRL, held in memory, and fetched again once
 * either CRL held is past its nextUpdate; the newest root CRL is also kept in the profile, so a
 * later answer cannot roll it back: kept-root-crl.ts), and the resolution of `<login|#group>` to a conversation.
 *
 * Every command that shows, saves or exports a message (read, watch, download, evidence export,
 * verify) verifies it through {@link MessagingSession.verify}, so each judges the issuing CA
 * against the root CRL exactly as `sigil verify` does (root-crl.ts): a message received after the
 * root key ceremony revoked the issuing CA fails as revoked everywhere, not only in `sigil verify`.
 */
import { Certificate, Crl, signDetached, type Clearance } from '../../pki/index.js';
import { CaSchema, CrlSchema } from '../api.js';
import { checkCrl, staleCrlWarning } from '../crl-check.js';
import type { HttpClient } from '../http.js';
import type { Credentials, Runtime } from '../runtime.js';
import { ConversationSchema, GroupSchema, SendReceiptSchema, type Conversation, type SendReceipt } from './api.js';
import { buildHeader, type HeaderParams, type MessageHeader } from './header.js';
import { RecipientInvalidError } from './errors.js';
import { holdRootCrl, profileRootCrlStore, type HeldRootCrl } from './kept-root-crl.js';
import { judgeIssuingCa, judgedAt, staleRootCrlWarning, type OnlineIssuingCaRevocation } from './root-crl.js';
import { endpointOf, type Endpoint } from './transport.js';
import { verifyMessage, type MessageVerification, type ReceivedMessage, type Trust } from './verify.js';
import { oneLine } from '../terminal-text.js';

/**
 * The trust material held, with the earlier nextUpdate of the two CRLs and when it was fetched
 * (the runtime clock).
 */
interface HeldTrust {
  trust: Trust;
  /** The root's CRL, its signature checked by the pinned root: the newer of the served and the kept one (kept-root-crl.ts). */
  root: HeldRootCrl;
  crlNumber: string;
  nextUpdate: Date;
  fetchedAt: Date;
}

/** A message's verdict with its issuing CA judged against the root CRL (root-crl.ts). */
export interface JudgedMessage {
  v: MessageVerification;
  issuingCa: OnlineIssuingCaRevocation;
}

/**
 * While the appliance serves a CRL that is already past its nextUpdate, how long to keep it
 * before asking again (a long `sigil watch` would otherwise fetch it for every message).
 */
export const STALE_CRL_RETRY_MS = 60_000;

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
  private held?: Promise<HeldTrust>;
  private endpointOnce?: Promise<Endpoint>;
  /** The keys of the warnings already given this run ({@link warnOnce}). */
  private readonly warned = new Set<string>();

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
   * Pinned root, issuing CA from /v1/ca (trusted only as far as it chains to the pin), the CRL
   * from /v1/crl with its signature checked, and the root CRL from /v1/crl/root signed by the
   * pinned root; in memory only. Fetched on first use, and again once either CRL held is past its
   * nextUpdate at the runtime clock: a long `sigil watch` keeps verifying live messages against
   * the CRLs the appliance publishes meanwhile. A CRL that is already stale when fetched is
   * reported once on stderr (`warning: …`).
   * @throws NotTrustedError when a CRL is not signed by a trusted CA (first fetch; a failed
   *   refetch keeps the CRLs held, and verification then says crl-stale).
   */
  async trust(): Promise<Trust> {
    return (await this.current()).trust;
  }

  /** The root CRL held beside {@link trust} (checked by the pinned root); undefined when neither the appliance nor the profile has one. */
  async rootCrl(): Promise<Crl | undefined> {
    return (await this.current()).root.crl;
  }

  private async current(): Promise<HeldTrust> {
    const p = (this.held ??= this.fetchTrust());
    const h = await p;
    const now = this.rt.io.now();
    if (h.nextUpdate >= now) return h;
    // Stale now. A CRL fetched while it was still fresh is asked again at once; one that was
    // already stale when fetched (the appliance has nothing newer) only every STALE_CRL_RETRY_MS.
    const fetchedFresh = h.fetchedAt <= h.nextUpdate;
    if (!fetchedFresh && now.getTime() - h.fetchedAt.getTime() < STALE_CRL_RETRY_MS) return h;
    return this.refetch(p);
  }

  /** Fetches again, unless another caller already replaced `from`; keeps `from` if the fetch fails. */
  private refetch(from: Promise<HeldTrust>): Promise<HeldTrust> {
    if (this.held !== from) return this.held as Promise<HeldTrust>;
    const next = this.fetchTrust().catch(async (err: unknown) => {
      this.warn(`could not fetch a newer CRL (${err instanceof Error ? err.message : String(err)}); keeping the one held`);
      const old = await from;
      return { ...old, fetchedAt: this.rt.io.now() };
    });
    this.held = next;
    return next;
  }

  private async fetchTrust(): Promise<HeldTrust> {
    const pinned = await this.rt.profile.read('ca');
    const [ca, crl, root] = await Promise.all([
      this.http.get('/v1/ca', CaSchema),
      this.http.get('/v1/crl', CrlSchema),
      holdRootCrl(this.http, pinned, profileRootCrlStore(this.rt.profile)),
    ]);
    for (const w of root.warnings) this.warnOnce(w);
    const rootCrl = root.crl;
    const now = this.rt.io.now();
    const checked = await checkCrl(crl.crl, pinned, ca.chain, now);
    const warning = staleCrlWarning(checked, now);
    // One warning per stale CRL, not per fetch: the text names the time now.
    if (warning) this.warnOnce(warning, `stale crl #${checked.crlNumber}`);
    const rootWarning = staleRootCrlWarning(rootCrl, now, root.crl ? root.from : undefined);
    if (rootWarning && rootCrl) this.warnOnce(rootWarning, `stale root crl #${rootCrl.crlNumber}`);
    return {
      trust: {
        anchors: Certificate.fromPemBundle(pinned),
        intermediates: Certificate.fromPemBundle(ca.chain).filter((c) => c.isCA),
        crls: [Crl.fromPem(crl.crl)],
        requireSignerCrl: true,
      },
      root,
      crlNumber: checked.crlNumber,
      nextUpdate: rootCrl && rootCrl.nextUpdate < checked.nextUpdate ? rootCrl.nextUpdate : checked.nextUpdate,
      fetchedAt: now,
    };
  }

  /** One `warning: …` line on stderr, also with --json (stderr never carries data); it may quote the server. */
  private warn(text: string): void {
    this.rt.io.stderr.write(`warning: ${oneLine(text)}\n`);
  }

  /** {@link warn}, once per run for the same `key` (a long `sigil watch` fetches the CRLs again). */
  private warnOnce(text: string, key = text): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warn(text);
  }

  /** Verifies `m` locally, its issuing CA judged against the root CRL ({@link judge}). */
  async verify(m: ReceivedMessage): Promise<MessageVerification> {
    return (await this.judge(m)).v;
  }

  /**
   * Verifies `m` locally (verify.ts) and judges its issuing CA against the root CRL at the
   * appliance's receipt time (root-crl.ts), as `sigil verify` reports it. When a CRL held is stale
   * for the message's receipt time (the appliance's clock ahead of this workstation's), the CRLs
   * are fetched once more and the message checked again before a failure is reported.
   */
  async judge(m: ReceivedMessage): Promise<JudgedMessage> {
    const once = async (h: HeldTrust): Promise<JudgedMessage> => {
      const v = await verifyMessage(m, h.trust);
      return judgeIssuingCa(v, h.root, judgedAt(m, this.rt.io.now()), [...h.trust.anchors, ...h.trust.intermediates]);
    };
    const judged = await once(await this.current());
    if (judged.v.ok || judged.v.reason !== 'crl-stale') return judged;
    return once(await this.refetch(this.held as Promise<HeldTrust>));
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

  /**
   * Builds the header of a message from this user, signs it with the label as ESS label, and
   * posts it with its body (`POST /v1/messages`): what `send` and the meeting commands send.
   */
  async post(p: Omit<HeaderParams, 'sender' | 'sentAt' | 'id'>): Promise<{ receipt: SendReceipt; header: MessageHeader }> {
    const now = this.rt.io.now();
    const { header, text } = await buildHeader({ ...p, sender: this.login, sentAt: now });
    const signature = await this.sign(new TextEncoder().encode(text), p.label, now);
    const receipt = await this.http.post('/v1/messages', { header: text, signature, body: Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength).toString('base64') }, SendReceiptSchema);
    return { receipt, header };
  }

  /** The clearance in the user's own certificate. */
  clearance(): Clearance | undefined {
    return Certificate.fromPem(this.creds.certPem).clearance;
  }
}
