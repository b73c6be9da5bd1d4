// oidc-provider (OpenID Certified) on loopback, for en-core-auth's interoperability tests.
//
//   node server.mjs [PORT]     (0 or nothing: a free port)
//
// Prints `listening on http://127.0.0.1:PORT` as its first line, then
// `refresh_token VALUE`: a refresh token for `refresh-client`, issued directly through
// the provider's models because oidc-provider issues refresh tokens only after a user's
// interactive login, which a test cannot do. Runs until killed.
//
// Clients (secrets hold `:`, `+` and `%` on purpose: RFC 6749 §2.3.1 encoding):
//   basic-client   client_secret_basic  client_credentials           scopes read write
//   post-client    client_secret_post   client_credentials           scopes read write
//   refresh-client client_secret_basic  authorization_code, refresh_token
//   jwt-client     private_key_jwt (ES256) client_credentials        scopes read write
//   native-cli     public (none), native: authorization_code (PKCE, any loopback port),
//                  device_code, refresh_token; scopes openid offline_access read write
//
// People log in through oidc-provider's development interaction pages (any login name,
// no password check, then a consent page), which the tests fill in as a person would.
//
// The jwt-client's key pair is made at start-up; its private key is printed as a third
// line, `private_key BASE64(PKCS#8 PEM)`, so that no key is committed.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const RESOURCE = 'urn:en-core-auth:api';
export const SECRETS = {
  'basic-client': 'basic:se+cret%1',
  'post-client': 'post:se+cret%2',
  'refresh-client': 'refresh:se+cret%3',
};

const port = Number(process.argv[2] ?? 0);
const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicJwk = { ...publicKey.export({ format: 'jwk' }), use: 'sig', alg: 'ES256', kid: 'jwt-client-key' };
const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' });

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'basic-client',
      client_secret: SECRETS['basic-client'],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'read write',
    },
    {
      client_id: 'post-client',
      client_secret: SECRETS['post-client'],
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'read write',
    },
    {
      client_id: 'refresh-client',
      client_secret: SECRETS['refresh-client'],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      scope: 'openid offline_access read write',
    },
    {
      client_id: 'native-cli',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: [
        'authorization_code',
        'refresh_token',
        'urn:ietf:params:oauth:grant-type:device_code',
      ],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/'],
      scope: 'openid offline_access read write',
    },
    {
      client_id: 'jwt-client',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks: { keys: [publicJwk] },
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'read write',
    },
  ],
  scopes: ['openid', 'offline_access', 'read', 'write'],
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    clientCredentials: { enabled: true },
    // The login and consent pages a person uses in the browser (issue 12's tests).
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    // Access tokens for the API are JWTs; without a resource they are opaque, so both
    // kinds of access token go through the client.
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope: 'read write',
        audience: RESOURCE,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
      }),
    },
  },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 600,
    ClientCredentials: 600,
    RefreshToken: 3600,
    Grant: 3600,
  },
});
// Plain http on loopback: oidc-provider serves it (it only warns about https in
// production deployments behind proxies).
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

server.on('request', provider.callback());

const client = await provider.Client.find('refresh-client');
const grant = new provider.Grant({ accountId: 'alice', clientId: client.clientId });
grant.addOIDCScope('openid offline_access');
grant.addResourceScope(RESOURCE, 'read write');
const grantId = await grant.save();
const refreshToken = new provider.RefreshToken({
  client,
  accountId: 'alice',
  grantId,
  gty: 'authorization_code',
  scope: 'openid offline_access',
  resource: RESOURCE,
});
const refreshTokenValue = await refreshToken.save();

// The test harness stops reading stdout after the lines above; a later write (the
// development interactions log to the console) must not kill the provider with EPIPE.
process.stdout.on('error', () => {});

console.log(`listening on ${issuer}`);
console.log(`refresh_token ${refreshTokenValue}`);
console.log(`private_key ${Buffer.from(privatePem).toString('base64')}`);
