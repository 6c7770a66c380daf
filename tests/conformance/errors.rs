//! Bad input: every refusal is `{name, data: {message}}` with the status that
//! says what went wrong, never a 500.

use reqwest::Method;

use crate::assert_error;
use crate::support::{for_each_env, Served};

#[tokio::test]
async fn bad_regex_is_a_400() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        // OpenCode: 500 UnknownError.
        for pattern in ["foo(", "[unclosed", "a{2,1}"] {
            assert_error(&format!("pattern {pattern}"), t.srv.get_q("/find", &[("pattern", pattern)]).await, 400, "BadRequest");
        }
    })
    .await;
}

#[tokio::test]
async fn missing_and_malformed_parameters_are_400s() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let bad = [
            "/file",
            "/file/content",
            "/find",
            "/find?",
            "/find/file",
            "/find/symbol",
            "/api/fs/find",
            "/find/file?query=e&limit=0",
            "/find/file?query=e&limit=201",
            "/find/file?query=e&limit=abc",
            "/find/file?query=e&limit=-1",
            "/find/file?query=e&type=bogus",
            "/find/file?query=e&dirs=yes",
            "/find?pattern=e&limit=0",
            "/find?pattern=e&limit=1001",
            "/api/fs/find?query=e&limit=0",
            "/api/fs/find?query=e&limit=201",
            "/api/fs/find?query=e&limit=abc",
            "/api/fs/find?query=e&type=bogus",
        ];
        for path in bad {
            assert_error(path, t.srv.get(path).await, 400, "BadRequest");
        }
        // The edges of the ranges are fine.
        for path in ["/find/file?query=e&limit=1", "/find/file?query=e&limit=200", "/api/fs/find?query=e&limit=200", "/find?pattern=e&limit=1000"] {
            assert_eq!(t.srv.get(path).await.0, 200, "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        // OpenCode serves its web app (200, HTML) for any unknown path.
        assert_error("GET unknown", t.srv.get("/no/such/route").await, 404, "NotFoundError");
        assert_error("GET /api unknown", t.srv.get("/api/nonexistent").await, 404, "NotFoundError");
        let post = t.srv.send(t.srv.request(Method::POST, "/no/such/route")).await;
        assert_error("POST unknown", (post.status, post.json()), 404, "NotFoundError");
        let wrong_method = t.srv.send(t.srv.request(Method::DELETE, "/file?path=.")).await;
        assert_eq!(wrong_method.header("content-type"), Some("application/json"));
        assert_error("DELETE /file", (wrong_method.status, wrong_method.json()), 405, "BadRequest");
    })
    .await;
}
