//! A tool context over a temporary local workspace, for unit tests.

use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::agent::permission::AllowAll;
use crate::env::local::LocalEnv;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub ctx: ToolContext,
    pub registry: Registry,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_gate(Arc::new(AllowAll))
    }

    pub fn with_gate(gate: Arc<dyn Gate>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ws")).unwrap();
        let env = Arc::new(LocalEnv::new(dir.path().join("ws")).unwrap());
        let ctx = ToolContext {
            env,
            cwd: WorkspacePath::root(),
            session_id: "ses_test".into(),
            message_id: "msg_test".into(),
            call_id: "call_test".into(),
            abort: CancellationToken::new(),
            gate,
            todos: Arc::new(TodoStore::default()),
            truncator: Arc::new(Truncator::new(dir.path().join("tool-output"))),
            metadata: None,
            subagents: None,
            changes: Default::default(),
            questions: None,
        };
        Self { dir, ctx, registry: Registry::builtin() }
    }

    pub fn root(&self) -> String {
        self.ctx.root().to_string()
    }

    pub fn put(&self, rel: &str, text: &str) {
        let p = self.dir.path().join("ws").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn get(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("ws").join(rel)).unwrap()
    }

    pub async fn run(&self, tool: &str, input: Value) -> ToolResult {
        self.registry.run(tool, input, &self.ctx).await
    }
}
