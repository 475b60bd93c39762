// Mints tokens with jose (the library Hanko's Bun guide uses), with its own keys and its own JWKS export.
// Prints {"jwks": {...}, "tokens": {...}} on stdout. Usage: node mint.mjs AUDIENCE
import { SignJWT, exportJWK, generateKeyPair } from "jose";

const audience = process.argv[2] ?? "localhost";
const now = Math.floor(Date.now() / 1000);

async function signer(alg, options) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...options });
  const kid = crypto.randomUUID();
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, jwk, privateKey };
}

function claims(overrides = {}) {
  return {
    session_id: crypto.randomUUID(),
    email: { address: "jose@example.com", is_primary: true, is_verified: true },
    amr: ["passkey"],
    ...overrides,
  };
}

async function sign(key, { lifetime = 3600, iat = now, subject = "105e0000-0000-4000-8000-000000000001" } = {}) {
  return new SignJWT(claims())
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
    .setSubject(subject)
    .setAudience([audience])
    .setIssuedAt(iat)
    .setExpirationTime(iat + lifetime)
    .sign(key.privateKey);
}

function tamper(token) {
  const [header, payload, signature] = token.split(".");
  const body = JSON.parse(Buffer.from(payload, "base64url"));
  body.sub = "admin";
  return [header, Buffer.from(JSON.stringify(body)).toString("base64url"), signature].join(".");
}

const rsa = await signer("RS256", { modulusLength: 4096 });
const ec = await signer("ES256");
const stranger = await signer("RS256", { modulusLength: 4096 });
stranger.kid = rsa.kid; // another key that claims the published kid

const valid = await sign(rsa);
const tokens = {
  valid_rs256: valid,
  valid_es256: await sign(ec, { subject: "105e0000-0000-4000-8000-000000000002" }),
  expired_rs256: await sign(rsa, { iat: now - 7200, lifetime: 3600 }),
  expired_es256: await sign(ec, { iat: now - 7200, lifetime: 3600 }),
  tampered_rs256: tamper(valid),
  tampered_es256: tamper(await sign(ec)),
  other_key_rs256: await sign(stranger),
};
process.stdout.write(JSON.stringify({ jwks: { keys: [rsa.jwk, ec.jwk] }, tokens }));
