// The page's only module: Hanko's <hanko-auth> element logs in, Hanko's frontend SDK holds the session token,
// and the Tornado API is called with it twice: as the cookie the SDK stored, and as a bearer token.
import { register } from "/modules/hanko-elements/elements.js";
import { Hanko } from "/modules/hanko-frontend-sdk/sdk.modern.js";

const config = await (await fetch("/config.json")).json();
await register(config.hankoApiUrl); // defines <hanko-auth>
const hanko = new Hanko(config.hankoApiUrl);
window.hanko = hanko; // to try validateSession() and friends from the console

async function callApi(output, init) {
  const response = await fetch(`${config.apiUrl}/api/me`, init);
  const body = await response.json();
  document.getElementById(output).textContent = response.ok ? `${body.user_id} (${body.email})` : body.error;
  return { status: response.status, body };
}

async function showProfile() {
  document.getElementById("login").hidden = true;
  document.getElementById("profile").hidden = false;
  window.apiAnswers = {
    // The cookie rides along: the API is on another port of the same site, and allows this origin with credentials.
    cookie: await callApi("with-cookie", { credentials: "include" }),
    // No cookie this time: the token the SDK keeps, as a bearer token.
    bearer: await callApi("with-bearer", {
      credentials: "omit",
      headers: { Authorization: `Bearer ${hanko.getSessionToken()}` },
    }),
  };
  document.documentElement.dataset.apiCalled = "true";
}

document.getElementById("logout").addEventListener("click", async () => {
  await hanko.logout(); // ends the session at Hanko and removes the cookie
  location.reload();
});
hanko.onSessionCreated(showProfile);
if ((await hanko.validateSession()).is_valid) {
  await showProfile(); // logged in already: Hanko says the session still lives
}
document.documentElement.dataset.hankoReady = "true";
