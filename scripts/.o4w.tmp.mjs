import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
const sets = {
  base: 'discoveryRequest processDiscoveryResponse clientCredentialsGrantRequest genericTokenEndpointRequest refreshTokenGrantRequest processRefreshTokenResponse processGenericTokenEndpointResponse revocationRequest processRevocationResponse ClientSecretBasic ClientSecretPost None ResponseBodyError customFetch allowInsecureRequests',
  code: 'validateAuthResponse authorizationCodeGrantRequest processAuthorizationCodeResponse getValidatedIdTokenClaims generateRandomCodeVerifier generateRandomState generateRandomNonce calculatePKCECodeChallenge AuthorizationResponseError OperationProcessingError expectNoNonce',
  sig: 'validateApplicationLevelSignature',
  device: 'deviceAuthorizationRequest processDeviceAuthorizationResponse deviceCodeGrantRequest processDeviceCodeResponse',
  jwt: 'PrivateKeyJwt ClientSecretJwt',
};
async function size(names) {
  const out = await build({ bundle: true, minify: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, legalComments: 'none',
    stdin: { contents: `export { ${names.join(', ')} } from 'oauth4webapi';`, resolveDir: process.cwd() } });
  return gzipSync(out.outputFiles[0].contents, { level: 9 }).length;
}
const base = sets.base.split(' ');
const b = await size(base);
console.log('base', b);
for (const k of ['code', 'sig', 'device', 'jwt']) console.log(k, '+', (await size([...base, ...sets[k].split(' ')])) - b);
console.log('all', await size(Object.values(sets).join(' ').split(' ')));
