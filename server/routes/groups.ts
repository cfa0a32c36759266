/**
 * `/v1/groups` (API.md "Groups"): create, list, show, add and remove members, destroy.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { CLEARANCES } from '../../pki/index.js';
import { messagingBodyLimit, messagingErrorHandler, principalOf, requireSession, type MessagingRouteDeps } from '../messaging/http.js';
import type { AppEnv } from '../middleware/types.js';
import { parseJson, parseParams } from '../middleware/validate.js';
import { DeleteBody } from './conversations.js';

const Name = z.string().min(1).max(64).regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, 'must be letters, digits, space, dot, dash or underscore');
const Login = z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be a login');
const CreateBody = z
  .object({ name: Name, label: z.enum(CLEARANCES), retentionDays: z.number().int().min(1).max(36500).optional() })
  .strict();
const MemberBody = z.object({ login: Login, role: z.enum(['owner', 'member']).optional() }).strict();
const NameParam = z.object({ name: Name });
const MemberParam = z.object({ name: Name, login: Login });

export function groupsRoutes(deps: MessagingRouteDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(messagingErrorHandler);
  // Read per request: the appliance may finish building the service after mounting.
  const svc = (): MessagingRouteDeps['messaging'] => deps.messaging;
  app.use('*', requireSession(deps));
  app.use('*', messagingBodyLimit(deps, 'small'));

  app.post('/', async (c) => {
    const body = await parseJson(c, CreateBody);
    return c.json(await svc().createGroup(principalOf(c), body), 201);
  });

  app.get('/', async (c) => c.json({ groups: await svc().groups(principalOf(c)) }));

  app.get('/:name', async (c) => {
    const { name } = parseParams(c.req.param(), NameParam);
    return c.json(await svc().group(principalOf(c), name));
  });

  app.post('/:name/members', async (c) => {
    const { name } = parseParams(c.req.param(), NameParam);
    const body = await parseJson(c, MemberBody);
    return c.json(await svc().addMember(principalOf(c), name, body));
  });

  app.delete('/:name/members/:login', async (c) => {
    const { name, login } = parseParams(c.req.param(), MemberParam);
    return c.json(await svc().removeMember(principalOf(c), name, login));
  });

  app.delete('/:name', async (c) => {
    const { name } = parseParams(c.req.param(), NameParam);
    const body = await parseJson(c, DeleteBody);
    return c.json(await svc().deleteGroup(principalOf(c), name, body));
  });

  return app;
}
