export * from './lan.js';
export * from './errors.js';
export { attachPeerFilter, type PeerFilterOptions } from './peer-filter.js';
