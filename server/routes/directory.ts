/**
 * `GET /v1/directory` (API.md "Directory"): the people of the appliance, by department, for every
 * logged-in user — how a member of staff finds the login to write to without asking an officer.
 *
 * Only active accounts (a disabled one cannot receive: PEER_NOT_FOUND; one whose certificate is not
 * issued yet is listed, and refused the same way until it is), and of each only what a
 * colleague needs to address it: login, full name, department, role. Not the clearance, which is
 * on a need-to-know basis (a message above the recipient's clearance is refused with a clear error
 * anyway), and nothing of passwords, envelopes, lockouts or certificates: those are the officer's
 * `GET /v1/users`.
 */
import { Hono } from 'hono';
import { z } from 'zod';
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
  role: string;
}

/** Case does not separate: `Ops` and `ops` are one department to a reader. */
const byText = (x: string, y: string): number => x.localeCompare(y, 'en', { sensitivity: 'accent' });

export function directoryRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { sessions, accounts } = deps.appliance;
  app.use('*', session({ sessions, accounts }));

  app.get('/', async (c) => {
    const q = parseParams(c.req.query(), DirectoryQuery, 'query');
    // Departments are typed by officers and by people searching: compared without case.
    const department = q.department?.toLocaleLowerCase('en');
    const people: DirectoryEntry[] = (await accounts.list())
      .filter((a) => a.status === 'active' && (department === undefined || a.department.toLocaleLowerCase('en') === department))
      .map((a) => ({ login: a.login, fullName: a.fullName, department: a.department, role: a.role }))
      .sort((x, y) => byText(x.department, y.department) || byText(x.fullName, y.fullName) || x.login.localeCompare(y.login, 'en'));
    return c.json({ people });
  });
  return app;
}
