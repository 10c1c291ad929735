export * from './errors.js';
export * from './clock.js';
export * from './shell.js';
export * from './logger.js';
