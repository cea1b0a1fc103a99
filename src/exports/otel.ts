/** `tokenkeeper/otel`: OpenTelemetry spans and metrics (`@opentelemetry/api`, an optional peer). */

export type { OpenTelemetryOptions } from '../integrations/otel.js';
export { openTelemetry } from '../integrations/otel.js';
