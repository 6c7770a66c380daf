//! The operations of OpenCode 1.18.33's API that Burrow does not serve, each
//! answering a 501 `NotImplementedError` JSON error instead of a 404, so a
//! client learns the route is known and why it is not there.
//!
//! This list is the one place they are named: the router serves them from it,
//! the coverage test (`tests/conformance/coverage.rs`) checks that every
//! operation of the reference's OpenAPI is either in `/doc` or here, and that
//! the README's table names exactly these. Some are left out by design (they
//! need OpenCode's hosted services); the others are simply not built yet.
//! They are kept out of `/doc`, which describes only what Burrow does.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{on, MethodFilter};
use axum::Router;

use crate::error::ApiError;
use crate::server::AppState;

/// Why an operation is not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// Burrow will not serve it; the reason, for the error message.
    ByDesign(&'static str),
    /// Burrow should serve it and does not yet.
    NotBuiltYet,
}

/// One operation of the reference API that answers 501.
#[derive(Clone, Copy, Debug)]
pub struct NotServed {
    pub method: &'static str,
    /// The path as the reference's OpenAPI writes it.
    pub path: &'static str,
    pub operation_id: &'static str,
    pub why: Why,
}

impl NotServed {
    /// The message of the 501 answer.
    pub fn message(&self) -> String {
        match self.why {
            Why::ByDesign(reason) => format!("{} {} ({}) is not served by Burrow: {reason}", self.method, self.path, self.operation_id),
            Why::NotBuiltYet => format!("{} {} ({}) is not implemented in Burrow yet", self.method, self.path, self.operation_id),
        }
    }

    /// The path in the router's syntax: the reference's trailing `*` is a catch-all.
    fn route(&self) -> String {
        match self.path.strip_suffix('*') {
            Some(prefix) => format!("{prefix}{{*rest}}"),
            None => self.path.to_string(),
        }
    }

    fn filter(&self) -> MethodFilter {
        match self.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            "DELETE" => MethodFilter::DELETE,
            other => unreachable!("NOT_SERVED holds only GET, POST, PUT, PATCH and DELETE, not {other}"),
        }
    }
}

/// An OAuth attempt exists only between `POST /api/integration/{id}/connect/oauth`,
/// which starts it (an in-memory record with a pending authorization against the
/// provider's hosted account), and its status, completion or cancellation: in
/// OpenCode these three read only the records that route made. Burrow does not
/// run that route, so there is never an attempt to ask about.
const ATTEMPT_REASON: &str =
    "OAuth attempts are made only by POST /api/integration/{integrationID}/connect/oauth, a login against a hosted account that Burrow does not run; store an API key with connect/key instead";

/// Every operation of OpenCode 1.18.33's OpenAPI that Burrow answers with 501.
pub const NOT_SERVED: &[NotServed] = &[
    NotServed {
        method: "DELETE",
        path: "/api/integration/attempt/{attemptID}",
        operation_id: "v2.integration.attempt.cancel",
        why: Why::ByDesign(ATTEMPT_REASON),
    },
    NotServed {
        method: "GET",
        path: "/api/integration/attempt/{attemptID}",
        operation_id: "v2.integration.attempt.status",
        why: Why::ByDesign(ATTEMPT_REASON),
    },
    NotServed {
        method: "POST",
        path: "/api/integration/attempt/{attemptID}/complete",
        operation_id: "v2.integration.attempt.complete",
        why: Why::ByDesign(ATTEMPT_REASON),
    },
    NotServed {
        method: "POST",
        path: "/api/integration/{integrationID}/connect/oauth",
        operation_id: "v2.integration.connect.oauth",
        why: Why::ByDesign("OAuth logins against hosted services are not run by Burrow"),
    },
    NotServed {
        method: "GET",
        path: "/experimental/console/orgs",
        operation_id: "experimental.console.listOrgs",
        why: Why::ByDesign("OpenCode's hosted console account is not part of Burrow"),
    },
    NotServed {
        method: "POST",
        path: "/experimental/console/switch",
        operation_id: "experimental.console.switchOrg",
        why: Why::ByDesign("OpenCode's hosted console account is not part of Burrow"),
    },
    NotServed {
        method: "POST",
        path: "/global/upgrade",
        operation_id: "global.upgrade",
        why: Why::ByDesign("Burrow is not the opencode binary; upgrade Burrow with its own packaging"),
    },
    NotServed {
        method: "DELETE",
        path: "/mcp/{name}/auth",
        operation_id: "mcp.auth.remove",
        why: Why::ByDesign("OAuth logins against hosted MCP services are not run by Burrow"),
    },
    NotServed {
        method: "POST",
        path: "/mcp/{name}/auth",
        operation_id: "mcp.auth.start",
        why: Why::ByDesign("OAuth logins against hosted MCP services are not run by Burrow"),
    },
    NotServed {
        method: "POST",
        path: "/mcp/{name}/auth/authenticate",
        operation_id: "mcp.auth.authenticate",
        why: Why::ByDesign("OAuth logins against hosted MCP services are not run by Burrow"),
    },
    NotServed {
        method: "POST",
        path: "/mcp/{name}/auth/callback",
        operation_id: "mcp.auth.callback",
        why: Why::ByDesign("OAuth logins against hosted MCP services are not run by Burrow"),
    },
    NotServed {
        method: "POST",
        path: "/provider/{providerID}/oauth/authorize",
        operation_id: "provider.oauth.authorize",
        why: Why::ByDesign("OAuth logins against hosted provider accounts are not run by Burrow; configure an API key"),
    },
    NotServed {
        method: "POST",
        path: "/provider/{providerID}/oauth/callback",
        operation_id: "provider.oauth.callback",
        why: Why::ByDesign("OAuth logins against hosted provider accounts are not run by Burrow; configure an API key"),
    },
    NotServed {
        method: "DELETE",
        path: "/session/{sessionID}/share",
        operation_id: "session.unshare",
        why: Why::ByDesign("sharing publishes the session on OpenCode's hosted share service"),
    },
    NotServed {
        method: "POST",
        path: "/session/{sessionID}/share",
        operation_id: "session.share",
        why: Why::ByDesign("sharing publishes the session on OpenCode's hosted share service"),
    },
];

/// `router` plus a 501 route for each entry of [`NOT_SERVED`].
pub fn add(mut router: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    for op in NOT_SERVED {
        let message = op.message();
        router = router.route(
            &op.route(),
            on(op.filter(), move || {
                let message = message.clone();
                async move { ApiError::new(StatusCode::NOT_IMPLEMENTED, "NotImplementedError", message) }
            }),
        );
    }
    router
}
