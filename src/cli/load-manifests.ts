import { hasErrors, parseManifests, validateDocument } from '../api/index.js';
import type { IncomingResource, Issue } from '../api/index.js';
import type { ManifestSource } from './manifest-sources.js';

/** Every document of the sources, validated and defaulted, and every issue found on the way. */
export interface LoadedManifests {
  resources: IncomingResource[];
  issues: Issue[];
}

/** Parses and validates every document of every source (pure over the texts). */
export function loadManifests(sources: readonly ManifestSource[]): LoadedManifests {
  const resources: IncomingResource[] = [];
  const issues: Issue[] = [];
  for (const source of sources) {
    const parsed = parseManifests(source.text, source.file);
    issues.push(...parsed.issues);
    for (const doc of parsed.documents) {
      const result = validateDocument(doc.value, doc);
      issues.push(...result.issues);
      if (result.resource !== undefined && !hasErrors(result.issues)) resources.push({ resource: result.resource, location: doc });
    }
  }
  return { resources, issues };
}
