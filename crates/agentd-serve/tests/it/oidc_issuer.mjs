// A real OIDC issuer for the serve-mode tests: oauth2-mock-server driven over stdin.
// Usage: node oidc_issuer.mjs <path to oauth2-mock-server/dist/index.mjs>
// Prints {"issuer": "...", "port": N} once listening, then answers one line per command:
//   token <json>  -> a signed JWT; json = {"kid"?, "expiresIn"?, "claims"?: {name: value|null}}
//   rotate <kid>  -> adds a new RS256 key with that kid to the JWKS; prints "ok"
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const { OAuth2Server } = await import(pathToFileURL(process.argv[2]).href);
const server = new OAuth2Server();
await server.issuer.keys.generate('RS256', { kid: 'k1' });
await server.start(0, '127.0.0.1');
const port = server.address().port;
server.issuer.url = `http://localhost:${port}`;
console.log(JSON.stringify({ issuer: server.issuer.url, port }));

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const space = line.indexOf(' ');
  const command = space < 0 ? line : line.slice(0, space);
  const argument = space < 0 ? '' : line.slice(space + 1);
  try {
    if (command === 'token') {
      const options = argument ? JSON.parse(argument) : {};
      const token = await server.issuer.buildToken({
        kid: options.kid ?? 'k1',
        expiresIn: options.expiresIn,
        scopesOrTransform: (_header, payload) => {
          for (const [name, value] of Object.entries(options.claims ?? {})) {
            if (value === null) delete payload[name];
            else payload[name] = value;
          }
        },
      });
      console.log(token);
    } else if (command === 'rotate') {
      await server.issuer.keys.generate('RS256', { kid: argument });
      console.log('ok');
    } else {
      console.log(`error unknown command ${command}`);
    }
  } catch (error) {
    console.log(`error ${error.message}`);
  }
}
await server.stop();
