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
//   dpop-client    client_secret_basic  client_credentials, DPoP-bound tokens only (RFC 9449)
//   exchange-client client_secret_basic token exchange (RFC 8693), JWT bearer (RFC 7523)
//
// oidc-provider has neither of the last two grants built in; they are registered below with
// its registerGrantType. Token exchange takes as subject token a JWT access token this
// provider issued (verified against its JWKS); `requested_token_type` id_token is answered
// with `token_type` N_A. The JWT bearer grant takes an assertion signed with jwt-client's
// key (iss = sub = jwt-client, aud = the issuer).
//
// DPoP (RFC 9449) is on, with nonces required at the token endpoint. `GET /resource` is a
// resource server that checks DPoP-bound access tokens on its own (with `jose`, not
// oidc-provider's code): the proof's signature, typ, alg, htm, htu, iat, a jti never seen
// before, ath, its own nonce (401 `use_dpop_nonce` with a `DPoP-Nonce` until the proof
// carries it), and the token's signature and `cnf.jkt` against the proof's key. It answers
// 200 with `{"sub","jkt","jti"}`, or 401 with `WWW-Authenticate: DPoP error="..."`.
//
// The jwt-client's key pair is made at start-up; its private key is printed as a third
// line, `private_key BASE64(PKCS#8 PEM)`, so that no key is committed.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';
import * as jose from 'jose';

const RESOURCE = 'urn:en-core-auth:api';
export const SECRETS = {
  'dpop-client': 'dpop:se+cret%4',
  'exchange-client': 'exchange:se+cret%5',
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
      client_id: 'dpop-client',
      client_secret: SECRETS['dpop-client'],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'read write',
      dpop_bound_access_tokens: true,
    },
    {
      client_id: 'exchange-client',
      client_secret: SECRETS['exchange-client'],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [
        'urn:ietf:params:oauth:grant-type:token-exchange',
        'urn:ietf:params:oauth:grant-type:jwt-bearer',
      ],
      response_types: [],
      redirect_uris: [],
      scope: 'read write',
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
    dPoP: { enabled: true, nonceSecret: crypto.randomBytes(32), requireNonce: () => true },
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

// Workload-identity grants (see the header): each issues an opaque access token for the
// exchanging client, with the scope asked for.
async function issue(ctx, extra = {}) {
  const token = new provider.ClientCredentials({
    client: ctx.oidc.client,
    scope: ctx.oidc.params.scope || undefined,
  });
  const value = await token.save();
  ctx.body = { access_token: value, expires_in: token.expiration, token_type: 'Bearer', scope: token.scope, ...extra };
}
const invalidGrant = (ctx, description) => {
  ctx.status = 400;
  ctx.body = { error: 'invalid_grant', error_description: description };
};
provider.registerGrantType(
  'urn:ietf:params:oauth:grant-type:token-exchange',
  async (ctx) => {
    const { subject_token, subject_token_type, audience, requested_token_type } = ctx.oidc.params;
    if (subject_token_type !== 'urn:ietf:params:oauth:token-type:jwt') return invalidGrant(ctx, 'subject_token_type');
    if (audience !== 'orders-api') return invalidGrant(ctx, 'audience');
    try {
      await jose.jwtVerify(subject_token, jwks, { issuer });
    } catch (err) {
      return invalidGrant(ctx, `subject_token: ${err.message}`);
    }
    if (requested_token_type === 'urn:ietf:params:oauth:token-type:id_token') {
      return issue(ctx, { token_type: 'N_A', issued_token_type: requested_token_type });
    }
    return issue(ctx, { issued_token_type: 'urn:ietf:params:oauth:token-type:access_token' });
  },
  ['subject_token', 'subject_token_type', 'audience', 'resource', 'scope', 'requested_token_type'],
);
const jwtClientKey = await jose.importJWK(publicJwk, 'ES256');
provider.registerGrantType(
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
  async (ctx) => {
    try {
      await jose.jwtVerify(ctx.oidc.params.assertion, jwtClientKey, {
        issuer: 'jwt-client',
        subject: 'jwt-client',
        audience: issuer,
        maxTokenAge: '5m',
      });
    } catch (err) {
      return invalidGrant(ctx, `assertion: ${err.message}`);
    }
    return issue(ctx);
  },
  ['assertion', 'scope'],
);

const providerCallback = provider.callback();
server.on('request', (req, res) => {
  if (req.url.split('?')[0] === '/resource') {
    resource(req, res).catch((err) => deny(res, 'invalid_token', String(err?.message ?? err)));
  } else {
    providerCallback(req, res);
  }
});

// The resource server's own DPoP checks (RFC 9449 §7 and §9), independent of the provider.
const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/jwks`));
const seenJti = new Set();
let resourceNonce = crypto.randomBytes(16).toString('base64url');
function deny(res, error, description, nonce) {
  const headers = { 'www-authenticate': `DPoP error="${error}", algs="ES256"`, 'content-type': 'application/json' };
  if (nonce) headers['dpop-nonce'] = nonce;
  res.writeHead(401, headers);
  res.end(JSON.stringify({ error, error_description: description }));
}
async function resource(req, res) {
  const authorization = req.headers.authorization ?? '';
  const proof = req.headers.dpop;
  if (!authorization.startsWith('DPoP ') || typeof proof !== 'string') {
    return deny(res, 'invalid_token', 'a DPoP-bound token and a DPoP proof are required');
  }
  const token = authorization.slice(5);
  const { payload, protectedHeader } = await jose.jwtVerify(proof, jose.EmbeddedJWK, {
    typ: 'dpop+jwt',
    algorithms: ['ES256'],
  });
  const htu = `${issuer}/resource`;
  const now = Math.floor(Date.now() / 1000);
  const ath = crypto.createHash('sha256').update(token).digest('base64url');
  if (payload.htm !== req.method) return deny(res, 'invalid_dpop_proof', 'htm');
  if (payload.htu !== htu) return deny(res, 'invalid_dpop_proof', `htu ${payload.htu}`);
  if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > 60) return deny(res, 'invalid_dpop_proof', 'iat');
  if (typeof payload.jti !== 'string' || seenJti.has(payload.jti)) return deny(res, 'invalid_dpop_proof', 'jti replayed');
  seenJti.add(payload.jti);
  if (payload.ath !== ath) return deny(res, 'invalid_dpop_proof', 'ath');
  if (payload.nonce !== resourceNonce) {
    resourceNonce = crypto.randomBytes(16).toString('base64url');
    return deny(res, 'use_dpop_nonce', 'a nonce is required', resourceNonce);
  }
  const { payload: claims } = await jose.jwtVerify(token, jwks, { issuer });
  const jkt = await jose.calculateJwkThumbprint(protectedHeader.jwk, 'sha256');
  if (claims.cnf?.jkt !== jkt) return deny(res, 'invalid_token', 'the token is not bound to the proof key');
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ sub: claims.sub, jkt, jti: payload.jti }));
}

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
