/**
 * Controls `config.*`: /etc/sigil/hardening.conf exists, parses, and names LAN ranges only: the
 * other controls judge the host against it, so a range of 0.0.0.0/0 here would make an open
 * firewall look correct.
 */
import { coveredBy, LAN_ONLY } from './cidr.js';
import { fail, pass, type Control } from './control.js';
import { HARDENING_CONF_PATH } from './conf.js';

/** The `config.*` controls. */
export const CONFIG_CONTROLS: readonly Control[] = [
  {
    id: 'config.present',
    title: `${HARDENING_CONF_PATH} exists and parses`,
    async check(ctx) {
      if (!ctx.conf) return fail(ctx.confError ?? 'no configuration');
      return pass(`port ${ctx.conf.port}, LAN ${ctx.conf.lanRanges.map((c) => c.text).join(' ')}${ctx.conf.adminRanges.length ? `, SSH from ${ctx.conf.adminRanges.map((c) => c.text).join(' ')}` : ', no SSH'}`);
    },
  },
  {
    id: 'config.lan-only',
    title: 'SIGIL_LAN_RANGES and SIGIL_ADMIN_RANGE are private or link-local ranges',
    async check(ctx) {
      if (!ctx.conf) return fail(`cannot judge without the configuration: ${ctx.confError}`);
      const outside = [...ctx.conf.lanRanges, ...ctx.conf.adminRanges].filter((c) => !coveredBy(c, LAN_ONLY));
      return outside.length === 0
        ? pass('every range is RFC 1918, RFC 4193 or link-local')
        : fail(`${outside.map((c) => c.text).join(', ')} ${outside.length === 1 ? 'is' : 'are'} not a LAN range (RFC 1918, RFC 4193, link-local)`);
    },
  },
];
