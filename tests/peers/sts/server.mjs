// A token service written from the RFCs, on loopback, for en-core-auth's workload identity
// tests (TokenSource, ClientAuth::client_assertion). Only `jose` is used, for the JWTs.
//
//   node server.mjs            (a free port on 127.0.0.1)
//
// Prints `listening on http://127.0.0.1:PORT` as its first line; runs until killed.
//
// It plays three parties, each with what it was sent recorded (GET /seen, a JSON list):
//   - the workload's identity provider (a kubelet, a CI system): POST /mint with form
//     fields `sub` and `aud` answers a JWT signed with this server's own ES256 key,
//     issuer `<base>/workload`, valid five minutes;
//   - GitHub Actions' ID-token endpoint: GET /github/token?audience=A, with
//     `Authorization: Bearer gh-request-token` (anything else: 401), answers
//     `{"count":1,"value":JWT}` with sub `repo:octo/app:ref:refs/heads/main` and aud A
//     (the repository's URL when no audience is given);
//   - the token service, POST /token (form):
//       RFC 8693 token exchange: `subject_token` verified against its key and issuer;
//       RFC 7523 §2.1 JWT bearer grant: `assertion` verified likewise;
//       client credentials with RFC 7523 §2.2 client authentication: `client_assertion`
//         (type urn:ietf:params:oauth:client-assertion-type:jwt-bearer) verified likewise,
//         with aud `api://AzureADTokenExchange` as Entra asks, and `client_id` required.
//     It answers `{"access_token":"at-N-<sub>","token_type":"Bearer","expires_in":3600}`,
//     or RFC 6749 §5.2 errors (`invalid_grant`, `invalid_client`, 400/401).

import * as http from 'node:http';
import * as jose from 'jose';

const { publicKey, privateKey } = await jose.generateKeyPair('ES256');
const seen = [];
let issued = 0;
let base = '';

const mint = (sub, aud) =>
  new jose.SignJWT({})
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
    .setIssuer(`${base}/workload`)
    .setSubject(sub)
    .setAudience(aud)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(privateKey);

// The subject of a JWT this server issued, or null when it does not verify.
async function verified(token, audience) {
  if (!token) return null;
  try {
    const options = { issuer: `${base}/workload`, algorithms: ['ES256'] };
    if (audience) options.audience = audience;
    const { payload } = await jose.jwtVerify(token, publicKey, options);
    return payload.sub;
  } catch {
    return null;
  }
}

function body(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function json(res, status, value, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(value));
}

const oauthError = (res, status, error, description) =>
  json(res, status, { error, error_description: description });

async function token(res, form, record) {
  const grant = form.get('grant_type');
  record.grant_type = grant;
  record.client_id = form.get('client_id');
  record.audience = form.getAll('audience');
  record.resource = form.getAll('resource');
  let sub;
  if (grant === 'urn:ietf:params:oauth:grant-type:token-exchange') {
    sub = record.subject = await verified(form.get('subject_token'));
    if (!sub) return oauthError(res, 400, 'invalid_grant', 'the subject token does not verify');
  } else if (grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
    sub = record.assertion_subject = await verified(form.get('assertion'));
    if (!sub) return oauthError(res, 400, 'invalid_grant', 'the assertion does not verify');
  } else if (grant === 'client_credentials') {
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      return oauthError(res, 401, 'invalid_client', 'a client assertion is required');
    }
    sub = record.client_assertion_subject = await verified(form.get('client_assertion'), 'api://AzureADTokenExchange');
    if (!sub || !record.client_id) {
      return oauthError(res, 401, 'invalid_client', 'the client assertion does not verify');
    }
  } else {
    return oauthError(res, 400, 'unsupported_grant_type', `no grant ${grant}`);
  }
  issued += 1;
  json(res, 200, { access_token: `at-${issued}-${sub}`, token_type: 'Bearer', expires_in: 3600 });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, base);
  const record = { method: req.method, path: url.pathname };
  if (url.pathname === '/seen') return json(res, 200, seen);
  seen.push(record);
  const text = await body(req);
  if (req.method === 'POST' && url.pathname === '/mint') {
    const form = new URLSearchParams(text);
    res.writeHead(200, { 'content-type': 'text/plain' });
    return res.end(await mint(form.get('sub'), form.get('aud')));
  }
  if (req.method === 'GET' && url.pathname === '/github/token') {
    record.authorization = req.headers.authorization ?? null;
    record.audience = url.searchParams.get('audience');
    record.api_version = url.searchParams.get('api-version');
    if (req.headers.authorization !== 'Bearer gh-request-token') {
      return json(res, 401, { message: 'Bad credentials' });
    }
    const value = await mint('repo:octo/app:ref:refs/heads/main', record.audience ?? 'https://github.com/octo');
    return json(res, 200, { count: 1, value });
  }
  if (req.method === 'POST' && url.pathname === '/token') {
    return token(res, new URLSearchParams(text), record);
  }
  json(res, 404, { error: 'not_found' });
});

server.listen(0, '127.0.0.1', () => {
  base = `http://127.0.0.1:${server.address().port}`;
  console.log(`listening on ${base}`);
});
