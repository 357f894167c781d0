/**
 * @packageDocumentation
 * The wire contract of SafeDeploy: catalog documents, message envelopes, events, commands,
 * stream and subject names. zod schemas with their inferred types; nothing else.
 */
export { Duration, ResourceName, Timestamp, formatDuration, parseDuration } from "./primitives.js";
