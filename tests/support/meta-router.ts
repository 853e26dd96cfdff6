/**
 * Stand-ins for graph.facebook.com and rupload.facebook.com in the chaos world. In production each
 * host serves both Facebook Pages and Instagram with Facebook Login; here the Facebook simulator
 * serves the first and the Graph simulator's `fb` and `rupload` listeners the second, so each
 * request goes to the one simulator that handed out what it addresses, decided from its path and
 * query alone (never by trying one and then the other, so a POST cannot land on the wrong one):
 * - Graph host, /{v}/{node}[/{edge}]: a node the Graph simulator handed out (Instagram user,
 *   container, media), or the token exchange and /me with a token it issued, go to it; anything
 *   else (Pages, their videos and tokens) to the Facebook simulator;
 * - rupload host: /ig-api-upload/ is the Graph simulator's, /video-upload/ Facebook's; else 404.
 * The targets are the fault proxies in front of each simulator, so faults are counted per platform.
 */
import type { GraphSim } from '../sim/graph.ts';
import { forward, listenLocal } from './chaos.ts';

export interface MetaFronts {
  /** Stands for graph.facebook.com. */
  graph: string;
  /** Stands for rupload.facebook.com. */
  rupload: string;
  close(): Promise<void>;
}

/** Origins the fronts forward to. */
export interface MetaBackends {
  instagramGraph: string;
  instagramRupload: string;
  facebook: string;
}

export async function startMetaFronts(sim: GraphSim, to: MetaBackends): Promise<MetaFronts> {
  const issued = (token: string | null) => token !== null && sim.tokenInfo(token) !== undefined;
  const graph = await front((url) => {
    const [, node] = url.pathname.split('/').filter(Boolean);
    // Adapters send GET parameters, the token included, in the query (graphCall).
    const ours =
      node === 'oauth' ? issued(url.searchParams.get('fb_exchange_token'))
      : node === 'me' ? issued(url.searchParams.get('access_token'))
      : node !== undefined && (sim.users.has(node) || sim.containers.has(node) || sim.posts.some((p) => p.id === node));
    return ours ? to.instagramGraph : to.facebook;
  });
  const rupload = await front((url) => {
    const prefix = url.pathname.split('/')[1];
    return prefix === 'ig-api-upload' ? to.instagramRupload : prefix === 'video-upload' ? to.facebook : null;
  });
  return {
    graph: graph.origin,
    rupload: rupload.origin,
    async close() {
      await Promise.all([graph.close(), rupload.close()]);
    },
  };
}

function front(pick: (url: URL) => string | null) {
  return listenLocal((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const to = pick(url);
    if (to !== null) return forward(req, res, new URL(to), false);
    req.resume();
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ debug_info: { retriable: false, type: 'NotFoundError', message: `no simulator serves ${url.pathname}` } }));
  });
}
