/**
 * Login routes (API.md "Auth"): challenge, login, first-login, password change, logout, and
 * `GET /v1/me` (exported as `meRoutes`).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { accountView } from '../accounts/account-service.js';
import { Base64, Login, Password } from '../accounts/schemas.js';
import type { AppDeps } from '../app.js';
import { parseJson } from '../middleware/validate.js';
import { session } from '../middleware/session.js';
import type { AppEnv } from '../middleware/types.js';

const ChallengeBody = z.object({ login: Login }).strict();
const LoginBody = z
  .object({
    login: Login,
    password: Password,
    nonce: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'expected the nonce from /v1/auth/challenge'),
    signature: Base64,
  })
  .strict();
const FirstLoginBody = z.object({ newPassword: Password, receipt: Base64 }).strict();
const PasswordBody = z.object({ currentPassword: Password, newPassword: Password }).strict();

/** The account view with its current active certificate. */
export async function viewOf(deps: AppDeps, login: string) {
  const { accounts, certificates } = deps.appliance;
  const a = await accounts.require(login);
  const active = (await certificates.ofLogin(login)).filter((r) => r.status === 'active').at(-1);
  return accountView(a, deps.now(), active);
}

export function authRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { loginService, sessions, accounts } = deps.appliance;
  const pending = session({ sessions, accounts, allowPendingPasswordChange: true });

  app.post('/challenge', async (c) => {
    const body = await parseJson(c, ChallengeBody);
    const { nonce, expiresAt } = loginService.challenge(body.login, c.get('clientCert'));
    return c.json({ nonce, expiresAt: expiresAt.toISOString() });
  });

  app.post('/login', async (c) => {
    const body = await parseJson(c, LoginBody);
    const r = await loginService.login(body, c.get('clientCert'), c.env?.incoming?.socket?.remoteAddress);
    return c.json({
      token: r.token,
      expiresAt: r.expiresAt.toISOString(),
      mustChangePassword: r.mustChangePassword,
      ...(r.envelopeSerial ? { envelopeSerial: r.envelopeSerial } : {}),
      account: await viewOf(deps, r.account.login),
    });
  });

  app.post('/first-login', pending, async (c) => {
    const body = await parseJson(c, FirstLoginBody);
    const p = c.get('principal');
    await loginService.firstLogin(p.account, p.session, body, c.get('clientCert'));
    return c.json({ ok: true });
  });

  app.post('/password', session({ sessions, accounts }), async (c) => {
    const body = await parseJson(c, PasswordBody);
    const p = c.get('principal');
    await loginService.changePassword(p.account, p.session, body);
    return c.json({ ok: true });
  });

  app.post('/logout', pending, async (c) => {
    const p = c.get('principal');
    await loginService.logout(p.account, p.session);
    return c.json({ ok: true });
  });
  return app;
}

/** `GET /v1/me`: the caller's account (allowed before the first password change). */
export function meRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { sessions, accounts } = deps.appliance;
  app.get('/', session({ sessions, accounts, allowPendingPasswordChange: true }), async (c) =>
    c.json(await viewOf(deps, c.get('principal').account.login)),
  );
  return app;
}
