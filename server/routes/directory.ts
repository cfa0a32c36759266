/**
 * `GET /v1/directory` (API.md "Directory"): the people of the appliance by department and rank, for
 * every logged-in user — how a member of staff finds the login to write to without asking an
 * officer.
 *
 * Only active accounts (a disabled one cannot receive: PEER_NOT_FOUND; one whose certificate is not
 * issued yet is listed, and refused the same way until it is), and of each only what a colleague
 * needs to address it: login, full name, department, rank, role. Not the clearance, which is on a
 * need-to-know basis (a message above the recipient's clearance is refused with a clear error
 * anyway), and nothing of passwords, envelopes, lockouts or certificates: those are the officer's
 * `GET /v1/users`.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { AccountRecord } from '../accounts/account-store.js';
import { Name } from '../accounts/schemas.js';
import type { AppDeps } from '../app.js';
import { session } from '../middleware/session.js';
import type { AppEnv } from '../middleware/types.js';
import { parseParams } from '../middleware/validate.js';

const DirectoryQuery = z.object({ department: Name.optional() }).strict();

/** One person as the directory shows them. */
export interface DirectoryEntry {
  login: string;
  fullName: string;
  department: string;
  rank?: string;
  role: string;
}

/** Case does not separate: `Ops` and `ops` are one department, `colonel` is `Colonel`. */
const fold = (s: string): string => s.toLocaleLowerCase('en');
const byText = (x: string, y: string): number => x.localeCompare(y, 'en', { sensitivity: 'accent' });

/**
 * The directory's order: department; then rank as configured (`ranks`, highest first), other
 * ranks after those (by text), no rank last; then full name; then login.
 */
export function directoryOrder(ranks: readonly string[]): (x: AccountRecord, y: AccountRecord) => number {
  const place = new Map(ranks.map((r, i) => [fold(r), i] as const));
  const rankKey = (a: AccountRecord): number => (a.rank === null ? ranks.length + 1 : (place.get(fold(a.rank)) ?? ranks.length));
  return (x, y) =>
    byText(x.department, y.department) ||
    rankKey(x) - rankKey(y) ||
    (rankKey(x) === ranks.length ? byText(x.rank ?? '', y.rank ?? '') : 0) ||
    byText(x.fullName, y.fullName) ||
    x.login.localeCompare(y.login, 'en');
}

export function directoryRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { sessions, accounts } = deps.appliance;
  const order = directoryOrder(deps.config.ranks);
  app.use('*', session({ sessions, accounts }));

  app.get('/', async (c) => {
    const q = parseParams(c.req.query(), DirectoryQuery, 'query');
    const department = q.department === undefined ? undefined : fold(q.department);
    const people: DirectoryEntry[] = (await accounts.list())
      .filter((a) => a.status === 'active' && (department === undefined || fold(a.department) === department))
      .sort(order)
      .map((a) => ({ login: a.login, fullName: a.fullName, department: a.department, ...(a.rank !== null ? { rank: a.rank } : {}), role: a.role }));
    return c.json({ people });
  });
  return app;
}
