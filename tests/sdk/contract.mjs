// The contract between Burrow and the real @opencode-ai/sdk: the calls an
// application makes, through the current (v2) client, its `client.v2` group
// (the `/api/*` routes) and the legacy default export. BURROW_SDK names the
// package to load (default `@opencode-ai/sdk`, pinned to 1.18.33; run.sh also
// runs `sdk-1.19.3`, an alias of the newest release). Needs BURROW_URL (a
// running server) and BURROW_ROOT (its workspace, holding hello.txt). Any
// failed check exits non-zero.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";

const sdk = process.env.BURROW_SDK || "@opencode-ai/sdk";
const { createOpencodeClient: createV2 } = await import(`${sdk}/v2`);
const { createOpencodeClient: createV1 } = await import(sdk);

/** A provider key the contract stores: no answer may show it. */
const SECRET = "sk-contract-0123456789";

const baseUrl = process.env.BURROW_URL;
const root = process.env.BURROW_ROOT;
assert.ok(baseUrl && root, "set BURROW_URL and BURROW_ROOT");

/** Collects a stream's events in the background until `done` accepts one. */
function collect(stream, done) {
  const seen = [];
  const finished = (async () => {
    for await (const event of stream) {
      seen.push(event);
      if (done(event)) return seen;
    }
    throw new Error("the event stream ended early");
  })();
  return { seen, finished: withTimeout(finished, "the expected event") };
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within 60 s`)), 60_000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function v2() {
  const client = createV2({ baseUrl, directory: root });
  const health = await client.global.health({ throwOnError: true });
  assert.equal(health.data.version, "1.18.33");

  const instance = await client.event.subscribe();
  const global = await client.global.event();

  const created = await client.session.create({ title: "sdk contract" }, { throwOnError: true });
  const session = created.data;
  assert.match(session.id, /^ses_/);
  assert.equal(session.title, "sdk contract");
  assert.equal(session.directory, root);

  const idle = (e) => e.type === "session.idle" && e.properties.sessionID === session.id;
  const instanceEvents = collect(instance.stream, idle);
  const globalEvents = collect(global.stream, (e) => idle(e.payload ?? {}));

  const shell = await client.session.shell({ sessionID: session.id, agent: "build", command: "echo hello sdk" }, { throwOnError: true });
  assert.equal(shell.data.info.role, "assistant");
  const tool = shell.data.parts[0];
  assert.equal(tool.type, "tool");
  assert.equal(tool.tool, "bash");
  assert.equal(tool.state.status, "completed");
  assert.equal(tool.state.output, "hello sdk\n");

  const events = await instanceEvents.finished;
  const types = events.map((e) => e.type);
  for (const t of ["session.status", "message.updated", "message.part.updated", "session.idle"]) {
    assert.ok(types.includes(t), `${t} in ${types}`);
  }
  const last = events.filter((e) => e.type === "message.part.updated").at(-1);
  assert.equal(last.properties.part.state.status, "completed");
  const globals = await globalEvents.finished;
  assert.ok(globals.every((e) => e.directory === undefined || e.directory === root));
  assert.ok(globals.some((e) => e.payload.type === "sync" && e.payload.syncEvent.type === "message.part.updated.1"));

  const messages = await client.session.messages({ sessionID: session.id }, { throwOnError: true });
  assert.equal(messages.data.length, 2);
  assert.equal(messages.data[0].info.role, "user");
  assert.equal(messages.data[0].parts[0].text, "The following tool was executed by the user");
  assert.deepEqual(messages.data[1], shell.data);

  const page = await client.session.messages({ sessionID: session.id, limit: 1 }, { throwOnError: true });
  assert.equal(page.data.length, 1);
  const cursor = page.response.headers.get("x-next-cursor");
  assert.ok(cursor, "a next-page cursor");
  const older = await client.session.messages({ sessionID: session.id, limit: 1, before: cursor }, { throwOnError: true });
  assert.deepEqual(older.data[0], messages.data[0]);

  const one = await client.session.message({ sessionID: session.id, messageID: shell.data.info.id }, { throwOnError: true });
  assert.deepEqual(one.data, shell.data);

  const forked = await client.session.fork({ sessionID: session.id, messageID: shell.data.info.id }, { throwOnError: true });
  assert.equal(forked.data.title, "sdk contract (fork #1)");
  assert.notEqual(forked.data.id, session.id);
  const copied = await client.session.messages({ sessionID: forked.data.id }, { throwOnError: true });
  assert.equal(copied.data.length, 1, "the messages before the shell's answer");
  assert.equal(copied.data[0].parts[0].text, messages.data[0].parts[0].text);
  assert.notEqual(copied.data[0].info.id, messages.data[0].info.id);
  assert.equal((await client.session.delete({ sessionID: forked.data.id }, { throwOnError: true })).data, true);

  const renamed = await client.session.update({ sessionID: session.id, title: "renamed" }, { throwOnError: true });
  assert.equal(renamed.data.title, "renamed");
  const listed = await client.session.list({ roots: true }, { throwOnError: true });
  assert.ok(listed.data.some((s) => s.id === session.id && s.title === "renamed"));
  assert.deepEqual((await client.session.status({}, { throwOnError: true })).data, {});
  assert.deepEqual((await client.session.children({ sessionID: session.id }, { throwOnError: true })).data, []);
  assert.deepEqual((await client.session.todo({ sessionID: session.id }, { throwOnError: true })).data, []);
  assert.deepEqual((await client.session.diff({ sessionID: session.id }, { throwOnError: true })).data, []);
  assert.equal((await client.session.abort({ sessionID: session.id }, { throwOnError: true })).data, true);
  // The question tool's queue: nothing asked, so empty, and an unknown request is a 404.
  assert.deepEqual((await client.question.list({}, { throwOnError: true })).data, []);
  assert.equal((await client.question.reject({ requestID: "que_missing" })).response.status, 404);
  // Burrow runs subagents inside the turn: nothing to send to the background.
  assert.equal((await client.experimental.session.background({ sessionID: session.id }, { throwOnError: true })).data, false);

  const text = await client.find.text({ pattern: "hello sdk" }, { throwOnError: true });
  assert.ok(text.data.some((m) => m.path.text === "hello.txt" && m.lines.text.includes("hello sdk world")), JSON.stringify(text.data));
  const files = await client.find.files({ query: "hello" }, { throwOnError: true });
  assert.ok(files.data.includes("hello.txt"), JSON.stringify(files.data));

  const missing = await client.session.get({ sessionID: "ses_doesnotexist" });
  assert.equal(missing.response.status, 404);
  assert.equal(missing.error.name, "NotFoundError");
  assert.equal(missing.error.data.message, "Session not found: ses_doesnotexist");

  assert.equal((await client.session.delete({ sessionID: session.id }, { throwOnError: true })).data, true);
  assert.equal((await client.session.get({ sessionID: session.id })).response.status, 404);

  // Worktrees, patches and project settings. The workspace is no git
  // repository: no worktrees, and a patch is refused as `non-git`.
  assert.deepEqual((await client.worktree.list({}, { throwOnError: true })).data, []);
  const worktree = await client.worktree.create({ worktreeCreateInput: { name: "sdk" } });
  assert.equal(worktree.response.status, 400);
  assert.equal(worktree.error.name, "WorktreeNotGitError");
  const applied = await client.vcs.apply({ patch: "diff --git a/x b/x\n" });
  assert.equal(applied.response.status, 400);
  assert.equal(applied.error.name, "VcsApplyError");
  assert.equal(applied.error.data.reason, "non-git");
  const project = (await client.project.current({}, { throwOnError: true })).data;
  const named = await client.project.update({ projectID: project.id, name: "sdk contract", commands: { start: "true" } }, { throwOnError: true });
  assert.equal(named.data.id, project.id);
  assert.equal(named.data.name, "sdk contract");
  assert.deepEqual(named.data.commands, { start: "true" });
  assert.equal((await client.project.current({}, { throwOnError: true })).data.name, "sdk contract");

  // A provider key: stored (true), never shown, removed (true).
  const set = await client.auth.set({ providerID: "contract", auth: { type: "api", key: SECRET } }, { throwOnError: true });
  assert.equal(set.data, true);
  const providers = await client.config.providers({}, { throwOnError: true });
  assert.ok(!JSON.stringify(providers.data).includes(SECRET));
  assert.equal((await client.auth.remove({ providerID: "contract" }, { throwOnError: true })).data, true);
}

async function v1() {
  const client = createV1({ baseUrl, directory: root });
  const session = (await client.session.create({ body: { title: "legacy client" }, throwOnError: true })).data;
  assert.match(session.id, /^ses_/);
  const events = await client.event.subscribe();
  const done = collect(events.stream, (e) => e.type === "session.idle" && e.properties.sessionID === session.id);
  const shell = await client.session.shell({ path: { id: session.id }, body: { agent: "build", command: "printf legacy" }, throwOnError: true });
  assert.equal(shell.data.parts[0].state.output, "legacy");
  await done.finished;
  const messages = await client.session.messages({ path: { id: session.id }, throwOnError: true });
  assert.equal(messages.data.length, 2);
  const text = await client.find.text({ query: { pattern: "world" }, throwOnError: true });
  assert.ok(text.data.some((m) => m.path.text === "hello.txt"));
  const files = await client.find.files({ query: { query: "hello" }, throwOnError: true });
  assert.ok(files.data.includes("hello.txt"));
  const set = await client.auth.set({ path: { id: "legacy" }, body: { type: "api", key: SECRET }, throwOnError: true });
  assert.equal(set.data, true);
  // The legacy client has no call for auth.remove (its `auth.remove` is MCP's).
  const removed = await fetch(`${baseUrl}/auth/legacy`, { method: "DELETE" });
  assert.equal(await removed.json(), true);
  const got = await client.session.get({ path: { id: session.id }, throwOnError: true });
  assert.equal(got.data.title, "legacy client");
}

/** The `/api/*` group through `client.v2`, as the v2 SDK's users call it. */
async function api() {
  const client = createV2({ baseUrl, directory: root }).v2;
  assert.deepEqual((await client.health.get({ throwOnError: true })).data, { healthy: true });
  const location = (await client.location.get({}, { throwOnError: true })).data;
  assert.equal(location.directory, root);

  const listing = (await client.fs.list({ path: "" }, { throwOnError: true })).data;
  assert.equal(listing.location.directory, root);
  assert.ok(listing.data.some((e) => e.path === "hello.txt" && e.type === "file"), JSON.stringify(listing.data));

  const created = (await client.session.create({ agent: "build" }, { throwOnError: true })).data.data;
  assert.match(created.id, /^ses_/);
  assert.equal(created.location.directory, root);
  assert.equal(created.agent, "build");
  const got = (await client.session.get({ sessionID: created.id }, { throwOnError: true })).data.data;
  assert.deepEqual(got, created);
  const listed = (await client.session.list({ limit: 50 }, { throwOnError: true })).data;
  assert.ok(listed.data.some((s) => s.id === created.id), JSON.stringify(listed));

  // `resume: false` stores the prompt without running the agent (no model is configured here).
  const admitted = (await client.session.prompt({ sessionID: created.id, prompt: { text: "hello api" }, resume: false }, { throwOnError: true })).data.data;
  assert.match(admitted.id, /^msg_/);
  assert.equal(admitted.sessionID, created.id);
  assert.deepEqual(admitted.prompt, { text: "hello api" });
  const waited = await client.session.wait({ sessionID: created.id }, { throwOnError: true });
  assert.equal(waited.response.status, 204);

  const messages = (await client.session.messages({ sessionID: created.id }, { throwOnError: true })).data;
  assert.equal(messages.data.length, 1);
  assert.deepEqual(messages.data[0], { id: admitted.id, time: { created: admitted.timeCreated }, type: "user", text: "hello api" });
  const one = (await client.session.message({ sessionID: created.id, messageID: admitted.id }, { throwOnError: true })).data.data;
  assert.deepEqual(one, messages.data[0]);
  const context = (await client.session.context({ sessionID: created.id }, { throwOnError: true })).data.data;
  assert.deepEqual(context, messages.data);
  const history = (await client.session.history({ sessionID: created.id }, { throwOnError: true })).data;
  assert.deepEqual(history.data.map((e) => e.type), ["session.next.prompted"]);
  assert.equal(history.hasMore, false);
  // The session's durable events: the same history, as a stream.
  const durable = await client.session.events({ sessionID: created.id });
  const first = await withTimeout(durable.stream.next(), "the session's first durable event");
  assert.deepEqual(first.value, history.data[0]);
  await durable.stream.return();
  assert.equal((await client.session.interrupt({ sessionID: created.id }, { throwOnError: true })).response.status, 204);

  const missing = await client.session.get({ sessionID: "ses_doesnotexist" });
  assert.equal(missing.response.status, 404);
  assert.equal(missing.error._tag, "SessionNotFoundError");

  for (const group of ["agent", "model", "provider", "command", "skill", "reference"]) {
    const answer = (await client[group].list({}, { throwOnError: true })).data;
    assert.equal(answer.location.directory, root, group);
    assert.ok(Array.isArray(answer.data), group);
  }
  const ptys = (await client.pty.list({}, { throwOnError: true })).data;
  assert.deepEqual(ptys.data, []);

  // Revert staging: the boundary alone (no files), then cleared.
  const staged = (await client.session.revert.stage({ sessionID: created.id, messageID: admitted.id, files: false }, { throwOnError: true })).data;
  assert.deepEqual(staged.data, { messageID: admitted.id });
  assert.equal((await client.session.revert.clear({ sessionID: created.id }, { throwOnError: true })).response.status, 204);
  assert.equal((await client.session.revert.commit({ sessionID: created.id }, { throwOnError: true })).response.status, 204);

  // Credentials: a key connected, shown by id and label only, relabelled, removed.
  const connected = await client.integration.connect.key({ integrationID: "contract", key: SECRET, label: "sdk" }, { throwOnError: true });
  assert.equal(connected.response.status, 204);
  const integration = (await client.integration.get({ integrationID: "contract" }, { throwOnError: true })).data;
  assert.ok(!JSON.stringify(integration).includes(SECRET));
  const credential = integration.data.connections.find((c) => c.type === "credential");
  assert.equal(credential.label, "sdk", JSON.stringify(integration));
  const relabelled = await client.credential.update({ credentialID: credential.id, label: "renamed" }, { throwOnError: true });
  assert.equal(relabelled.response.status, 204);
  assert.equal((await client.credential.remove({ credentialID: credential.id }, { throwOnError: true })).response.status, 204);
  assert.equal((await client.credential.remove({ credentialID: credential.id })).response.status, 404);

  // Saved permissions: none saved here; removing an unknown one is a 404.
  assert.deepEqual((await client.permission.saved.list({}, { throwOnError: true })).data, { data: [] });
  assert.equal((await client.permission.saved.remove({ id: "psv_missing" })).response.status, 404);
  assert.deepEqual((await client.question.request.list({}, { throwOnError: true })).data.data, []);

  // A client's own permission request, evaluated with the default agent's rules (build allows bash).
  const sessionID = created.id;
  const asked = await client.session.permission.create({ sessionID, action: "bash", resources: ["ls"] }, { throwOnError: true });
  assert.equal(asked.data.data.effect, "allow", JSON.stringify(asked.data));
  assert.match(asked.data.data.id, /^per/);
  assert.deepEqual((await client.session.question.list({ sessionID }, { throwOnError: true })).data.data, []);
}

/** A session's sync history (`sync.*`) and a move to another folder of its project. */
async function sync() {
  const client = createV2({ baseUrl, directory: root });
  const session = (await client.session.create({ title: "synced" }, { throwOnError: true })).data;
  const all = (await client.sync.history.list({ body: {} }, { throwOnError: true })).data;
  const events = all.filter((e) => e.aggregate_id === session.id);
  assert.deepEqual(events.map((e) => [e.seq, e.type]), [[0, "session.created.1"]], JSON.stringify(events));
  assert.deepEqual((await client.sync.history.list({ body: { [session.id]: 0 } }, { throwOnError: true })).data.filter((e) => e.aggregate_id === session.id), []);
  // Replaying what the server holds changes nothing.
  const replayed = await client.sync.replay(
    { body_directory: root, events: events.map((e) => ({ id: e.id, aggregateID: e.aggregate_id, seq: e.seq, type: e.type, data: e.data })) },
    { throwOnError: true },
  );
  assert.deepEqual(replayed.data, { sessionID: session.id });
  assert.equal((await client.sync.start({}, { throwOnError: true })).data, true);
  // Stealing needs a workspace to steal into.
  assert.equal((await client.sync.steal({ sessionID: session.id })).response.status, 400);

  mkdirSync(`${root}/moved`, { recursive: true });
  const moved = await client.experimental.controlPlane.moveSession({ sessionID: session.id, destination: { directory: `${root}/moved` } }, { throwOnError: true });
  assert.equal(moved.response.status, 204);
  const after = (await client.session.get({ sessionID: session.id }, { throwOnError: true })).data;
  assert.equal(after.directory, `${root}/moved`);
  const missing = await client.experimental.controlPlane.moveSession({ sessionID: "ses_missing", destination: { directory: root } });
  assert.equal(missing.response.status, 400);
  assert.equal(missing.error.name, "MoveSessionError");
}

try {
  await v2();
  await api();
  await sync();
  await v1();
  console.log(`sdk contract (${sdk}): ok`);
  process.exit(0);
} catch (err) {
  console.error("sdk contract: FAILED");
  console.error(err);
  process.exit(1);
}
