// Unit suite: pure logic, no I/O; finishes in seconds.
export default {
  files: ['test/unit/**/*.test.ts'],
  extensions: ['ts'],
  timeout: '30s',
};
