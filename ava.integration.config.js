// Integration suite: real PostgreSQL and MariaDB servers (see test/support/databases.ts).
export default {
  files: ['test/integration/**/*.test.ts'],
  extensions: ['ts'],
  timeout: '5m',
  concurrency: 2,
};
