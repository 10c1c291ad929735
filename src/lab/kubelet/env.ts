/**
 * A container's environment and command line, as the kubelet builds them: literal values, downward-API
 * `fieldRef`s, Kubernetes' `$(VAR)` expansion, and the argv of containers whose command is `egw …`.
 * Pure.
 */

/** The pod facts the downward API can expose. */
export interface DownwardFacts {
  name: string;
  namespace: string;
  uid: string;
  nodeName: string;
  serviceAccountName?: string | undefined;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  podIP?: string | undefined;
  podIPs: readonly string[];
  hostIP?: string | undefined;
}

/** A container as the kubelet reads it (unknown fields ignored). */
export interface ContainerSpec {
  name: string;
  command: string[];
  args: string[];
  env: unknown[];
}

/** The result of building a container's configuration: a value, or Kubernetes' `CreateContainerConfigError` message. */
export type Built<T> = { ok: true; value: T } | { ok: false; error: string };

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Reads a container object; undefined when it has no name. */
export function parseContainer(v: unknown): ContainerSpec | undefined {
  const o = obj(v);
  const name = o?.['name'];
  if (o === undefined || typeof name !== 'string') return undefined;
  const strings = (x: unknown): string[] => (Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : []);
  return { name, command: strings(o['command']), args: strings(o['args']), env: Array.isArray(o['env']) ? (o['env'] as unknown[]) : [] };
}

/**
 * The value of a downward-API field path (`metadata.name`, `metadata.namespace`, `metadata.uid`,
 * `metadata.labels['k']`, `metadata.annotations['k']`, `spec.nodeName`, `spec.serviceAccountName`,
 * `status.podIP`, `status.podIPs` (comma-joined, as Kubernetes does), `status.hostIP`, `status.hostIPs`).
 */
export function resolveFieldRef(path: string, facts: DownwardFacts): Built<string> {
  const indexed = /^metadata\.(labels|annotations)\['([^']*)'\]$/.exec(path);
  if (indexed !== null) {
    const map = indexed[1] === 'labels' ? facts.labels : facts.annotations;
    return { ok: true, value: map[indexed[2] ?? ''] ?? '' };
  }
  switch (path) {
    case 'metadata.name':
      return { ok: true, value: facts.name };
    case 'metadata.namespace':
      return { ok: true, value: facts.namespace };
    case 'metadata.uid':
      return { ok: true, value: facts.uid };
    case 'spec.nodeName':
      return { ok: true, value: facts.nodeName };
    case 'spec.serviceAccountName':
      return { ok: true, value: facts.serviceAccountName ?? '' };
    case 'status.podIP':
      return { ok: true, value: facts.podIP ?? '' };
    case 'status.podIPs':
      return { ok: true, value: facts.podIPs.join(',') };
    case 'status.hostIP':
    case 'status.hostIPs':
      return { ok: true, value: facts.hostIP ?? '' };
    default:
      return { ok: false, error: `unsupported fieldPath ${JSON.stringify(path)}` };
  }
}

/**
 * Kubernetes' `$(VAR)` expansion: `$(NAME)` becomes the value of NAME when defined, and stays as written
 * otherwise; `$$` is a literal `$` (so `$$(NAME)` stays `$(NAME)`).
 */
export function expandVars(text: string, vars: ReadonlyMap<string, string>): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '$' || i + 1 >= text.length) {
      out += c;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = text.indexOf(')', i + 2);
      if (close === -1) {
        out += text.slice(i);
        break;
      }
      const name = text.slice(i + 2, close);
      const value = vars.get(name);
      out += value ?? `$(${name})`;
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

/**
 * The container's environment: `base` (what the runtime injects), then the container's `env` in order,
 * each value expanded against the variables defined before it; `valueFrom.fieldRef` resolved from the
 * downward facts. A `configMapKeyRef`/`secretKeyRef` marked optional is skipped; any other source is an
 * error (the lab has no ConfigMaps, Secrets or resource fields).
 */
export function containerEnv(container: ContainerSpec, facts: DownwardFacts, base: Readonly<Record<string, string>>): Built<Record<string, string>> {
  const vars = new Map<string, string>(Object.entries(base));
  for (const raw of container.env) {
    const e = obj(raw);
    const name = e?.['name'];
    if (e === undefined || typeof name !== 'string' || name === '') continue;
    const from = obj(e['valueFrom']);
    if (from === undefined) {
      vars.set(name, expandVars(typeof e['value'] === 'string' ? e['value'] : '', vars));
      continue;
    }
    const fieldPath = obj(from['fieldRef'])?.['fieldPath'];
    if (typeof fieldPath === 'string') {
      const v = resolveFieldRef(fieldPath, facts);
      if (!v.ok) return { ok: false, error: `container ${container.name}: env ${name}: ${v.error}` };
      vars.set(name, v.value);
      continue;
    }
    const ref = obj(from['configMapKeyRef']) ?? obj(from['secretKeyRef']);
    if (ref !== undefined && ref['optional'] === true) continue;
    const source = Object.keys(from)[0] ?? 'valueFrom';
    return { ok: false, error: `container ${container.name}: env ${name}: ${source} is not supported by the lab kubelet` };
  }
  return { ok: true, value: Object.fromEntries(vars) };
}

/**
 * The argv of a container the lab runs: containers whose command (after `$(VAR)` expansion) starts
 * with `egw` run the compiled egw — `egwCommand` (e.g. `[node, <repo>/dist/src/cli/main.js]`) followed
 * by the rest of the command and the args. Any other container gets no process (undefined): it exists
 * as a network namespace to run commands in.
 */
export function containerArgv(container: ContainerSpec, env: Readonly<Record<string, string>>, egwCommand: readonly string[]): string[] | undefined {
  const vars = new Map(Object.entries(env));
  const words = [...container.command, ...container.args].map((w) => expandVars(w, vars));
  if (container.command.length === 0 || words[0] !== 'egw') return undefined;
  return [...egwCommand, ...words.slice(1)];
}
