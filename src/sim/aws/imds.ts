import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Ec2Engine } from './engine.js';
import { privateDnsName } from './render.js';
import { stableHex } from './prng.js';
import type { WorldInstance } from './world.js';

/** The header that names the calling instance when the source address cannot (tests on loopback). */
export const INSTANCE_ID_HEADER = 'x-egw-sim-instance-id';
/** With the instance header: how many hops away the caller is (1 = the instance itself, 2 = a container on it). */
export const HOPS_HEADER = 'x-egw-sim-hops';

const MAX_TOKEN_TTL_SECONDS = 21_600;

/** A metadata tree: leaves are text, directories are nested records. */
type MetaNode = string | { [name: string]: MetaNode };

interface Token {
  instanceId: string;
  expiresAt: number;
}

/** Dependencies of the IMDS handler. */
export interface ImdsDeps {
  engine: Ec2Engine;
  now(): number;
}

/**
 * IMDSv2 as EC2 serves it on 169.254.169.254: `PUT /latest/api/token` with
 * `X-aws-ec2-metadata-token-ttl-seconds` (1…21600) returns a session token, and
 * `GET /latest/meta-data/…` / `/latest/dynamic/…` answer text (directories as newline-separated
 * lists, sub-directories ending in `/`). The caller is the instance whose address the request comes
 * from — only an instance reaches its IMDS on EC2 — unless a listener is bound to one instance or
 * the `X-Egw-Sim-Instance-Id` header names it (when allowed). Tokens are bound to their instance.
 */
export class Imds {
  private readonly tokens = new Map<string, Token>();

  constructor(private readonly deps: ImdsDeps) {}

  /** Handles one request under `/latest`; `boundInstanceId` is set on a listener bound to one instance. */
  handle(req: IncomingMessage, res: ServerResponse, path: string, boundInstanceId: string | undefined): void {
    const engine = this.deps.engine;
    const found = this.identify(req, boundInstanceId);
    const caller = found?.instance;
    if (found === undefined || caller === undefined) {
      return text(res, 403, 'Forbidden: the source address is not an instance of this world (on EC2 only the instance reaches its IMDS)\n');
    }
    if (req.method === 'PUT') {
      if (path !== '/latest/api/token') return text(res, 403, 'Forbidden\n');
      if (req.headers['x-forwarded-for'] !== undefined) return text(res, 403, 'Forbidden\n');
      const ttlText = header(req, 'x-aws-ec2-metadata-token-ttl-seconds');
      const ttl = ttlText !== undefined && /^\d+$/.test(ttlText) ? Number(ttlText) : NaN;
      if (!(ttl >= 1 && ttl <= MAX_TOKEN_TTL_SECONDS)) return text(res, 400, 'Missing or Invalid Parameters\n');
      if (found.hops > engine.world.sim.imds.hopLimit) {
        // EC2 sends the token response with an IP TTL of the hop limit: a caller behind more hops (a
        // container) never sees it. Dropping the connection stands in for the lost response.
        req.socket.destroy();
        return;
      }
      this.prune();
      const token = randomBytes(42).toString('base64');
      this.tokens.set(token, { instanceId: caller.id, expiresAt: this.deps.now() + ttl * 1000 });
      res.setHeader('x-aws-ec2-metadata-token-ttl-seconds', String(ttl));
      return text(res, 200, token);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'Method Not Allowed\n');
    const tokenText = header(req, 'x-aws-ec2-metadata-token');
    if (tokenText !== undefined) {
      const token = this.tokens.get(tokenText);
      if (token === undefined || token.expiresAt <= this.deps.now() || token.instanceId !== caller.id) {
        return text(res, 401, 'Unauthorized\n');
      }
    } else if (engine.world.sim.imds.tokens === 'required') {
      return text(res, 401, 'Unauthorized\n');
    }
    const node = lookup(this.tree(caller), path.replace(/^\/latest\/?/, ''));
    if (node === undefined) return text(res, 404, 'Not Found\n');
    if (typeof node === 'string') return text(res, 200, node);
    return text(res, 200, Object.entries(node).map(([k, v]) => (typeof v === 'string' ? k : `${k}/`)).join('\n'));
  }

  /** The calling instance (running) and how many hops away the caller is. */
  private identify(req: IncomingMessage, bound: string | undefined): { instance: WorldInstance; hops: number } | undefined {
    const engine = this.deps.engine;
    const byId = (id: string): WorldInstance | undefined => engine.world.instances.find((i) => i.id === id && !engine.isTerminated(id));
    const at = (instance: WorldInstance | undefined, hops: number): { instance: WorldInstance; hops: number } | undefined =>
      instance === undefined ? undefined : { instance, hops };
    if (bound !== undefined) return at(byId(bound), 1);
    const named = header(req, INSTANCE_ID_HEADER);
    if (named !== undefined && engine.world.sim.imds.trustInstanceHeader) {
      const hops = Number(header(req, HOPS_HEADER) ?? '1');
      return at(byId(named), Number.isInteger(hops) && hops >= 1 ? hops : 1);
    }
    const source = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    // An address of the primary ENI is the instance itself; one of another attached ENI belongs to a
    // workload behind the instance (a pod in its own network namespace): one hop farther.
    for (const i of engine.world.instances) {
      if (engine.isTerminated(i.id)) continue;
      for (const e of engine.enisOf(i.id)) {
        if (e.attachment?.status !== 'attached' || !e.privateIps.includes(source)) continue;
        return { instance: i, hops: e.primaryOf === i.id ? 1 : 2 };
      }
    }
    return undefined;
  }

  private prune(): void {
    const now = this.deps.now();
    for (const [k, t] of this.tokens) if (t.expiresAt <= now) this.tokens.delete(k);
  }

  private tree(instance: WorldInstance): MetaNode {
    const engine = this.deps.engine;
    const world = engine.world;
    const subnetOf = (id: string) => world.subnets.find((s) => s.id === id);
    const subnet = subnetOf(instance.subnetId);
    const vpcCidr = (vpcId: string): string => world.vpcs.find((v) => v.id === vpcId)?.cidr ?? '';
    const enis = engine.enisOf(instance.id).filter((e) => e.attachment?.status === 'attached');
    const primary = enis.find((e) => e.attachment?.deviceIndex === 0 && e.attachment.networkCardIndex === 0);
    const macs: Record<string, MetaNode> = {};
    for (const e of enis) {
      const s = subnetOf(e.subnetId);
      const associations: Record<string, MetaNode> = {};
      for (const ip of e.privateIps) {
        const a = engine.addressOnPrivateIp(ip);
        if (a !== undefined) associations[a.publicIp] = ip;
      }
      const node: Record<string, MetaNode> = {
        'device-number': String(e.attachment?.deviceIndex ?? 0),
        'interface-id': e.id,
        'local-hostname': privateDnsName(e.privateIps[0] ?? '', world.region),
        'local-ipv4s': e.privateIps.join('\n'),
        mac: e.macAddress,
        'network-card': String(e.attachment?.networkCardIndex ?? 0),
        'owner-id': world.accountId,
        'security-group-ids': e.groups.join('\n'),
        'security-groups': e.groups.map((g) => world.securityGroups.find((x) => x.id === g)?.name ?? g).join('\n'),
        'subnet-id': e.subnetId,
        'subnet-ipv4-cidr-block': s?.cidr ?? '',
        'vpc-id': e.vpcId,
        'vpc-ipv4-cidr-block': vpcCidr(e.vpcId),
        'vpc-ipv4-cidr-blocks': vpcCidr(e.vpcId),
      };
      if (Object.keys(associations).length > 0) {
        node['ipv4-associations'] = associations;
        node['public-ipv4s'] = Object.keys(associations).join('\n');
      }
      macs[e.macAddress] = node;
    }
    const now = this.deps.now();
    const primaryPublic = engine.addressOnPrivateIp(instance.privateIp)?.publicIp;
    const metaData: Record<string, MetaNode> = {
      'ami-id': 'ami-0e65c1b0e3f1d2a00',
      hostname: privateDnsName(instance.privateIp, world.region),
      iam: {
        info: JSON.stringify({ Code: 'Success', LastUpdated: new Date(now).toISOString(), InstanceProfileArn: `arn:aws:iam::${world.accountId}:instance-profile/${instance.iamRole}`, InstanceProfileId: `AIPA${stableHex(instance.id, 17).toUpperCase()}` }, null, 2),
        'security-credentials': { [instance.iamRole]: JSON.stringify(credentials(instance, now), null, 2) },
      },
      'instance-id': instance.id,
      'instance-type': instance.type,
      'local-hostname': privateDnsName(instance.privateIp, world.region),
      'local-ipv4': instance.privateIp,
      mac: primary?.macAddress ?? '',
      network: { interfaces: { macs } },
      placement: {
        'availability-zone': subnet?.availabilityZone ?? '',
        'availability-zone-id': subnet?.availabilityZoneId ?? '',
        region: world.region,
      },
      'reservation-id': `r-${instance.id.slice(2)}`,
      'security-groups': instance.securityGroups.map((g) => world.securityGroups.find((x) => x.id === g)?.name ?? g).join('\n'),
      services: { domain: 'amazonaws.com', partition: 'aws' },
    };
    if (primaryPublic !== undefined) metaData['public-ipv4'] = primaryPublic;
    return {
      'meta-data': metaData,
      dynamic: {
        'instance-identity': {
          document: JSON.stringify(
            {
              accountId: world.accountId,
              architecture: 'x86_64',
              availabilityZone: subnet?.availabilityZone ?? '',
              imageId: 'ami-0e65c1b0e3f1d2a00',
              instanceId: instance.id,
              instanceType: instance.type,
              pendingTime: new Date(now).toISOString(),
              privateIp: instance.privateIp,
              region: world.region,
              version: '2017-09-30',
            },
            null,
            2,
          ),
        },
      },
    };
  }
}

/** Dummy role credentials: the emulator accepts any signature, but SDKs need something to sign with. */
function credentials(instance: WorldInstance, now: number): Record<string, string> {
  return {
    Code: 'Success',
    LastUpdated: new Date(now).toISOString(),
    Type: 'AWS-HMAC',
    AccessKeyId: `ASIA${stableHex(`akid:${instance.id}`, 16).toUpperCase()}`,
    SecretAccessKey: stableHex(`secret:${instance.id}`, 40),
    Token: Buffer.from(`egw-aws-sim:${instance.id}:${instance.iamRole}`).toString('base64'),
    Expiration: new Date(now + 6 * 3600 * 1000).toISOString(),
  };
}

function lookup(root: MetaNode, path: string): MetaNode | undefined {
  let node: MetaNode | undefined = root;
  for (const part of path.split('/').filter((p) => p !== '')) {
    if (node === undefined || typeof node === 'string') return undefined;
    node = node[part];
  }
  return node;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function text(res: ServerResponse, status: number, body: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain');
  res.end(body);
}

