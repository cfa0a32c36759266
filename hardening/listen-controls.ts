/**
 * Control `config.listen`: the server listens on the port the firewall opens. The port lives in two
 * places, the appliance's `config.json` (written by `sigil-server init --listen`) and
 * hardening.conf's SIGIL_PORT (which renders the firewall); if they drift, the firewall protects a
 * port nobody uses and the real one is closed, or the reverse after an edit.
 */
import { z } from 'zod';
import { fail, pass, type Control } from './control.js';
import { DATA_DIR } from './storage-controls.js';

const ApplianceConfig = z.object({ listen: z.string() }).passthrough();

/** `host:port` or `[v6]:port` → its parts. */
function splitListen(listen: string): { host: string; port: number } | undefined {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(listen);
  return m ? { host: m[1], port: Number(m[2]) } : undefined;
}

/** The `config.listen` control. */
export const LISTEN_CONTROLS: readonly Control[] = [
  {
    id: 'config.listen',
    title: 'sigil-server listens on SIGIL_PORT',
    async check(ctx) {
      if (!ctx.conf) return fail(`cannot judge without the configuration: ${ctx.confError}`);
      const path = `${DATA_DIR}/config.json`;
      const text = await ctx.host.readText(path);
      if (text === undefined) return pass(`not initialised yet (no ${path}): nothing listens`);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return fail(`${path} is not JSON`);
      }
      const parsed = ApplianceConfig.safeParse(json);
      const listen = parsed.success ? splitListen(parsed.data.listen) : undefined;
      if (!parsed.success || !listen) return fail(`${path} has no listen address of the form host:port`);
      return listen.port === ctx.conf.port
        ? pass(`listens on ${parsed.data.listen}`)
        : fail(`${path} listens on port ${listen.port} but SIGIL_PORT (the port the firewall opens) is ${ctx.conf.port}`);
    },
  },
];
