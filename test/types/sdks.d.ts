// The little of each SDK's API the drop-in tests use (the SDKs ship no types).
declare module 'podio-js' {
  interface PodioApi {
    isAuthenticated(): Promise<void>;
    authenticateWithApp(appId: number | string, appToken: string, callback: (error: unknown) => void): void;
    request(method: string, path: string, data?: unknown): Promise<unknown>;
    authObject?: { accessToken?: string; refreshToken?: string };
    _clearAuthentication(): void;
  }
  const Podio: {
    api: new (
      auth: { authType: string; clientId?: string; clientSecret?: string },
      options?: { apiURL?: string; sessionStore?: unknown },
    ) => PodioApi;
  };
  export default Podio;
}

declare module 'sharetribe-flex-integration-sdk' {
  const sdk: {
    createInstance(config: Record<string, unknown>): {
      marketplace: { show(params?: Record<string, unknown>): Promise<{ status: number; data: unknown }> };
      authInfo(): Promise<Record<string, unknown>>;
      revoke(): Promise<unknown>;
    };
  };
  export default sdk;
}
