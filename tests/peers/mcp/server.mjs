// The MCP TypeScript SDK's own authorization pieces on loopback, for en-core-auth's
// tests of a login that starts from an API's URL (tests/resource_login.rs):
//   mcpAuthRouter           RFC 8414 metadata, RFC 7591 registration, authorization (PKCE)
//                           and token endpoints, with the in-memory provider below
//   mcpAuthMetadataRouter   RFC 9728 protected-resource metadata of /api-a and /api-b
//   metadataHandler         the metadata of /api-d, at a URL only its challenge names
//   requireBearerAuth       the APIs: 401 with `resource_metadata`, tokens of another
//                           resource refused
//
//   node server.mjs            (a free port on 127.0.0.1)
//
// Prints `listening on http://127.0.0.1:PORT` first; runs until killed.
//
// APIs (each answers 200 {"resource","client"} to a token issued for it):
//   /api-a, /api-b   challenge names their document (/.well-known/oauth-protected-resource/api-…)
//   /api-d           challenge names /custom-metadata/api-d (no well-known document)
//   /api-e           challenge without resource_metadata; document at the well-known URL
//   /api-c           hostile: its challenge names /api-b's document
//
// The provider approves every login at once (a 302 to the redirect URI with the code), and
// binds codes and refresh tokens to their client and resource: a code or refresh token
// used by another client, or for another resource, is invalid_grant. Refresh tokens
// rotate. Test hooks: GET /seen (every request's method and path, and every grant the
// provider saw), POST /test/forget-clients (the server forgets its registrations).

import * as crypto from 'node:crypto';
import express from 'express';
import { mcpAuthRouter, mcpAuthMetadataRouter, createOAuthMetadata } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { metadataHandler } from '@modelcontextprotocol/sdk/server/auth/handlers/metadata.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidGrantError, InvalidTargetError, InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';

const app = express();
const requests = [];
const grants = [];
const clients = new Map();
const codes = new Map();
const refreshTokens = new Map();
const accessTokens = new Map();

const random = () => crypto.randomBytes(24).toString('base64url');

const clientsStore = {
  getClient: (id) => clients.get(id),
  registerClient: (client) => {
    clients.set(client.client_id, client);
    return client;
  },
};

function issue(clientId, resource, scopes) {
  const access = random();
  const refresh = random();
  accessTokens.set(access, { clientId, resource, scopes, expiresAt: Math.floor(Date.now() / 1000) + 3600 });
  refreshTokens.set(refresh, { clientId, resource, scopes });
  return { access_token: access, token_type: 'Bearer', expires_in: 3600, refresh_token: refresh, scope: scopes.join(' ') };
}

const provider = {
  clientsStore,
  async authorize(client, params, res) {
    const code = random();
    codes.set(code, {
      clientId: client.client_id,
      challenge: params.codeChallenge,
      resource: params.resource?.href ?? null,
      scopes: params.scopes ?? [],
    });
    grants.push({ step: 'authorize', client_id: client.client_id, resource: params.resource?.href ?? null });
    const target = new URL(params.redirectUri);
    target.searchParams.set('code', code);
    if (params.state) target.searchParams.set('state', params.state);
    res.redirect(302, target.href);
  },
  async challengeForAuthorizationCode(client, code) {
    const bound = codes.get(code);
    if (!bound || bound.clientId !== client.client_id) throw new InvalidGrantError('unknown code');
    return bound.challenge;
  },
  async exchangeAuthorizationCode(client, code, _verifier, _redirectUri, resource) {
    const bound = codes.get(code);
    codes.delete(code);
    grants.push({ step: 'authorization_code', client_id: client.client_id, resource: resource?.href ?? null });
    if (!bound || bound.clientId !== client.client_id) throw new InvalidGrantError('unknown code');
    if ((resource?.href ?? null) !== bound.resource) throw new InvalidTargetError('the code is for another resource');
    return issue(client.client_id, bound.resource, bound.scopes);
  },
  async exchangeRefreshToken(client, refreshToken, _scopes, resource) {
    const bound = refreshTokens.get(refreshToken);
    grants.push({ step: 'refresh_token', client_id: client.client_id, resource: resource?.href ?? null });
    if (!bound || bound.clientId !== client.client_id) throw new InvalidGrantError('unknown refresh token');
    if ((resource?.href ?? null) !== bound.resource) throw new InvalidTargetError('the refresh token is for another resource');
    refreshTokens.delete(refreshToken);
    return issue(client.client_id, bound.resource, bound.scopes);
  },
  async verifyAccessToken(token) {
    const bound = accessTokens.get(token);
    if (!bound) throw new InvalidTokenError('unknown token');
    return {
      token,
      clientId: bound.clientId,
      scopes: bound.scopes,
      expiresAt: bound.expiresAt,
      resource: bound.resource ? new URL(bound.resource) : undefined,
    };
  },
};

app.use((req, _res, next) => {
  if (req.path !== '/seen') requests.push({ method: req.method, path: req.path });
  next();
});
app.get('/seen', (_req, res) => res.json({ requests, grants }));
app.post('/test/forget-clients', (_req, res) => {
  clients.clear();
  res.json({ forgotten: true });
});

const server = app.listen(0, '127.0.0.1', () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  const issuerUrl = new URL(base);
  const noRateLimit = { rateLimit: false };
  app.use(mcpAuthRouter({
    provider,
    issuerUrl,
    authorizationOptions: noRateLimit,
    tokenOptions: noRateLimit,
    clientRegistrationOptions: noRateLimit,
  }));
  const oauthMetadata = createOAuthMetadata({ provider, issuerUrl });
  const api = (name, resourceMetadataUrl) => {
    const resource = new URL(`${base}/${name}`);
    app.get(`/${name}`, requireBearerAuth({ verifier: provider, expectedResource: resource, resourceMetadataUrl }),
      (req, res) => res.json({ resource: req.auth.resource?.href ?? null, client: req.auth.clientId }));
    return resource;
  };
  for (const name of ['api-a', 'api-b']) {
    const resource = api(name, `${base}/.well-known/oauth-protected-resource/${name}`);
    app.use(mcpAuthMetadataRouter({ oauthMetadata, resourceServerUrl: resource, resourceName: name }));
  }
  const d = api('api-d', `${base}/custom-metadata/api-d`);
  app.use('/custom-metadata/api-d', metadataHandler({ resource: d.href, authorization_servers: [oauthMetadata.issuer] }));
  const e = api('api-e', undefined);
  app.use(mcpAuthMetadataRouter({ oauthMetadata, resourceServerUrl: e }));
  // Hostile: a challenge naming another API's document.
  api('api-c', `${base}/.well-known/oauth-protected-resource/api-b`);
  console.log(`listening on ${base}`);
});
