// The operator's HTTP servers: the probes and /metrics on separate ports, so a scrape that hangs
// never fails a probe, and neither port serves the other's paths.
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { Registry } from 'prom-client';
import { metricsRoutes, probeRoutes, startHttpServer } from '../../src/controller/http-server.ts';

const get = async (port: number, path: string): Promise<[number, string]> => {
  const response = await fetch(`http://127.0.0.1:${String(port)}${path}`, { signal: AbortSignal.timeout(2000) });
  return [response.status, await response.text()];
};

test('probes on their own port answer while /metrics hangs; each port serves only its paths', async (t) => {
  const state = { healthy: true, ready: false };
  const health = await startHttpServer(0, probeRoutes({ healthy: () => state.healthy, ready: () => state.ready }), '127.0.0.1');
  const hanging = new Registry();
  hanging.metrics = () => new Promise<string>(() => undefined); // a scrape that never ends
  const metrics = await startHttpServer(0, metricsRoutes(hanging), '127.0.0.1');
  t.teardown(() => { health.close(); metrics.closeAllConnections(); metrics.close(); });
  const healthPort = (health.address() as AddressInfo).port;
  const metricsPort = (metrics.address() as AddressInfo).port;

  const scrape = fetch(`http://127.0.0.1:${String(metricsPort)}/metrics`, { signal: AbortSignal.timeout(500) }).catch(() => 'timed out');
  t.deepEqual(await get(healthPort, '/healthz'), [200, 'ok'], 'alive while the scrape hangs');
  t.deepEqual(await get(healthPort, '/readyz'), [503, 'not ready']);
  state.ready = true;
  state.healthy = false;
  t.deepEqual(await get(healthPort, '/readyz'), [200, 'ok']);
  t.deepEqual(await get(healthPort, '/healthz'), [500, 'unhealthy']);
  t.is(await scrape, 'timed out');
  t.is((await get(healthPort, '/metrics'))[0], 404);
  t.is((await get(metricsPort, '/healthz'))[0], 404);
  t.is((await get(healthPort, '/constructor'))[0], 404, 'only the routes given, not the prototype\'s');
});

test('/metrics serves the registry in its content type', async (t) => {
  const registry = new Registry();
  registry.setDefaultLabels({ app: 'dmo' });
  const server = await startHttpServer(0, metricsRoutes(registry), '127.0.0.1');
  t.teardown(() => { server.close(); });
  const response = await fetch(`http://127.0.0.1:${String((server.address() as AddressInfo).port)}/metrics`);
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), registry.contentType);
});
