//! `GET /file/status`: uncommitted changes, with added and removed line counts.

use serde_json::json;

use crate::support::{for_each_env, Served};

#[tokio::test]
async fn file_status_reports_git_changes_with_line_counts() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        // OpenCode 1.18.33 answers []; Burrow runs git. Object storage runs nothing:
        // no git, so [] there (documented).
        let want = if t.git() {
            json!([
                {"path": "new.txt", "added": 2, "removed": 0, "status": "added"},
                {"path": "old.txt", "added": 0, "removed": 1, "status": "deleted"},
                {"path": "src/main.rs", "added": 1, "removed": 0, "status": "modified"},
            ])
        } else {
            json!([])
        };
        assert_eq!(t.srv.get("/file/status").await, (200, want));
    })
    .await;
}
