/**
 * Calico's defaults, filled in when a resource is stored (and so shown by `egw get -o yaml`).
 */
import type { AnyResource } from './kinds.js';
import { defaultAWSSubnet } from './kinds/aws-subnet.js';
import { defaultEgressGatewayPolicy } from './kinds/egress-gateway-policy.js';
import { defaultEgressGateway } from './kinds/egress-gateway.js';
import { defaultFelixConfiguration } from './kinds/felix-configuration.js';
import { defaultIPPool } from './kinds/ip-pool.js';
import { defaultIPReservation } from './kinds/ip-reservation.js';
import { defaultKubernetes } from './kinds/kubernetes.js';

/**
 * Returns a copy of `resource` with Calico's defaults filled in and enum values that Calico accepts in any
 * case rewritten in their canonical case. Pure and idempotent: `applyDefaults(applyDefaults(r))` deep-equals
 * `applyDefaults(r)`, and the input is never modified. Expects a structurally valid resource (as returned by
 * `validateDocument`, which already applies it).
 */
export function applyDefaults<T extends AnyResource>(resource: T): T {
  const r: AnyResource = resource;
  let out: AnyResource;
  switch (r.kind) {
    case 'IPPool':
      out = defaultIPPool(r);
      break;
    case 'IPReservation':
      out = defaultIPReservation(r);
      break;
    case 'FelixConfiguration':
      out = defaultFelixConfiguration(r);
      break;
    case 'EgressGatewayPolicy':
      out = defaultEgressGatewayPolicy(r);
      break;
    case 'EgressGateway':
      out = defaultEgressGateway(r);
      break;
    case 'AWSSubnet':
      out = defaultAWSSubnet(r);
      break;
    case 'Namespace':
    case 'Pod':
    case 'Node':
      out = defaultKubernetes(r);
      break;
  }
  return out as T;
}
