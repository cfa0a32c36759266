/**
 * Every control `check` runs, in report order.
 */
import { CONFIG_CONTROLS } from './config-controls.js';
import type { Control } from './control.js';
import { COREDUMP_CONTROLS } from './coredump-controls.js';
import { LISTEN_CONTROLS } from './listen-controls.js';
import { MODPROBE_CONTROLS } from './modprobe-controls.js';
import { NFT_CONTROLS } from './nft-controls.js';
import { STORAGE_CONTROLS } from './storage-controls.js';
import { SYSCTL_CONTROLS } from './sysctl-controls.js';
import { UNIT_CONTROLS } from './unit-controls.js';

/** All controls, in report order; ids are unique. */
export const CONTROLS: readonly Control[] = [
  ...CONFIG_CONTROLS,
  ...UNIT_CONTROLS,
  ...NFT_CONTROLS,
  ...MODPROBE_CONTROLS,
  ...SYSCTL_CONTROLS,
  ...COREDUMP_CONTROLS,
  ...STORAGE_CONTROLS,
  ...LISTEN_CONTROLS,
];
