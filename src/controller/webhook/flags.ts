/**
 * The `egw controller --webhook-*` flags, parsed into {@link ValidationWebhookOptions} (pure).
 */
import { EgwError } from '../../platform/errors.js';
import { WEBHOOK_CONFIGURATION_NAME } from './configuration.js';
import { parseListen } from './server.js';
import type { ValidationWebhookOptions } from './validation-webhook.js';

/** The flags as commander gives them. */
export interface WebhookFlags {
  readonly webhookListen?: string;
  readonly webhookUrl?: string;
  readonly webhookService?: string;
  readonly webhookTlsSecret?: string;
  readonly webhookConfiguration?: string;
  readonly webhookFailurePolicy?: string;
}

function namespacedName(flag: string, text: string): { namespace: string; name: string } {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(text.trim());
  if (m === null) throw new EgwError('InvalidInput', `${flag} "${text}" is not NAMESPACE/NAME`, { hint: `e.g. ${flag} egw-system/egw-webhook` });
  return { namespace: m[1]!, name: m[3]! };
}

/**
 * The webhook's options, or undefined when `--webhook-listen` is not given (the webhook is off by
 * default). With it, exactly one of `--webhook-url` and `--webhook-service` says how the API server calls
 * it. The TLS Secret defaults to `<service namespace>/<service name>-tls` with `--webhook-service` (every
 * replica shares one CA) and to none with `--webhook-url` (in memory: one process). Throws `InvalidInput`.
 */
export function webhookOptionsFromFlags(flags: WebhookFlags): ValidationWebhookOptions | undefined {
  const others = [flags.webhookUrl, flags.webhookService, flags.webhookTlsSecret, flags.webhookConfiguration, flags.webhookFailurePolicy];
  if (flags.webhookListen === undefined) {
    if (others.some((f) => f !== undefined)) throw new EgwError('InvalidInput', 'the --webhook-* flags need --webhook-listen', { hint: 'add --webhook-listen 0.0.0.0:9443' });
    return undefined;
  }
  const listen = parseListen(flags.webhookListen);
  if ((flags.webhookUrl === undefined) === (flags.webhookService === undefined)) {
    throw new EgwError('InvalidInput', '--webhook-listen needs exactly one of --webhook-url and --webhook-service (how the API server reaches the webhook)', {
      hint: 'in a cluster --webhook-service egw-system/egw-webhook; on one machine --webhook-url https://127.0.0.1:9443/validate',
    });
  }
  const service = flags.webhookService === undefined ? undefined : namespacedName('--webhook-service', flags.webhookService);
  const policy = flags.webhookFailurePolicy ?? 'Fail';
  if (policy !== 'Fail' && policy !== 'Ignore') throw new EgwError('InvalidInput', `--webhook-failure-policy "${policy}" is not Fail or Ignore`, { hint: 'Fail (the default) unless recovering' });
  const tlsSecret =
    flags.webhookTlsSecret !== undefined
      ? namespacedName('--webhook-tls-secret', flags.webhookTlsSecret)
      : service === undefined
        ? undefined
        : { namespace: service.namespace, name: `${service.name}-tls` };
  return {
    listen,
    client: service === undefined ? { url: flags.webhookUrl! } : { service },
    configurationName: flags.webhookConfiguration ?? WEBHOOK_CONFIGURATION_NAME,
    failurePolicy: policy,
    ...(tlsSecret === undefined ? {} : { tlsSecret }),
  };
}
