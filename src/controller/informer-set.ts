// One kind's informers over the namespaces the operator watches: one cluster-wide informer (no
// list: every namespace, under a ClusterRole), or one per listed namespace (each needing only a
// Role there), seen by the rest of the operator as one cache. client-node's informers watch one
// path each; controller-runtime's multi-namespace cache does the same.
import type * as k8s from '@kubernetes/client-node';

export type Cached<T extends k8s.KubernetesObject> = k8s.Informer<T> & k8s.ObjectCache<T>;

/** What `makeInformer` is for one namespace (undefined: all of them). */
export type InformerFor<T extends k8s.KubernetesObject> = (namespace: string | undefined) => Cached<T>;

/**
 * The namespaces to watch from WATCH_NAMESPACE: comma-separated names, blanks ignored, each once;
 * empty for all namespaces. A name that is not a Kubernetes namespace name is an error.
 */
export function parseWatchNamespaces(text: string | undefined): string[] {
  const names = [...new Set((text ?? '').split(',').map((name) => name.trim()).filter((name) => name !== ''))];
  const invalid = names.filter((name) => !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name));
  if (invalid.length > 0) throw new Error(`not namespace names: ${invalid.map((name) => JSON.stringify(name)).join(', ')}`);
  return names;
}

export class InformerSet<T extends k8s.KubernetesObject> implements k8s.ObjectCache<T> {
  /** Each informer with the namespace it watches (undefined: all). */
  readonly members: readonly { namespace: string | undefined; informer: Cached<T> }[];

  constructor(namespaces: readonly string[], make: InformerFor<T>) {
    this.members = namespaces.length === 0
      ? [{ namespace: undefined, informer: make(undefined) }]
      : namespaces.map((namespace) => ({ namespace, informer: make(namespace) }));
  }

  on(verb: 'add' | 'update' | 'delete', handler: (obj: T) => void): void {
    for (const { informer } of this.members) informer.on(verb, handler);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.memberFor(namespace)?.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    if (namespace !== undefined) return this.memberFor(namespace)?.list(namespace) ?? [];
    return this.members.flatMap(({ informer }) => informer.list());
  }

  /** The informer that holds `namespace`; undefined for a namespace not watched. */
  private memberFor(namespace: string | undefined): Cached<T> | undefined {
    return this.members.find((member) => member.namespace === undefined || member.namespace === namespace)?.informer;
  }
}
