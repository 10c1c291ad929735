/**
 * Small semantic checks shared by the kinds: names, labels, selectors, durations, addresses. Pure.
 */
import { isEgwError } from '../platform/errors.js';
import type { IssueSink, PathSegment } from './issues.js';
import { getSelector } from './selector/index.js';

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** True for a Kubernetes DNS-1123 label (namespace names): lowercase alphanumerics and '-', at most 63. */
export function isDnsLabel(name: string): boolean {
  return name.length <= 63 && dns1123Label.test(name);
}

/** True for a Kubernetes DNS-1123 subdomain (most resource names): labels joined by '.', at most 253. */
export function isDnsSubdomain(name: string): boolean {
  return name.length <= 253 && dns1123Subdomain.test(name);
}

const labelName = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Why a label key is invalid, or undefined when it is valid (Kubernetes rules: optional DNS prefix + name). */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !isDnsSubdomain(prefix)) return `prefix "${prefix}" is not a DNS subdomain`;
  if (name.length === 0 || name.length > 63 || !labelName.test(name)) {
    return `name part "${name}" must be 1-63 characters of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`;
  }
  return undefined;
}

/** True for a valid label value: empty, or up to 63 alphanumerics/'-'/'_'/'.' starting and ending alphanumeric. */
export function isLabelValue(value: string): boolean {
  return value === '' || (value.length <= 63 && labelName.test(value));
}

/** Reports invalid metadata.name for a kind whose names are DNS subdomains (or labels). */
export function checkName(sink: IssueSink, name: string, style: 'subdomain' | 'label'): void {
  const ok = style === 'label' ? isDnsLabel(name) : isDnsSubdomain(name);
  if (!ok) {
    sink.error(
      ['metadata', 'name'],
      'metadata.invalid-name',
      name === '' ? 'name is empty' : `"${name}" is not a valid name`,
      style === 'label'
        ? 'at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit'
        : 'at most 253 lowercase letters, digits, "-" and ".", starting and ending with a letter or digit',
    );
  }
}

/** Reports invalid label keys and values. */
export function checkLabels(sink: IssueSink, path: readonly PathSegment[], labels: Readonly<Record<string, string>> | undefined): void {
  if (labels === undefined) return;
  for (const [key, value] of Object.entries(labels)) {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem !== undefined) {
      sink.error([...path, key], 'labels.invalid-key', `label key "${key}" is invalid: ${keyProblem}`, 'a key such as "egress-code" or "example.com/egress-code"');
    } else if (!isLabelValue(value)) {
      sink.error(
        [...path, key],
        'labels.invalid-value',
        `label value "${value}" is invalid`,
        "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
      );
    }
  }
}

/** The example shown when a selector is wrong. */
export const SELECTOR_EXAMPLE = `a selector such as "egress-code == 'red'"`;

/**
 * Reports a selector that does not parse (with the column and what the parser expected).
 * Returns true when it parses.
 */
export function checkSelector(sink: IssueSink, path: readonly PathSegment[], rule: string, text: string): boolean {
  try {
    getSelector(text);
    return true;
  } catch (err) {
    if (isEgwError(err, 'InvalidSelector')) {
      const expected = typeof err.details.expected === 'string' && err.details.expected !== '' ? err.details.expected : undefined;
      // The selector module's message already quotes the selector and names the column.
      sink.error(path, rule, err.message, expected === undefined ? SELECTOR_EXAMPLE : `${expected} (${SELECTOR_EXAMPLE})`);
      return false;
    }
    throw err;
  }
}

/** Felix's duration syntax (Go durations limited to h, m, s, ms), e.g. `10s`, `1m30s`, `1.5s`. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';

/** Milliseconds of a Felix duration, or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (!new RegExp(DURATION_PATTERN).test(text)) return undefined;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) total += Number(m[1]) * (unit[m[2] ?? ''] ?? 0);
  return total;
}

/**
 * AWS subnet IDs. Real ones are `subnet-` plus 8 (older) or 17 lowercase hex digits; egw accepts 8 to 32 so
 * that documentation-style IDs such as Calico's `subnet-000000000000000001` (18 digits) validate as written.
 */
export const AWS_SUBNET_ID_PATTERN = '^subnet-[0-9a-f]{8,32}$';

/** True for an ID accepted by {@link AWS_SUBNET_ID_PATTERN}. */
export function isAwsSubnetId(text: string): boolean {
  return new RegExp(AWS_SUBNET_ID_PATTERN).test(text);
}
