/**
 * Review finding: a live event stream kept delivering after the listener's client certificate
 * expired. The certificate is checked when a request starts; the stream re-checks only its
 * session, which lasted 12 h whatever the certificate's notAfter. Now a session ends at the
 * certificate's notAfter, and the stream's keep-alive re-check finds it expired.
 *
 * A real appliance over real TLS; only its clock is fake (an offset from real time), so the
 * certificate is valid for the TLS handshake and the appliance judges it at the moved clock.
 */
import t from 'tap';
import { httpHarness, openEvents } from '../messaging/http-harness.js';

t.test('when the listener’s certificate expires then its open stream ends and its session is over', async (t) => {
  let offsetMs = 0;
  const now = (): Date => new Date(Date.now() + offsetMs);
  // A short keep-alive: it is also the interval of the open streams' session re-check.
  const h = await httpHarness(t, { now, keepAliveMs: 200 });
  const app = h.app;

  const bob = await app.createStaff({ login: 'e-bob', clearance: 'secret' });
  const notAfter = bob.cert.notAfter;
  // Ten minutes before the certificate ends (within the 30 min idle timeout of what follows):
  // an old session would last 12 h more, far past notAfter.
  offsetMs = notAfter.getTime() - 10 * 60_000 - Date.now();
  const token = await app.loginAs(bob.login, bob.password, bob.cert, bob.key);
  const me = await app.request('/v1/me', { token, cert: bob.certPem, key: bob.keyPem });
  t.equal(me.status, 200, 'the new session works before notAfter');

  const es = await openEvents(h, { ...bob, token });
  t.teardown(() => es.close());
  await es.until((evs) => evs.some((e) => e.event === 'ready'));
  await new Promise((r) => setTimeout(r, 600));
  t.notOk(es.ended, 'control: the stream stays open while the certificate is valid (keep-alives pass)');

  // One second past notAfter: the next keep-alive re-check resolves the session and finds it over.
  offsetMs = notAfter.getTime() + 1000 - Date.now();
  await es.until(() => es.ended, 3000);
  t.ok(es.ended, 'the stream ended within a keep-alive interval of the certificate’s end');
  await t.rejects(app.appliance.sessions.resolve(token, bob.cert.fingerprint), { code: 'SESSION_EXPIRED' }, 'the session is expired, not just the request refused');
});
