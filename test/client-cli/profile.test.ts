/** Where the profile lives on each OS, and how its files are written. */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Profile, resolveProfileDir } from '../../client-cli/profile.js';
import { tmpDir } from '../helpers/tmp.js';

t.test('when resolving the profile folder then flag beats SIGIL_PROFILE beats the OS folder', async (t) => {
  const home = '/home/ann';
  t.equal(resolveProfileDir({ env: {}, platform: 'linux', home }), '/home/ann/.config/sigil');
  t.equal(resolveProfileDir({ env: { XDG_CONFIG_HOME: '/xdg' }, platform: 'linux', home }), '/xdg/sigil');
  t.equal(resolveProfileDir({ env: { XDG_CONFIG_HOME: 'relative' }, platform: 'linux', home }), '/home/ann/.config/sigil', 'relative XDG ignored');
  t.equal(resolveProfileDir({ env: { APPDATA: 'C:\\Users\\ann\\AppData\\Roaming' }, platform: 'win32', home }).replace(/\\/g, '/'), 'C:/Users/ann/AppData/Roaming/sigil');
  t.equal(resolveProfileDir({ env: { SIGIL_PROFILE: '/srv/p' }, platform: 'linux', home }), '/srv/p');
  t.equal(resolveProfileDir({ flag: '/flag/p', env: { SIGIL_PROFILE: '/srv/p' }, platform: 'linux', home }), '/flag/p');
});

t.test('when files are written then secrets are owner-only and config round-trips', async (t) => {
  const dir = join(tmpDir(t, 'sigil-cli-profile-'), 'p');
  const p = new Profile(dir);
  await p.writeConfig({ version: 1, server: 'https://127.0.0.1:8443', login: 'alee' });
  t.same(await p.config(), { version: 1, server: 'https://127.0.0.1:8443', login: 'alee' });
  await p.writeSession({ token: 'tok', expiresAt: '2030-01-01T00:00:00Z', login: 'alee', mustChangePassword: false });
  t.same(await p.session(), { token: 'tok', expiresAt: '2030-01-01T00:00:00Z', login: 'alee', mustChangePassword: false });
  if (process.platform !== 'win32') {
    t.equal(statSync(p.path('session')).mode & 0o777, 0o600);
    t.equal(statSync(dir).mode & 0o777, 0o700);
  }
  await p.remove('session');
  t.equal(await p.session(), undefined);
});

t.test('when session.json is damaged then PROFILE_CORRUPT', async (t) => {
  const dir = tmpDir(t, 'sigil-cli-profile-');
  const p = new Profile(dir);
  writeFileSync(p.path('session'), '{"token":""}');
  await t.rejects(p.session(), { code: 'PROFILE_CORRUPT' });
  t.equal(readFileSync(p.path('session'), 'utf8'), '{"token":""}', 'left as it was for inspection');
});
