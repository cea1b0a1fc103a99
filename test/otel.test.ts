import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTelemetry } from '../src/exports/otel.js';
import { memoryStore, SessionManager, type StoreRecord } from '../src/index.js';
import { type FakeAuthServer, startFakeAuthServer } from './helpers/fake-as.js';

// tokenkeeper/otel with the SDK's in-memory exporters: a refresh storm of two managers (two
// processes' worth) on one expired session, and what it exported: names, values, no secret.

let as: FakeAuthServer;
beforeAll(async () => {
  as = await startFakeAuthServer();
});
afterAll(() => as?.close());

describe('tokenkeeper/otel', () => {
  it('exports spans and metrics of a storm: one token request, one renewal, lock waits; no token, secret or session id', async () => {
    const spans = new InMemorySpanExporter();
    const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }).getTracer('test');
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const meter = new MeterProvider({ readers: [reader] }).getMeter('test');
    const instrumentation = openTelemetry({ tracer, meter });

    const store = memoryStore();
    const sessionId = 'user-4711-secret-looking-id';
    const options = {
      store,
      tokenEndpoint: as.tokenEndpoint,
      revocationEndpoint: as.revocationEndpoint,
      client: { clientId: as.clientId, clientSecret: as.clientSecret },
      instrumentation,
    };
    const a = new SessionManager(options);
    const b = new SessionManager(options);
    const issued = as.issue();
    await a.adopt(sessionId, issued);
    const key = `tokenkeeper:s:${sessionId}`;
    const entry = await store.get(key);
    const value = structuredClone(entry?.value) as StoreRecord & { tokens: { expiresAt: number } };
    value.tokens.expiresAt = Date.now() - 1_000;
    await store.set(key, value);
    as.resetCounts();

    const [sa, sb] = [await a.get(sessionId), await b.get(sessionId)];
    const tokens = await Promise.all(
      Array.from({ length: 200 }, (_, i) => ((i % 2 ? sa : sb) as NonNullable<typeof sa>).getAccessToken()),
    );
    expect(new Set(tokens).size).toBe(1);
    expect(as.counts.refresh).toBe(1);
    // A failure, for the failure metric: a refresh the server refuses.
    await a.adopt('doomed', { access_token: 'x', token_type: 'Bearer', expires_in: 1, refresh_token: 'not-known' });
    await (await a.get('doomed'))?.getAccessToken().catch(() => {});

    const exported = spans.getFinishedSpans();
    const names = exported.map((s) => s.name);
    const tokenRequests = exported.filter((s) => s.name === 'tokenkeeper.token_request');
    expect(tokenRequests.filter((s) => s.attributes['tokenkeeper.request'] === 'refresh_token')).toHaveLength(2);
    expect(tokenRequests[0]?.attributes).toMatchObject({
      'url.path': '/token',
      'http.response.status_code': 200,
      'tokenkeeper.attempt': 1,
    });
    expect(names).toContain('tokenkeeper.store.lock');
    expect(names).toContain('tokenkeeper.store.get');
    expect(names).toContain('tokenkeeper.store.set');
    expect(exported.find((s) => s.name === 'tokenkeeper.store.get')?.attributes).toEqual({
      'tokenkeeper.store': 'memory',
    });

    await reader.forceFlush();
    const metrics = exporter
      .getMetrics()
      .flatMap((r) => r.scopeMetrics)
      .flatMap((s) => s.metrics);
    const metric = (name: string) => metrics.find((m) => m.descriptor.name === name);
    const renewals = metric('tokenkeeper.renewals')?.dataPoints ?? [];
    expect(renewals.find((p) => p.attributes['tokenkeeper.outcome'] === 'refreshed')?.value).toBe(1);
    expect(renewals.find((p) => p.attributes['tokenkeeper.outcome'] === 'reauth_required')?.value).toBe(1);
    expect(metric('tokenkeeper.reauth_required')?.dataPoints[0]?.value).toBe(1);
    const count = (name: string) => (metric(name)?.dataPoints[0]?.value as { count?: number } | undefined)?.count;
    expect(count('tokenkeeper.lock.wait')).toBe(1);
    expect(count('tokenkeeper.renewal.duration')).toBe(1);
    expect(metric('tokenkeeper.logins')?.dataPoints[0]?.value).toBe(2);

    // Nothing secret or identifying anywhere in what was exported.
    const everything = JSON.stringify([
      exported.map((s) => ({ name: s.name, attributes: s.attributes, status: s.status, events: s.events })),
      metrics.map((m) => m.dataPoints.map((p) => p.attributes)),
    ]);
    const secrets = [
      issued.access_token,
      issued.refresh_token as string,
      tokens[0] as string,
      as.clientSecret,
      sessionId,
      'doomed',
      'not-known',
    ];
    for (const secret of secrets) expect(everything).not.toContain(secret);
    await store.close();
  });
});
