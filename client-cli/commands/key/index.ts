export { keygenCommand } from './keygen.js';
