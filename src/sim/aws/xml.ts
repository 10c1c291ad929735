/**
 * A minimal XML writer for EC2 Query API responses. Elements are built as strings; every text value
 * goes through {@link escapeXml}, so callers never concatenate untrusted text into markup.
 */

/** The namespace of every EC2 response document (API version 2016-11-15). */
export const EC2_XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

/** A fragment of already-escaped XML. Only the helpers in this module create it. */
export interface Xml {
  readonly xml: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escapes text for use in element content or attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** A scalar value rendered as element text; `undefined` omits the element. */
export type XmlScalar = string | number | boolean | undefined;

/** `<name>value</name>`, or nothing when the value is undefined. Booleans render as `true`/`false`. */
export function leaf(name: string, value: XmlScalar): Xml {
  if (value === undefined) return { xml: '' };
  return { xml: `<${name}>${escapeXml(String(value))}</${name}>` };
}

/** `<name>children…</name>`; undefined children are skipped. */
export function el(name: string, ...children: (Xml | undefined)[]): Xml {
  return { xml: `<${name}>${children.map((c) => c?.xml ?? '').join('')}</${name}>` };
}

/** `<name><item>…</item>…</name>`: the EC2 shape of a list (always present, possibly empty). */
export function list<T>(name: string, items: readonly T[], render: (item: T) => (Xml | undefined)[]): Xml {
  return el(name, ...items.map((item) => el('item', ...render(item))));
}

/** A list of plain strings: `<name><item>a</item>…</name>`. */
export function stringList(name: string, items: readonly string[]): Xml {
  return { xml: `<${name}>${items.map((i) => `<item>${escapeXml(i)}</item>`).join('')}</${name}>` };
}

/** The concatenation of fragments. */
export function concat(...parts: (Xml | undefined)[]): Xml {
  return { xml: parts.map((p) => p?.xml ?? '').join('') };
}

/** A whole success document: `<{Action}Response xmlns=…><requestId>…</requestId>…</{Action}Response>`. */
export function responseDocument(action: string, requestId: string, body: Xml): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<${action}Response xmlns="${EC2_XMLNS}"><requestId>${escapeXml(requestId)}</requestId>${body.xml}</${action}Response>`
  );
}

/** An AWS error document, in the shape EC2 returns for every failed Query API call. */
export function errorDocument(code: string, message: string, requestId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Response><Errors><Error><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error></Errors>` +
    `<RequestID>${escapeXml(requestId)}</RequestID></Response>`
  );
}
