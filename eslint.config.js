import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The layers of docs/architecture.md "Layers": each folder of src/ may import only the layers its
// arrows reach, so an import that runs back up fails lint. Relative imports only: packages are free.
const LAYER_PATTERN = {
  composition: '^\\.\\.?/(.*/)?(dependencies|app|main)\\.ts$|^\\.\\.?/(.*/)?cli/',
  api: '^\\.\\.?/(.*/)?api/',
  oidc: '^\\.\\.?/(.*/)?oidc/',
  http: '^\\.\\.?/(.*/)?http/',
  services: '^\\.\\.?/(.*/)?services/',
  db: '^\\.\\.?/(.*/)?db/',
};
const KOA = '^(koa|koa-.*|@koa/.*)$';

/** A no-restricted-imports rule refusing the given layers (and Koa, for business rules). */
function layerRule(layer, refused, { koa = false } = {}) {
  const patterns = refused.map((name) => ({
    regex: LAYER_PATTERN[name],
    message: `${layer} must not import ${name} (docs/architecture.md "Layers"): own an interface here and let the upper layer implement it, or move the shared piece down to platform/.`,
  }));
  if (koa) patterns.push({ regex: KOA, message: `${layer} holds business rules without Koa (docs/architecture.md "Layers").` });
  return { 'no-restricted-imports': ['error', { patterns }] };
}

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration through src/platform/config.ts.' }],
    },
  },
  { files: ['src/platform/**'], rules: layerRule('platform/', ['composition', 'api', 'oidc', 'http', 'services', 'db']) },
  { files: ['src/db/**'], rules: layerRule('db/', ['composition', 'api', 'oidc', 'http', 'services']) },
  { files: ['src/services/**'], rules: layerRule('services/', ['composition', 'api', 'oidc', 'http'], { koa: true }) },
  { files: ['src/http/**'], rules: layerRule('http/', ['composition', 'api', 'oidc', 'services', 'db']) },
  { files: ['src/oidc/**'], rules: layerRule('oidc/', ['composition', 'api']) },
  { files: ['src/api/**'], rules: layerRule('api/', ['composition', 'db']) },
  {
    // src/preload.ts sets libuv's UV_THREADPOOL_SIZE before start-up; it reads no configuration.
    files: ['src/platform/config.ts', 'src/preload.ts', 'test/**', 'bench/**', 'eslint.config.js'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['eslint.config.js', 'views/static/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Scripts the pages load in the browser.
    files: ['views/static/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { window: 'readonly', document: 'readonly' } },
  },
);
