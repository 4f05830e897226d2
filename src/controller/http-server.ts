// The operator's two HTTP servers, as controller-runtime runs them: the probes on their own port
// (/healthz: the process is alive and its loops are not wedged; /readyz: informers synced, a
// standby replica is ready too, so a rollout does not wait for leadership) and /metrics on
// another, so a slow or blocked scrape never fails a probe, and a NetworkPolicy can open the
// metrics port to Prometheus alone.
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface Probes {
  healthy(): boolean;
  ready(): boolean;
}

interface Reply {
  status: number;
  body: string;
  type?: string;
}

/** Routes by path; anything else is 404. */
export type Routes = Readonly<Record<string, () => Reply | Promise<Reply>>>;

export function probeRoutes(probes: Probes): Routes {
  return {
    '/healthz': () => (probes.healthy() ? { status: 200, body: 'ok' } : { status: 500, body: 'unhealthy' }),
    '/readyz': () => (probes.ready() ? { status: 200, body: 'ok' } : { status: 503, body: 'not ready' }),
  };
}

export function metricsRoutes(registry: Registry): Routes {
  return { '/metrics': async () => ({ status: 200, body: await registry.metrics(), type: registry.contentType }) };
}

export function startHttpServer(port: number, routes: Routes, host = '0.0.0.0'): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const reply = ({ status, body, type }: Reply): void => {
      response.writeHead(status, { 'content-type': type ?? 'text/plain; charset=utf-8' });
      response.end(body);
    };
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (route === undefined) {
      reply({ status: 404, body: 'not found' });
      return;
    }
    Promise.resolve().then(route).then(reply, (error: unknown) => { reply({ status: 500, body: error instanceof Error ? error.message : String(error) }); });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { resolve(server); });
  });
}
