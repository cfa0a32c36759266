/**
 * What the online audit commands share: the trust for checkpoints (the profile's pinned CA, the
 * served chain, and the current CRL when the appliance has published one) and the saved
 * checkpoint's location.
 */
import type { HttpClient } from '../http.js';
import type { Runtime } from '../runtime.js';
import { CrlAnswerSchema } from './api.js';
import { savedCheckpointPath, trustFrom, type Trust } from './checkpoint.js';

/** The served CRL PEM, or undefined when none was published or it cannot be fetched. */
export async function fetchCrlPem(http: HttpClient): Promise<string | undefined> {
  try {
    return (await http.get('/v1/crl', CrlAnswerSchema)).crl;
  } catch {
    return undefined;
  }
}

/** Trust for checkpoints of this profile's appliance. */
export async function onlineTrust(rt: Runtime, http: HttpClient, chainPem: string): Promise<{ trust: Trust; pinnedPem: string; crlPem?: string }> {
  const pinnedPem = await rt.profile.read('ca');
  const crlPem = await fetchCrlPem(http);
  return { trust: trustFrom(pinnedPem, chainPem, crlPem), pinnedPem, ...(crlPem ? { crlPem } : {}) };
}

/** `--since` value or the profile's saved checkpoint path. */
export function savedPath(rt: Runtime, flag?: string): string {
  return flag ?? savedCheckpointPath(rt.profile.dir);
}
