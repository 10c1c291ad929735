// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Import boundaries between the rooms of docs/architecture.md: a room may only import the rooms listed
 * for it. Expressed as forbidden relative-import patterns, because the rooms are folders of one package.
 * @param {string} room
 * @param {string[]} forbidden rooms this one must not import
 */
function boundary(room, forbidden) {
  return {
    files: [`src/${room}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: forbidden.map((other) => ({
            // platform/errors.ts (the typed error class) and platform/ipv4.ts (pure IPv4 functions) are
            // pure data and open to every room.
            group: [`**/${other}/*`, `**/${other}/**`, ...(other === 'platform' ? ['!**/platform/errors.js', '!**/platform/ipv4.js'] : [])],
            message: `src/${room} may not import src/${other} (see docs/architecture.md, "Layers and their rooms").`,
          })),
        },
      ],
    },
  };
}

// install/ renders manifests (pure) from api/ and the Kubernetes resource map; only composition roots import it.
const composition = ['agent', 'controller', 'gateway', 'lab', 'cli', 'install'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'egw-data/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/require-await': 'off',
    },
  },
  boundary('platform', ['api', 'datastore', 'ipam', 'calc', 'reconcile', 'aws', 'linux', 'cni', 'sim', ...composition]),
  boundary('api', ['platform', 'datastore', 'ipam', 'calc', 'reconcile', 'aws', 'linux', 'cni', 'sim', ...composition]),
  boundary('datastore', ['ipam', 'calc', 'reconcile', 'aws', 'linux', 'cni', 'sim', ...composition]),
  boundary('ipam', ['calc', 'reconcile', 'aws', 'linux', 'cni', 'sim', ...composition]),
  boundary('calc', ['platform', 'datastore', 'ipam', 'reconcile', 'aws', 'linux', 'cni', 'sim', ...composition]),
  boundary('reconcile', ['api', 'datastore', 'ipam', 'calc', 'aws', 'linux', 'cni', 'sim', ...composition]),
  boundary('aws', ['api', 'datastore', 'ipam', 'calc', 'linux', 'cni', 'sim', ...composition]),
  boundary('linux', ['api', 'datastore', 'ipam', 'calc', 'aws', 'cni', 'sim', ...composition]),
  boundary('cni', ['calc', 'reconcile', 'aws', 'linux', 'sim', ...composition]),
  boundary('sim', ['api', 'datastore', 'ipam', 'calc', 'cni', ...composition]),
  boundary('install', ['ipam', 'calc', 'reconcile', 'aws', 'linux', 'cni', 'sim', 'agent', 'controller', 'gateway', 'lab', 'cli']),
);
