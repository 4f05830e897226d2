// V8 flags the engine runs with (the Job's command, the benchmark): a 32 MB young generation lets
// the short-lived row objects of a copy die young instead of being promoted, which keeps the peak
// RSS of a MySQL-source copy about a third lower (measured with `npm run bench:copy -- --ours-only`).
// --liftoff-only: the SQL guard parses with libpg-query's WebAssembly build; V8's background
// optimizing compile of its parser function took ~500 MB of native memory (RSS 640 MB on a 10-row
// PostgreSQL copy, 119 MB without it); the parser runs on a few statements and needs no optimizing.
export const ENGINE_NODE_FLAGS = ['--max-semi-space-size=32', '--liftoff-only'];
