import { type Meter, metrics, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import type { AttributeValue, Instrumentation } from '../session/instrumentation.js';
import type { SessionManager } from '../session/manager.js';

/**
 * OpenTelemetry for tokenkeeper (`@opentelemetry/api`, an optional peer): spans around token
 * requests, lock waits and store calls, and metrics of renewals, failures and latencies. No
 * token, secret or session id ever becomes an attribute: requests are named by their grant and
 * endpoint (origin and path), stores by their kind, failures by their error code.
 */

export interface OpenTelemetryOptions {
  /** Default: the global tracer provider's `tokenkeeper` tracer. */
  tracer?: Tracer;
  /** Default: the global meter provider's `tokenkeeper` meter. */
  meter?: Meter;
}

/**
 * The instrumentation to give a manager.
 *
 * Spans: `tokenkeeper.token_request` (`tokenkeeper.request`: the grant or `revocation`,
 * `server.address`, `url.path`, `http.response.status_code`, `tokenkeeper.attempt`),
 * `tokenkeeper.store.get|set|delete` and `tokenkeeper.store.lock` (the lock wait), with
 * `tokenkeeper.store` (`redis`, `file`, ...).
 *
 * Metrics: `tokenkeeper.renewals` (counter, `tokenkeeper.outcome`: `refreshed`, `failed`,
 * `reauth_required`), `tokenkeeper.failures` (counter, `error.type`: the `TOKENKEEPER_*` code),
 * `tokenkeeper.lock.wait` and `tokenkeeper.renewal.duration` (histograms, ms),
 * `tokenkeeper.reauth_required` (counter of sessions that came to need a new login),
 * `tokenkeeper.logins`.
 *
 * @example
 * const manager = new SessionManager({ ...options, instrumentation: openTelemetry() });
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): Instrumentation {
  const tracer = options.tracer ?? trace.getTracer('tokenkeeper');
  const meter = options.meter ?? metrics.getMeter('tokenkeeper');
  const renewals = meter.createCounter('tokenkeeper.renewals', { description: 'Session renewals, by outcome' });
  const failures = meter.createCounter('tokenkeeper.failures', { description: 'Failures, by error code' });
  const lockWait = meter.createHistogram('tokenkeeper.lock.wait', {
    description: 'How long a renewal waited for the store lock',
    unit: 'ms',
  });
  const renewal = meter.createHistogram('tokenkeeper.renewal.duration', {
    description: 'How long the token endpoint took to renew a session',
    unit: 'ms',
  });
  const reauth = meter.createCounter('tokenkeeper.reauth_required', {
    description: 'Sessions that came to need a new login',
  });
  const logins = meter.createCounter('tokenkeeper.logins', { description: 'Logins, by grant' });

  return {
    span(name, attributes, fn) {
      return tracer.startActiveSpan(name, { attributes }, async (span) => {
        try {
          return await fn((key: string, value: AttributeValue) => span.setAttribute(key, value));
        } catch (error) {
          const code = (error as { code?: unknown }).code;
          span.setAttribute('error.type', typeof code === 'string' ? code : 'error');
          // The message of a tokenkeeper error holds no secret; anything else is not recorded.
          span.setStatus({ code: SpanStatusCode.ERROR, message: typeof code === 'string' ? code : 'error' });
          throw error;
        } finally {
          span.end();
        }
      });
    },
    observe(target) {
      const manager = target as unknown as SessionManager;
      manager.on('refresh', ({ grant, lockWaitMs, serverMs }) => {
        renewals.add(1, { 'tokenkeeper.outcome': 'refreshed', 'tokenkeeper.grant': grant });
        if (lockWaitMs !== undefined) lockWait.record(lockWaitMs);
        if (serverMs !== undefined) renewal.record(serverMs, { 'tokenkeeper.grant': grant });
      });
      manager.on('reauth-required', () => {
        renewals.add(1, { 'tokenkeeper.outcome': 'reauth_required' });
        reauth.add(1);
      });
      manager.on('error', ({ error }) => {
        const code = (error as { code?: unknown }).code;
        failures.add(1, { 'error.type': typeof code === 'string' && code.startsWith('TOKENKEEPER_') ? code : 'other' });
      });
      manager.on('login', ({ grant }) => logins.add(1, { 'tokenkeeper.grant': grant }));
    },
  };
}
