// Logs in to a LocalIdp with AWS's amazon-cognito-identity-js (the Cognito client of
// Amplify JS), which implements device tracking itself: on NewDeviceMetadata it makes the
// device password and verifier and calls ConfirmDevice; with a cached device it answers
// DEVICE_SRP_AUTH / DEVICE_PASSWORD_VERIFIER. Run by tests/local_idp_amplify.rs.
//
//   node login.mjs --endpoint URL --pool-id ID --client-id ID --username U --password P
//                  [--remember] [--device-key K --device-group-key G --device-password P]
//
// Prints one JSON line: {"ok": true, "access_token": …, "device": {key, group_key, password}}
// or {"ok": false, "error": "<Cognito exception>", "message": …}. Only the given endpoint
// is contacted.
import { parseArgs } from 'node:util';
import {
  AuthenticationDetails,
  CognitoUser,
  CognitoUserPool,
} from 'amazon-cognito-identity-js';

const { values: args } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    'pool-id': { type: 'string' },
    'client-id': { type: 'string' },
    username: { type: 'string' },
    password: { type: 'string' },
    remember: { type: 'boolean', default: false },
    'device-key': { type: 'string' },
    'device-group-key': { type: 'string' },
    'device-password': { type: 'string' },
  },
});

// The library's storage (localStorage in browsers), in memory, with a device given by the
// test put where the library looks for it.
const items = new Map();
const storage = {
  setItem: (k, v) => items.set(k, String(v)),
  getItem: (k) => (items.has(k) ? items.get(k) : null),
  removeItem: (k) => items.delete(k),
  clear: () => items.clear(),
};
const prefix = `CognitoIdentityServiceProvider.${args['client-id']}.${args.username}`;
if (args['device-key']) {
  storage.setItem(`${prefix}.deviceKey`, args['device-key']);
  storage.setItem(`${prefix}.deviceGroupKey`, args['device-group-key']);
  storage.setItem(`${prefix}.randomPasswordKey`, args['device-password']);
}

const pool = new CognitoUserPool({
  UserPoolId: args['pool-id'],
  ClientId: args['client-id'],
  endpoint: args.endpoint,
  Storage: storage,
});
const user = new CognitoUser({ Username: args.username, Pool: pool, Storage: storage });
const details = new AuthenticationDetails({ Username: args.username, Password: args.password });

function finish(out) {
  process.stdout.write(JSON.stringify(out) + '\n');
}

function device() {
  const key = storage.getItem(`${prefix}.deviceKey`);
  return key === null
    ? null
    : {
        key,
        group_key: storage.getItem(`${prefix}.deviceGroupKey`),
        password: storage.getItem(`${prefix}.randomPasswordKey`),
      };
}

function failed(err) {
  finish({ ok: false, error: err.code || err.name, message: err.message });
}

user.authenticateUser(details, {
  onSuccess(session, userConfirmationNecessary) {
    const done = () =>
      finish({
        ok: true,
        access_token: session.getAccessToken().getJwtToken(),
        id_token: session.getIdToken().getJwtToken(),
        user_confirmation_necessary: userConfirmationNecessary === true,
        device: device(),
      });
    if (userConfirmationNecessary && args.remember) {
      user.setDeviceStatusRemembered({ onSuccess: done, onFailure: failed });
    } else {
      done();
    }
  },
  onFailure: failed,
  mfaRequired: () => finish({ ok: false, error: 'MFA', message: 'SMS_MFA asked' }),
  totpRequired: () => finish({ ok: false, error: 'MFA', message: 'SOFTWARE_TOKEN_MFA asked' }),
  newPasswordRequired: () => finish({ ok: false, error: 'NEW_PASSWORD_REQUIRED', message: '' }),
});
