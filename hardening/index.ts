/**
 * hardening/: the appliance host's hardening (systemd unit, nftables, modprobe, sysctl, core dumps,
 * swap, data directory), installed by `hardening/apply` and audited by `hardening/check`. This is
 * its public API, for tests and tools.
 */
export { runChecks, loadHardeningConf } from './run-checks.js';
export type { CheckReport, ControlReport, RunChecksOptions } from './run-checks.js';
export { CONTROLS } from './controls.js';
export type { CheckContext, Control, ControlResult } from './control.js';
export { parseHardeningConf, HARDENING_CONF_PATH } from './conf.js';
export type { HardeningConf } from './conf.js';
export { parseCidr, parseRange, cidrWithin, rangeWithin, coveredBy } from './cidr.js';
export type { Cidr, AddressRange } from './cidr.js';
export { parseNftRuleset } from './nft-ruleset.js';
export type { NftRuleset, NftTable, NftChain, NftSet } from './nft-ruleset.js';
export { Host, SYSTEM_PROGRAM_DIRS } from './host.js';
export type { HostOptions, ProgramLookup } from './host.js';
export { checkMain, runCheck, buildCheckCommand, CHECK_EXIT } from './check-cli.js';
export type { CheckIo, CheckOptions } from './check-cli.js';
export { EXPECTED_SYSCTL } from './sysctl-controls.js';
export { BLOCKED_MODULES } from './modprobe-controls.js';
export { UNIT_NAME, SERVICE_USER } from './unit-controls.js';
export { DATA_DIR } from './storage-controls.js';
export * from './errors.js';
