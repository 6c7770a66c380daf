//! `GET /doc`: a valid OpenAPI 3.1 document that describes every endpoint this
//! suite calls, with OpenCode's operation ids (SDK generators name methods
//! after them) and its required parameters.

use serde_json::Value;

use crate::support::{for_each_env, Served};

/// Each endpoint the suite calls: path, OpenCode's operationId, required query parameters.
const ENDPOINTS: &[(&str, &str, &[&str])] = &[
    ("/global/health", "global.health", &[]),
    ("/path", "path.get", &[]),
    ("/project", "project.list", &[]),
    ("/project/current", "project.current", &[]),
    ("/vcs", "vcs.get", &[]),
    ("/file", "file.list", &["path"]),
    ("/file/content", "file.read", &["path"]),
    ("/file/status", "file.status", &[]),
    ("/find", "find.text", &["pattern"]),
    ("/find/file", "find.files", &["query"]),
    ("/find/symbol", "find.symbols", &["query"]),
    ("/api/fs/find", "v2.fs.find", &["query"]),
];

#[tokio::test]
async fn doc_is_openapi_3_1_listing_every_endpoint() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let (status, doc) = t.srv.get("/doc").await;
        assert_eq!(status, 200);
        let version = doc["openapi"].as_str().expect("openapi is a string");
        assert!(version.starts_with("3.1."), "OpenAPI 3.1, got {version}");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string(), "info has title and version");
        for (path, operation_id, required) in ENDPOINTS {
            let op = &doc["paths"][path]["get"];
            assert!(op.is_object(), "/doc describes GET {path}");
            assert_eq!(op["operationId"], *operation_id, "operationId of GET {path}");
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let named = |name: &str| params.iter().find(|p| p["name"] == name).cloned().unwrap_or(Value::Null);
            for name in *required {
                let p = named(name);
                assert_eq!((p["in"].as_str(), p["required"].as_bool()), (Some("query"), Some(true)), "GET {path} requires ?{name}: {p}");
            }
            assert!(op["responses"]["200"].is_object(), "GET {path} documents its 200 answer");
        }
        assert!(doc["paths"]["/burrow/capabilities"]["get"].is_object(), "/doc describes Burrow's extension too");
        // Every $ref points at a schema the document defines.
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &piece[..piece.find('"').unwrap()];
            assert!(doc["components"]["schemas"][name].is_object(), "schema {name} is defined");
        }
    })
    .await;
}
