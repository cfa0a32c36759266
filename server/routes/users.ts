/**
 * Officer routes on accounts and their certificates (API.md "Officer"). Every route needs an
 * officer session; officers never reach message bodies through these.
 *
 * Accounts made before names were capped at 64 characters (they were allowed 128) are handled like
 * any other: the `:login` parameter never depended on the names. What such an account cannot get is
 * a certificate (CN and OU hold 64): issuance says so (ACCOUNT_NAME_TOO_LONG), `/name` shortens the
 * names, and `DELETE` removes an account that never had a certificate.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { Clearance, LoginParam, Login, Name, NamesBody, Password, Role } from '../accounts/schemas.js';
import type { AppDeps } from '../app.js';
import { certificateView } from '../certs/certificate-service.js';
import { requireRole } from '../middleware/require-role.js';
import { session } from '../middleware/session.js';
import type { AppEnv } from '../middleware/types.js';
import { parseJson, parseParams } from '../middleware/validate.js';
import { viewOf } from './auth.js';

const CreateBody = z
  .object({ login: Login, fullName: Name, department: Name, rank: Name.optional(), clearance: Clearance, role: Role })
  .strict();
const ClearanceBody = z.object({ clearance: Clearance }).strict();
const CsrBody = z.object({ csr: z.string().min(1).max(32 * 1024) }).strict();
const P12Body = z.object({ password: Password.min(12).optional() }).strict();

export function usersRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { sessions, accounts, accountService, certificateService } = deps.appliance;
  app.use('*', session({ sessions, accounts }), requireRole('officer'));
  const officer = (c: { get(k: 'principal'): { account: { login: string } } }) => c.get('principal').account.login;
  const loginOf = (c: { req: { param(): Record<string, string> } }) => parseParams(c.req.param(), LoginParam).login;

  app.post('/', async (c) => {
    const body = await parseJson(c, CreateBody);
    const { account, envelope } = await accountService.create(body, officer(c));
    return c.json({ account: await viewOf(deps, account.login), envelope }, 201);
  });

  app.get('/', async (c) => {
    const all = await accounts.list();
    return c.json({ users: await Promise.all(all.map((a) => viewOf(deps, a.login))) });
  });

  app.get('/:login', async (c) => c.json(await viewOf(deps, loginOf(c))));

  app.post('/:login/disable', async (c) => {
    const a = await accountService.disable(loginOf(c), officer(c));
    return c.json(await viewOf(deps, a.login));
  });
  app.post('/:login/enable', async (c) => {
    const a = await accountService.enable(loginOf(c), officer(c));
    return c.json(await viewOf(deps, a.login));
  });
  app.post('/:login/unlock', async (c) => {
    const a = await accountService.unlock(loginOf(c), officer(c));
    return c.json(await viewOf(deps, a.login));
  });
  app.post('/:login/reset', async (c) => {
    const { account, envelope } = await accountService.reset(loginOf(c), officer(c));
    return c.json({ account: await viewOf(deps, account.login), envelope });
  });
  app.post('/:login/clearance', async (c) => {
    const login = loginOf(c);
    const body = await parseJson(c, ClearanceBody);
    const a = await accountService.changeClearance(login, body.clearance, officer(c));
    return c.json(await viewOf(deps, a.login));
  });

  app.post('/:login/name', async (c) => {
    const login = loginOf(c);
    const body = await parseJson(c, NamesBody);
    const a = await accountService.rename(login, body, officer(c));
    return c.json(await viewOf(deps, a.login));
  });
  app.delete('/:login', async (c) => {
    const login = loginOf(c);
    await accountService.delete(login, officer(c));
    return c.json({ login, deleted: true });
  });

  app.post('/:login/certificates', async (c) => {
    const login = loginOf(c);
    const body = await parseJson(c, CsrBody);
    const { certificate, chainPem } = await certificateService.issueFromCsr(login, body.csr, officer(c));
    return c.json({ certificate: certificate.pem, chain: chainPem, serial: certificate.serialNumber }, 201);
  });
  app.post('/:login/certificates/p12', async (c) => {
    const login = loginOf(c);
    const body = await parseJson(c, P12Body);
    const r = await certificateService.issuePkcs12(login, officer(c), body.password);
    return c.json({ p12: Buffer.from(r.p12).toString('base64'), password: r.password, serial: r.certificate.serialNumber }, 201);
  });
  app.get('/:login/certificates', async (c) => {
    const list = await certificateService.list(loginOf(c));
    return c.json({ certificates: list.map(certificateView) });
  });
  return app;
}
