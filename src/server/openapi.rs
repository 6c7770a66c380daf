//! The OpenAPI document served at `/doc`: utoipa's output from the route
//! annotations, completed by the rules that hold for whole groups of
//! operations, so that each rule is written once here instead of on every
//! route (where one forgotten copy made the document disagree with the server):
//!
//! - answers are JSON: utoipa documents a bare `bool` as `text/plain`, but
//!   every such route sends `true` as JSON;
//! - `?directory=` is resolved before the handler runs: 400 (not a directory,
//!   malformed), 403 (outside the workspace), 404 (missing);
//! - a path id must carry its kind's prefix (`check_id`): a `pattern`, and 400;
//! - a JSON body can be malformed (400) or larger than the limit (413).

use serde_json::{json, Map, Value};

use super::extract::BODY_LIMIT;

/// Parameters (in the path or the query) whose value must start with a
/// prefix, as the handlers check it (`check_id`).
pub const ID_PREFIXES: &[(&str, &str)] = &[("sessionID", "ses"), ("messageID", "msg"), ("ptyID", "pty"), ("partID", "prt")];

/// A string without control characters (Unicode category Cc), which no
/// workspace path may hold.
pub const NO_CONTROL_CHARACTERS: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*$";

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options", "trace"];

/// The complete document: utoipa's, with the rules above applied.
pub fn document(doc: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_else(|_| json!({}));
    catch_all_as_star(&mut doc);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(*method).and_then(Value::as_object_mut) {
                    complete(op);
                }
            }
        }
    }
    doc
}

/// The router's catch-all `/{*rest}` is written `/*` in OpenCode's document
/// (`/api/fs/read/*`); the path then has no parameter for it.
fn catch_all_as_star(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    let wild: Vec<String> = paths.keys().filter(|k| k.rsplit('/').next().is_some_and(|s| s.starts_with("{*") && s.ends_with('}'))).cloned().collect();
    for key in wild {
        let Some(mut item) = paths.remove(&key) else { continue };
        let (prefix, last) = key.rsplit_once('/').unwrap_or(("", ""));
        let name = &last[2..last.len() - 1];
        for method in METHODS {
            if let Some(list) = item.get_mut(*method).and_then(|op| op.get_mut("parameters")).and_then(Value::as_array_mut) {
                list.retain(|p| !(p["in"] == "path" && p["name"] == name));
            }
        }
        paths.insert(format!("{prefix}/*"), item);
    }
}

fn complete(op: &mut Map<String, Value>) {
    let params: Vec<Value> = op.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
    let has = |name: &str, place: &str| params.iter().any(|p| p["name"] == name && p["in"] == place);
    let mut statuses: Vec<(&str, &str)> = Vec::new();
    if has("directory", "query") {
        statuses.extend([
            ("400", "The directory is not a directory, or the request is malformed"),
            ("403", "The directory is outside the workspace"),
            ("404", "The directory does not exist"),
        ]);
    }
    if let Some(list) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        // `WorkspacePath` refuses control characters (400), so the document says so.
        for p in list.iter_mut().filter(|p| p["in"] == "query" && p["name"] == "directory") {
            if let Some(schema) = p.get_mut("schema").and_then(Value::as_object_mut) {
                schema.entry("pattern").or_insert_with(|| json!(NO_CONTROL_CHARACTERS));
            }
        }
        for p in list.iter_mut().filter(|p| p["in"] == "path" || p["in"] == "query") {
            let Some((_, prefix)) = ID_PREFIXES.iter().find(|(name, _)| p["name"] == *name) else { continue };
            if let Some(schema) = p.get_mut("schema").and_then(Value::as_object_mut) {
                schema.entry("pattern").or_insert_with(|| json!(format!("^{prefix}")));
                statuses.push(("400", "An id without its prefix"));
            }
        }
    }
    if op.contains_key("requestBody") {
        statuses.push(("400", "The body is not valid JSON or not of the documented shape"));
        statuses.push(("413", "The body is larger than the limit"));
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { return };
    for (status, description) in statuses {
        let description = if status == "413" { format!("{description} ({BODY_LIMIT} bytes)") } else { description.to_string() };
        let response = responses.entry(status).or_insert_with(|| json!({ "description": description, "content": error_content() }));
        also_error_body(response);
    }
    for response in responses.values_mut() {
        let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else { continue };
        if let Some(plain) = content.remove("text/plain") {
            content.entry("application/json").or_insert(plain);
        }
    }
}

/// A documented answer with its own body (`PtyNotFound`) can also be the
/// common error body when the status comes from elsewhere (the directory).
fn also_error_body(response: &mut Value) {
    let error = json!({ "$ref": ERROR_BODY });
    let Some(schema) = response.pointer_mut("/content/application~1json/schema") else {
        // Documented without a body (`connect-token`'s 403): the body is the error body.
        if let Some(r) = response.as_object_mut() {
            r.insert("content".into(), error_content());
        }
        return;
    };
    let mut any_of = schema.get("anyOf").and_then(Value::as_array).cloned().unwrap_or_else(|| vec![schema.clone()]);
    if !any_of.contains(&error) {
        any_of.push(error);
        *schema = json!({ "anyOf": any_of });
    }
}

const ERROR_BODY: &str = "#/components/schemas/ErrorBody";

fn error_content() -> Value {
    json!({ "application/json": { "schema": { "$ref": ERROR_BODY } } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        document(&crate::server::api().1)
    }

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                if item[*method].is_object() {
                    out.push((method.to_string(), path.clone(), item[*method].clone()));
                }
            }
        }
        out
    }

    #[test]
    fn no_answer_is_documented_as_plain_text() {
        let doc = doc();
        for (method, path, op) in operations(&doc) {
            for (status, response) in op["responses"].as_object().unwrap() {
                for media in response["content"].as_object().map(|c| c.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
                    assert_ne!(media, "text/plain", "{method} {path} {status}");
                }
            }
        }
        let open_help = &doc["paths"]["/tui/open-help"]["post"]["responses"]["200"]["content"];
        assert_eq!(open_help["application/json"]["schema"]["type"], "boolean", "{open_help}");
    }

    #[test]
    fn the_directory_statuses_are_documented_wherever_directory_is_a_parameter() {
        let doc = doc();
        let mut seen = 0;
        for (method, path, op) in operations(&doc) {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if !params.iter().any(|p| p["name"] == "directory") {
                continue;
            }
            seen += 1;
            for status in ["400", "403", "404"] {
                assert!(op["responses"][status].is_object(), "{method} {path} documents {status}");
            }
        }
        assert!(seen > 30, "{seen} operations take ?directory=");
    }

    #[test]
    fn ids_carry_their_prefix_and_bodies_their_413() {
        let doc = doc();
        let get = &doc["paths"]["/session/{sessionID}/message/{messageID}"]["get"];
        let pattern = |name: &str| get["parameters"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["schema"]["pattern"].clone();
        assert_eq!((pattern("sessionID"), pattern("messageID")), (json!("^ses"), json!("^msg")));
        let put = &doc["paths"]["/pty/{ptyID}"]["put"];
        assert_eq!(put["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "ptyID").unwrap()["schema"]["pattern"], "^pty");
        for (method, path, op) in operations(&doc) {
            if op["requestBody"].is_object() {
                assert_eq!(op["responses"]["413"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody", "{method} {path}");
            }
        }
    }

    /// Two structs of one name became one schema, and `POST /pty` was
    /// documented with the session's body.
    #[test]
    fn bodies_of_the_same_rust_name_keep_their_own_schemas() {
        let doc = doc();
        let body = |path: &str, method: &str| {
            let r = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"].clone();
            // A `$ref`, or one inside `oneOf` (an optional body is `null` or the schema).
            let text = r.to_string();
            let name = text.split("#/components/schemas/").nth(1).and_then(|t| t.split('"').next()).map(str::to_string);
            let name = name.unwrap_or_else(|| panic!("{method} {path} names its body schema: {r}"));
            doc["components"]["schemas"][&name]["properties"].as_object().unwrap().keys().cloned().collect::<Vec<_>>()
        };
        assert!(body("/pty", "post").contains(&"command".to_string()));
        assert!(body("/pty/{ptyID}", "put").contains(&"size".to_string()));
        assert!(body("/session", "post").contains(&"parentID".to_string()));
        assert!(body("/session/{sessionID}", "patch").contains(&"title".to_string()));
        assert!(!body("/session/{sessionID}", "patch").contains(&"size".to_string()));
    }
}
