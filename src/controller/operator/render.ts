/**
 * The operator's render: one EgressGateway (plus the `default` FelixConfiguration) in, the `apps/v1`
 * Deployment Calico's operator would create for it out. Pure apart from reading egw's version once
 * when no image is given (see {@link defaultGatewayImage}).
 *
 * What differs from Calico's operator, on purpose (docs/operator.md says why): the containers run egw's
 * image with `egw gateway` commands instead of Calico's shell scripts; there is no `policysync` CSI volume
 * (egw's gateway talks to egw's datastore, not to Felix), and the ServiceAccount and `EGW_DATASTORE` are
 * rendered only when asked (the operator on Kubernetes asks; the lab does not); `DATAPLANE` is always
 * `nftables` (egw's gateway only speaks nftables); `replicas` is always set.
 */
import {
  AWS_SECONDARY_IPV4_RESOURCE,
  CNI_AWS_ELASTIC_IPS,
  EGW_ELASTIC_IP_STANDBY,
  CNI_IPV4_POOLS,
  defaultEgressGateway,
  nativeIP,
  type EgressGateway,
  type FelixConfiguration,
} from '../../api/index.js';
import { defaultGatewayImage } from './image.js';
import type { Container, Deployment, EnvVar, HttpProbe, OwnerReference, PodTemplateSpec, ResourceRequirements, SecurityContext } from './k8s-types.js';

/** Name of the gateway's main container (the one user overrides and the AWS resource apply to). */
export const GATEWAY_CONTAINER = 'egress-gateway';
/** Name of the gateway's init container. */
export const GATEWAY_INIT_CONTAINER = 'egress-gateway-init';
/** The health port, its container-port name (client nodes only poll ports named so) and readiness path. */
export const HEALTH_PORT = 8080;
export const HEALTH_PORT_NAME = 'health';
export const READINESS_PATH = '/readiness';
/** The operator's readiness probe delay (it found Kubernetes' default too short). */
export const READINESS_INITIAL_DELAY_SECONDS = 10;
/** What the main container runs: egw's gateway process. */
export const GATEWAY_COMMAND: readonly string[] = ['egw', 'gateway'];
/** What the init container runs: the gateway's one-shot network set-up inside the pod. */
export const GATEWAY_INIT_COMMAND: readonly string[] = ['egw', 'gateway', 'init'];
/** Pod annotation with the external networks of the gateway (Calico's VRF feature; egw only passes it on). */
export const EXTERNAL_NETWORK_NAMES = 'egress.projectcalico.org/externalNetworkNames';
/** Felix's defaults for the egress VXLAN device, which the operator falls back to. */
export const DEFAULT_VXLAN_VNI = 4097;
export const DEFAULT_VXLAN_PORT = 4790;
/** API group/version and kind of the owner of everything the operator makes. */
export const EGRESS_GATEWAY_API_VERSION = 'operator.tigera.io/v1';

/** What the render needs besides the EgressGateway. */
export interface RenderContext {
  /** The `default` FelixConfiguration (VXLAN VNI/port, iptables backend); Felix's defaults when absent. */
  felix?: FelixConfiguration | undefined;
  /** Container image of both containers; default `ghcr.io/egw-project/egw:<egw version>`. */
  image?: string | undefined;
  /** Main container command; default `["egw", "gateway"]`. */
  command?: readonly string[] | undefined;
  /** Init container command; default `["egw", "gateway", "init"]`. */
  initCommand?: readonly string[] | undefined;
  /**
   * How the gateway containers reach egw's datastore: rendered as `EGW_DATASTORE=<value>` in both
   * containers (e.g. `kubernetes`: the API server through the pod's service account). Absent: no such
   * variable (the lab's runtime gives its pods the lab's datastore itself).
   */
  datastore?: string | undefined;
  /** The pod's ServiceAccount (on Kubernetes: {@link GATEWAY_SERVICE_ACCOUNT}); absent: none rendered. */
  serviceAccountName?: string | undefined;
}

/** The ServiceAccount gateway pods run as on Kubernetes (bound to the ClusterRole of the same name). */
export const GATEWAY_SERVICE_ACCOUNT = 'egw-gateway';

/** What gateway pods get on Kubernetes to reach egw's datastore: in-cluster config of their ServiceAccount. */
export const KUBE_GATEWAY_POD_SETTINGS = { datastore: 'kubernetes', serviceAccountName: GATEWAY_SERVICE_ACCOUNT } as const;
/** The environment variable egw's programs read their datastore from. */
export const DATASTORE_ENV = 'EGW_DATASTORE';

/** The owner reference that makes an object belong to `egw` (controller, blocks owner deletion). */
export function ownerReferenceTo(egw: EgressGateway): OwnerReference {
  return {
    apiVersion: EGRESS_GATEWAY_API_VERSION,
    kind: 'EgressGateway',
    name: egw.metadata.name,
    ...(egw.metadata.uid === undefined ? {} : { uid: egw.metadata.uid }),
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * The Deployment Calico's operator renders for `egw` (defaults are applied first, so a stored or a
 * freshly written EgressGateway give the same result):
 * - name/namespace of the EgressGateway, labels and selector = the template labels
 *   (default `projectcalico.org/egw: <name>`), `replicas` (default 1), an owner reference when the
 *   EgressGateway has a uid;
 * - pod annotations `cni.projectcalico.org/ipv4pools` (pool names, else CIDRs, as a JSON array),
 *   `cni.projectcalico.org/awsElasticIPs` and `egress.projectcalico.org/externalNetworkNames` when set,
 *   then the template's own annotations where they do not clash;
 * - init container `egress-gateway-init` (privileged, root) and main container `egress-gateway`
 *   (NET_ADMIN, NET_RAW) with the operator's environment, port 8080 named `health`, readiness probe
 *   `GET /readiness` after 10 s;
 * - container resource overrides replace the rendered resources; readinessProbe timing overrides are
 *   merged into the probe; `projectcalico.org/aws-secondary-ipv4: 1` is added to requests and limits
 *   of the main container after the overrides when `aws.nativeIP` is Enabled;
 * - the template's nodeSelector, affinity (default: preferred zone anti-affinity on the labels),
 *   tolerations, topologySpreadConstraints, terminationGracePeriodSeconds and priorityClassName.
 * Pure and deterministic for a given image.
 */
export function renderDeployment(egw: EgressGateway, ctx: RenderContext = {}): Deployment {
  const d = defaultEgressGateway(egw);
  const template = renderPodTemplate(d, ctx);
  const labels = { ...template.metadata.labels };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: d.metadata.name,
      namespace: d.metadata.namespace ?? 'default',
      labels,
      ...(d.metadata.uid === undefined ? {} : { ownerReferences: [ownerReferenceTo(d)] }),
    },
    spec: {
      replicas: d.spec.replicas ?? 1,
      selector: { matchLabels: { ...labels } },
      template,
    },
  };
}

/** The pod template of {@link renderDeployment} alone (what gateway pods are made from). */
export function renderPodTemplate(egw: EgressGateway, ctx: RenderContext = {}): PodTemplateSpec {
  const d = defaultEgressGateway(egw);
  const spec = d.spec;
  const userPod = spec.template?.spec ?? {};
  const image = ctx.image ?? defaultGatewayImage();
  const felix = ctx.felix?.spec;
  const vni = felix?.egressIPVXLANVNI ?? DEFAULT_VXLAN_VNI;
  const port = felix?.egressIPVXLANPort ?? DEFAULT_VXLAN_PORT;
  const backend = felix?.iptablesBackend?.toLowerCase();

  // Functions, not shared objects: each container gets its own copy (YAML would print shared ones as aliases).
  const podIp = (): EnvVar => ({ name: 'EGRESS_POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
  const podIps = (): EnvVar => ({ name: 'EGRESS_POD_IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } });

  const initEnv: EnvVar[] = [
    { name: 'EGRESS_VXLAN_VNI', value: String(vni) },
    { name: 'EGRESS_VXLAN_PORT', value: String(port) },
    podIp(),
    podIps(),
    { name: 'DATAPLANE', value: 'nftables' },
  ];
  if (backend !== undefined && backend !== 'auto') initEnv.push({ name: 'IPTABLES_BACKEND', value: backend });
  if (ctx.datastore !== undefined && ctx.datastore !== '') initEnv.push({ name: DATASTORE_ENV, value: ctx.datastore });

  const env: EnvVar[] = [
    { name: 'HEALTH_PORT', value: String(HEALTH_PORT) },
    podIp(),
    podIps(),
    { name: 'EGRESS_VXLAN_VNI', value: String(vni) },
    { name: 'LOG_SEVERITY', value: spec.logSeverity ?? 'Info' },
    // Drain after SIGTERM for the grace period (Kubernetes' default 30 s when unset), less 2 s to clean up
    // before the SIGKILL: established flows finish through the terminating gateway.
    { name: 'EGW_DRAIN_SECONDS', value: String(Math.max(0, (spec.template?.spec?.terminationGracePeriodSeconds ?? 30) - 2)) },
  ];
  const fd = spec.egressGatewayFailureDetection;
  const icmp = fd?.icmpProbe;
  // The operator sets a probe's variables only when it has targets (an empty list joins to "").
  if (icmp !== undefined && (icmp.ips ?? []).join(',') !== '') {
    env.push(
      { name: 'ICMP_PROBE_IPS', value: (icmp.ips ?? []).join(',') },
      { name: 'ICMP_PROBE_INTERVAL', value: `${icmp.intervalSeconds ?? 5}s` },
      { name: 'ICMP_PROBE_TIMEOUT', value: `${icmp.timeoutSeconds ?? 15}s` },
    );
  }
  const http = fd?.httpProbe;
  if (http !== undefined && (http.urls ?? []).join(',') !== '') {
    env.push(
      { name: 'HTTP_PROBE_URLS', value: (http.urls ?? []).join(',') },
      { name: 'HTTP_PROBE_INTERVAL', value: `${http.intervalSeconds ?? 10}s` },
      { name: 'HTTP_PROBE_TIMEOUT', value: `${http.timeoutSeconds ?? 30}s` },
    );
  }
  if (fd?.healthTimeoutDataStoreSeconds !== undefined) {
    env.push({ name: 'HEALTH_TIMEOUT_DATASTORE', value: `${fd.healthTimeoutDataStoreSeconds}s` });
  }
  if (ctx.datastore !== undefined && ctx.datastore !== '') env.push({ name: DATASTORE_ENV, value: ctx.datastore });

  const mainOverride = (userPod.containers ?? []).find((c) => c.name === GATEWAY_CONTAINER || c.name === 'calico-egw');
  const initOverride = (userPod.initContainers ?? []).find((c) => c.name === GATEWAY_INIT_CONTAINER);

  let readinessProbe: HttpProbe = {
    httpGet: { path: READINESS_PATH, port: HEALTH_PORT },
    initialDelaySeconds: READINESS_INITIAL_DELAY_SECONDS,
  };
  if (mainOverride?.readinessProbe !== undefined) readinessProbe = { ...readinessProbe, ...probeTimings(mainOverride.readinessProbe) };

  // User resources replace the rendered ones wholesale (as the operator's overrides do); the AWS
  // resource is added afterwards so that an override cannot drop it.
  let resources: ResourceRequirements | undefined = copyResources(mainOverride?.resources);
  if (nativeIP(d) === 'Enabled') {
    resources = {
      ...resources,
      requests: { ...resources?.requests, [AWS_SECONDARY_IPV4_RESOURCE]: '1' },
      limits: { ...resources?.limits, [AWS_SECONDARY_IPV4_RESOURCE]: '1' },
    };
  }
  const initResources = copyResources(initOverride?.resources);

  const init: Container = {
    name: GATEWAY_INIT_CONTAINER,
    image,
    command: [...(ctx.initCommand ?? GATEWAY_INIT_COMMAND)],
    env: initEnv,
    ...(initResources === undefined ? {} : { resources: initResources }),
    securityContext: rootContext(true),
  };
  const main: Container = {
    name: GATEWAY_CONTAINER,
    image,
    command: [...(ctx.command ?? GATEWAY_COMMAND)],
    env,
    ...(resources === undefined ? {} : { resources }),
    ports: [{ name: HEALTH_PORT_NAME, containerPort: HEALTH_PORT, protocol: 'TCP' }],
    readinessProbe,
    securityContext: { ...rootContext(false), capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] } },
  };

  const labels = { ...(spec.template?.metadata?.labels ?? {}) };
  const annotations: Record<string, string> = { [CNI_IPV4_POOLS]: JSON.stringify(poolList(d)) };
  const eips = spec.aws?.elasticIPs ?? [];
  if (eips.length > 0) annotations[CNI_AWS_ELASTIC_IPS] = JSON.stringify(eips);
  // egw's Elastic IP standby is switched on the EgressGateway itself (spec.aws stays as Calico has it).
  const standby = d.metadata.annotations?.[EGW_ELASTIC_IP_STANDBY];
  if (standby !== undefined) annotations[EGW_ELASTIC_IP_STANDBY] = standby;
  const externalNetworks = spec.externalNetworks ?? [];
  if (externalNetworks.length > 0) annotations[EXTERNAL_NETWORK_NAMES] = JSON.stringify(externalNetworks);
  // Template annotations are added only where they do not clash: the operator's own keys win.
  for (const [k, v] of Object.entries(spec.template?.metadata?.annotations ?? {})) if (!(k in annotations)) annotations[k] = v;

  return {
    metadata: { labels, annotations },
    spec: {
      ...(ctx.serviceAccountName === undefined || ctx.serviceAccountName === '' ? {} : { serviceAccountName: ctx.serviceAccountName }),
      initContainers: [init],
      containers: [main],
      ...(userPod.nodeSelector === undefined ? {} : { nodeSelector: { ...userPod.nodeSelector } }),
      ...(userPod.affinity === undefined ? {} : { affinity: structuredClone(userPod.affinity) }),
      ...(userPod.tolerations === undefined ? {} : { tolerations: structuredClone(userPod.tolerations) }),
      ...(userPod.topologySpreadConstraints === undefined ? {} : { topologySpreadConstraints: structuredClone(userPod.topologySpreadConstraints) }),
      ...(userPod.terminationGracePeriodSeconds === undefined ? {} : { terminationGracePeriodSeconds: userPod.terminationGracePeriodSeconds }),
      ...(userPod.priorityClassName === undefined || userPod.priorityClassName === '' ? {} : { priorityClassName: userPod.priorityClassName }),
    },
  };
}

/** The `cni.projectcalico.org/ipv4pools` list: each pool's name, else its CIDR (entries with neither are skipped). */
export function poolList(egw: EgressGateway): string[] {
  const out: string[] = [];
  for (const ref of egw.spec.ipPools ?? []) {
    if (ref.name !== undefined && ref.name !== '') out.push(ref.name);
    else if (ref.cidr !== undefined && ref.cidr !== '') out.push(ref.cidr);
  }
  return out;
}

function rootContext(privileged: boolean): SecurityContext {
  return {
    allowPrivilegeEscalation: privileged,
    capabilities: { drop: ['ALL'] },
    privileged,
    runAsGroup: 0,
    runAsNonRoot: false,
    runAsUser: 0,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function copyResources(r: { requests?: Record<string, number | string>; limits?: Record<string, number | string> } | undefined): ResourceRequirements | undefined {
  if (r === undefined) return undefined;
  return {
    ...(r.requests === undefined ? {} : { requests: { ...r.requests } }),
    ...(r.limits === undefined ? {} : { limits: { ...r.limits } }),
  };
}

const PROBE_TIMINGS = ['initialDelaySeconds', 'periodSeconds', 'timeoutSeconds', 'successThreshold', 'failureThreshold'] as const;

/** The timing fields of a probe override (its handler, if any, is ignored: the gateway's endpoint is fixed). */
function probeTimings(override: Record<string, unknown>): Partial<HttpProbe> {
  const out: Partial<Record<(typeof PROBE_TIMINGS)[number], number>> = {};
  for (const key of PROBE_TIMINGS) {
    const v = override[key];
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) out[key] = v;
  }
  return out;
}
