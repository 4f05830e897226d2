// End-to-end suite: a real control plane (etcd, kube-apiserver, kube-controller-manager),
// the node stand-in and the throwaway databases (see test/support/platform.ts).
export default {
  files: ['test/e2e/**/*.test.ts'],
  extensions: ['ts'],
  timeout: '5m',
  concurrency: 2,
};
