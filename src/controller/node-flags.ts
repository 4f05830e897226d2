// V8 flags the operator runs with (the image's command, the chart, the benchmark). A 2 MB young
// generation instead of V8's default (up to 16 MB per semi-space, grown under allocation pressure):
// a reconcile's garbage is short-lived, and the heap no longer balloons during a burst of
// migrations (`npm run bench:operator`: peak RSS 305 MB without it, 189-196 MB with 4 MB, 162 MB
// with 2 MB, for about a fifth more operator CPU time).
export const OPERATOR_NODE_FLAGS = ['--max-semi-space-size=2'];
