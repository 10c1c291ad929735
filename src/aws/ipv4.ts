/** Just enough IPv4 for the fabric (the aws room imports nothing but platform). Pure. */

/** The number of a dotted quad, or undefined. */
export function ipv4ToNumber(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (m === null) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return (((parts[0]! * 256 + parts[1]!) * 256 + parts[2]!) * 256 + parts[3]!) >>> 0;
}

/** True when `ip` lies inside `cidr` (`a.b.c.d/p`); false for anything malformed. */
export function cidrContainsIpv4(cidr: string, ip: string): boolean {
  const [base, len] = cidr.split('/');
  const b = base === undefined ? undefined : ipv4ToNumber(base);
  const a = ipv4ToNumber(ip);
  const p = Number(len);
  if (b === undefined || a === undefined || !Number.isInteger(p) || p < 0 || p > 32) return false;
  const size = 2 ** (32 - p);
  const first = b - (b % size);
  return a >= first && a < first + size;
}
