// The SDK's experimental.workspace.* calls against Burrow: adapters, create (a
// local folder, and a Docker container when BURROW_TEST_DOCKER_IMAGE names an
// image present here), files, search, a session and its shell through a client
// bound to the workspace (experimental_workspaceID), status, warp, sync-list
// and remove. Needs BURROW_URL (a server started with --allow-workspaces and
// a --workspace-root holding BURROW_ROOT) and BURROW_ROOT (holding hello.txt).

import assert from "node:assert/strict";
import { createOpencodeClient } from "@opencode-ai/sdk/v2";

const baseUrl = process.env.BURROW_URL;
const root = process.env.BURROW_ROOT;
const image = process.env.BURROW_TEST_DOCKER_IMAGE;
assert.ok(baseUrl && root, "set BURROW_URL and BURROW_ROOT");
const ok = { throwOnError: true };

const client = createOpencodeClient({ baseUrl });
const adapters = (await client.experimental.workspace.adapter.list({}, ok)).data;
for (const kind of ["local", "docker", "ssh", "s3"]) {
  assert.ok(adapters.some((a) => a.type === kind), `${kind} is an adapter`);
}

const made = [(await client.experimental.workspace.create({ type: "local", extra: { dir: root } }, ok)).data];
if (image) {
  made.push((await client.experimental.workspace.create({ type: "docker", extra: { image, copy: root, network: "none" } }, ok)).data);
} else {
  // In CI a missing service fails, never skips: tests/run.sh starts Docker.
  assert.ok(process.env.CI !== "true", "CI=true and no BURROW_TEST_DOCKER_IMAGE: the Docker workspace cannot be checked");
  console.error("workspace.mjs: no BURROW_TEST_DOCKER_IMAGE, the Docker workspace is left out");
}
for (const ws of made) {
  assert.match(ws.id, /^wrk/);
  const inside = createOpencodeClient({ baseUrl, experimental_workspaceID: ws.id });
  assert.equal((await inside.file.read({ path: "hello.txt" }, ok)).data.content, "hello sdk world\n");
  assert.deepEqual((await inside.find.files({ query: "hello.txt" }, ok)).data, ["hello.txt"]);
  const session = (await inside.session.create({ title: `in ${ws.type}` }, ok)).data;
  assert.equal(session.workspaceID, ws.id);
  const shell = (await inside.session.shell({ sessionID: session.id, agent: "build", command: "cat hello.txt" }, ok)).data;
  assert.equal(shell.parts[0].state.output, "hello sdk world\n");
  await client.experimental.workspace.warp({ id: null, sessionID: session.id }, ok);
  assert.equal((await client.session.get({ sessionID: session.id }, ok)).data.workspaceID, undefined);
}
assert.deepEqual((await client.experimental.workspace.list({}, ok)).data.map((w) => w.id), made.map((w) => w.id));
const status = (await client.experimental.workspace.status({}, ok)).data;
assert.deepEqual(status.map((s) => [s.workspaceID, s.status]), made.map((w) => [w.id, "connected"]));
await client.experimental.workspace.syncList({}, ok);
for (const ws of made) {
  assert.equal((await client.experimental.workspace.remove({ id: ws.id }, ok)).data.id, ws.id);
}
assert.deepEqual((await client.experimental.workspace.list({}, ok)).data, []);
console.log(`sdk workspace: ${made.map((w) => w.type).join(", ")} workspaces created, used and removed`);
