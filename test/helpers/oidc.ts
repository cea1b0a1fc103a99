// The tests use the demo's real authorization server (oidc-provider), so both exercise one setup.
export { type RealAuthServer, startRealAuthServer } from '../../examples/auth-server.js';
