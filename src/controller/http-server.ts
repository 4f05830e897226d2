// /healthz (the process is alive and its loops are not wedged), /readyz (informers synced; a
// standby replica is ready too, so a rollout does not wait for leadership) and /metrics.
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface Probes {
  healthy(): boolean;
  ready(): boolean;
}

export function startHttpServer(port: number, registry: Registry, probes: Probes, host = '0.0.0.0'): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      response.writeHead(status, { 'content-type': type });
      response.end(body);
    };
    if (path === '/healthz') reply(probes.healthy() ? 200 : 500, probes.healthy() ? 'ok' : 'unhealthy');
    else if (path === '/readyz') reply(probes.ready() ? 200 : 503, probes.ready() ? 'ok' : 'not ready');
    else if (path === '/metrics') {
      registry.metrics().then((text) => { reply(200, text, registry.contentType); }, (error: unknown) => { reply(500, String(error)); });
    } else reply(404, 'not found');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { resolve(server); });
  });
}
