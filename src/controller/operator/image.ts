/**
 * The container image the operator puts in gateway pods: egw's own image, tagged with egw's version.
 */
import { egwPackage } from '../../platform/package-info.js';

/** Where egw's image is published. */
export const EGW_IMAGE_REPOSITORY = 'ghcr.io/egw-project/egw';

/** egw's version (src/platform/package-info.ts); `0.0.0-dev` when no package.json is found. */
export function egwVersion(): string {
  return egwPackage().version;
}

/** `ghcr.io/egw-project/egw:<egw version>`: the image rendered when no other is configured. */
export function defaultGatewayImage(): string {
  return `${EGW_IMAGE_REPOSITORY}:${egwVersion()}`;
}
