/** The plain JSON shape of any Kubernetes object egw renders for `kubectl apply`. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** Labels on everything egw installs, so `kubectl get … -l app.kubernetes.io/part-of=egw` finds it all. */
export function egwLabels(component?: string): Record<string, string> {
  return { 'app.kubernetes.io/part-of': 'egw', ...(component === undefined ? {} : { 'app.kubernetes.io/component': component }) };
}
