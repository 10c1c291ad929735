/**
 * Least privilege on the etcd datastore: one etcd role (and user) per egw program, with key-prefix
 * permissions derived from the same per-kind grants as the Kubernetes RBAC ({@link GRANTS}), so that the
 * two cannot drift apart (issue 11, item 6). Pure.
 *
 * etcd permissions are key ranges; egw's keys are `<prefix><Kind>/<namespace or _>/<name>`
 * (src/datastore/etcd/etcd-datastore.ts), so a kind is the range `<prefix><Kind>/`.
 *
 * **Reads are the whole prefix, writes are per kind.** egw's etcd watch is one range over the prefix, so
 * that events of different kinds keep etcd's global revision order (the datastore contract), and etcd
 * lets a user watch a range only with read permission on all of it. So every program may read all of
 * egw's keys (egw keeps no credentials in the datastore); what a program may *write* is what keeps a
 * compromised gateway pod or CNI plugin from redirecting traffic: the gateway writes nothing, the CNI
 * plugin only IPAM records.
 */
import { GRANTS, PROGRAMS, type Program } from './rbac.js';

/** One etcd permission: `key` alone, or every key starting with it (`prefix`). */
export interface EtcdPermission {
  permission: 'read' | 'readwrite';
  key: string;
  prefix: boolean;
}

/** One program's etcd role and the user that holds it (same name: `egw-<program>`). */
export interface EtcdRole {
  program: Program;
  role: string;
  user: string;
  /** The datastore kinds it may write (documentation; the permissions say the same in key ranges). */
  writes: string[];
  permissions: EtcdPermission[];
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete']);

/**
 * What programs write on etcd beyond their Kubernetes grants: off Kubernetes, the operator makes gateway
 * Pod records itself (on Kubernetes a Deployment does), and the controller's Lease is an egw key (on
 * Kubernetes a coordination.k8s.io Lease in a Role of its own). Events are log lines on etcd: no key.
 */
const ETCD_ONLY_WRITES: Partial<Record<Program, readonly string[]>> = {
  controller: ['Pod', 'Lease'],
};

/** The datastore kinds `program` writes on etcd (sorted). */
export function etcdWrites(program: Program): string[] {
  const kinds = new Set<string>(ETCD_ONLY_WRITES[program] ?? []);
  for (const g of GRANTS[program]) {
    // A status grant is a write on etcd: status is part of the stored value.
    if (g.status === true || g.verbs.some((v) => WRITE_VERBS.has(v))) for (const k of g.kinds) kinds.add(k);
  }
  return [...kinds].sort();
}

/** The etcd roles of egw's programs for the key prefix `prefix` (default `/egw/`, as the datastore URL). */
export function etcdRoles(prefix = '/egw/'): EtcdRole[] {
  const p = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return PROGRAMS.map((program) => {
    const writes = etcdWrites(program);
    return {
      program,
      role: `egw-${program}`,
      user: `egw-${program}`,
      writes,
      permissions: [
        { permission: 'read', key: p, prefix: true },
        ...writes.map((k): EtcdPermission => ({ permission: 'readwrite', key: `${p}${k}/`, prefix: true })),
      ],
    };
  });
}

/**
 * A shell script of `etcdctl` commands that creates the roles and users, idempotently (an existing role
 * or user is kept; permissions are granted again, which etcd accepts). Each user's password is read from
 * `$EGW_ETCD_PASSWORD_DIR/<user>` (one file per user, given to that program as EGW_ETCD_PASSWORD_FILE);
 * with `--no-password` users instead, etcd takes the user name from the client certificate's CN.
 */
export function renderEtcdRolesScript(roles: readonly EtcdRole[], options: { noPassword?: boolean } = {}): string {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const lines = [
    '#!/bin/sh',
    '# etcd roles and users of egw, one per program (egw render etcd-roles; docs/security.md, "Least privilege on etcd").',
    '# Run as etcd root: ETCDCTL_ENDPOINTS, ETCDCTL_CACERT/ETCDCTL_CERT/ETCDCTL_KEY and ETCDCTL_USER=root:... set.',
    options.noPassword === true
      ? "# Users have no password: etcd maps a client certificate's CN to the user (run etcd with --client-cert-auth)."
      : '# Passwords: one file per user in $EGW_ETCD_PASSWORD_DIR (e.g. /etc/egw/etcd-passwords/egw-gateway).',
    'set -eu',
    ...(options.noPassword === true ? [] : [': "${EGW_ETCD_PASSWORD_DIR:?set EGW_ETCD_PASSWORD_DIR to the folder of the users\' password files}"']),
  ];
  for (const r of roles) {
    lines.push('', `# ${r.program}: reads the prefix; writes ${r.writes.length === 0 ? 'nothing' : r.writes.join(', ')}`);
    lines.push(`etcdctl role get ${q(r.role)} >/dev/null 2>&1 || etcdctl role add ${q(r.role)}`);
    for (const p of r.permissions) {
      lines.push(`etcdctl role grant-permission ${p.prefix ? '--prefix=true ' : ''}${q(r.role)} ${p.permission} ${q(p.key)}`);
    }
    const add =
      options.noPassword === true
        ? `etcdctl user add ${q(r.user)} --no-password`
        : `etcdctl user add ${q(r.user)} --interactive=false < "$EGW_ETCD_PASSWORD_DIR/${r.user}"`;
    lines.push(`etcdctl user get ${q(r.user)} >/dev/null 2>&1 || ${add}`);
    lines.push(`etcdctl user grant-role ${q(r.user)} ${q(r.role)}`);
  }
  lines.push(
    '',
    '# egw apply / egw delete run as an administrator: root, or a user with readwrite on the whole prefix.',
    '# Then, once: etcdctl role add root; etcdctl user add root; etcdctl user grant-role root root; etcdctl auth enable',
    '',
  );
  return lines.join('\n');
}
