// V8 flags the engine runs with (the Job's command, the benchmark): a 32 MB young generation lets
// the short-lived row objects of a copy die young instead of being promoted, which keeps the peak
// RSS of a MySQL-source copy about a third lower (measured with `npm run bench:copy -- --ours-only`).
export const ENGINE_NODE_FLAGS = ['--max-semi-space-size=32'];
