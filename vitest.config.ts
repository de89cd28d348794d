import { defineConfig } from 'vitest/config';

// Two tiers. `unit`: pure code, no servers and no external tools (`npm run test:unit`, under a
// minute). `integration`: real ffmpeg, ExifTool, xmllint, Chromium, Ceph RGW and Apache WebDAV;
// its global set-up installs the missing Debian packages and starts (then stops) the servers.
// `npm test` runs both.
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts', 'test/conformance/**/*.test.ts'],
          globalSetup: ['test/setup/global.ts'],
        },
      },
    ],
  },
});
