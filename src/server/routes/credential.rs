//! Provider credentials: v1 `PUT|DELETE /auth/{providerID}` and the v2
//! integrations (`/api/integration*`, `/api/credential/{id}`), over the one
//! store in the data folder ([`crate::config::auth`]). A stored `api` key is
//! what the provider sends from then on; no answer ever carries a key, only a
//! credential's id and label.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as JsonBody;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::config::load;
use super::v2::Listing;
use super::DirectoryParams;
use crate::config::auth::{Auth, AuthError, Listed};
use crate::config::{provider, Config};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::protocol::num::MAX_SAFE_INTEGER;
use crate::protocol::project::LocationInfo;
use crate::server::extract::{Ctx, Json, Path, Ws};
use crate::server::AppState;

fn store_error(e: AuthError) -> ApiError {
    ApiError::internal(format!("provider credentials: {e}"))
}

/// A provider id: any name but the empty one, as OpenCode takes it.
fn checked_provider(id: &str) -> ApiResult<&str> {
    if id.is_empty() {
        return Err(ApiError::bad_request("the provider id is empty"));
    }
    Ok(id)
}

/// Tells clients that an integration's connections changed, as OpenCode does.
fn connection_updated(st: &AppState, integration_id: &str) {
    st.runtime.bus.publish(None, None, "integration.connection.updated", json!({ "integrationID": integration_id }));
}

/// Stores a credential for a provider (OpenCode's `auth.set`); an `api` key
/// is what the provider sends from then on.
#[utoipa::path(put, path = "/auth/{providerID}", tag = "control", operation_id = "auth.set", summary = "Set auth credentials",
    params(("providerID" = String, Path)), request_body = AuthBody,
    responses((status = 200, description = "Successfully set authentication credentials", body = bool), (status = 400, body = ErrorBody)))]
pub async fn auth_set(State(st): State<Arc<AppState>>, Path(provider_id): Path<String>, Json(body): Json<Value>) -> ApiResult<JsonBody<bool>> {
    let provider_id = checked_provider(&provider_id)?;
    let auth = parse_auth(body)?;
    if let Auth::Api { key, .. } | Auth::Wellknown { key, .. } = &auth {
        if key.is_empty() {
            return Err(ApiError::bad_request("an empty key stores nothing: remove the credential with DELETE /auth/{providerID} instead"));
        }
    }
    st.runtime.auth.set(provider_id, auth, None).await.map_err(store_error)?;
    connection_updated(&st, provider_id);
    Ok(JsonBody(true))
}

/// What `PUT /auth/{providerID}` takes (OpenCode's `Auth`), for the
/// document; [`parse_auth`] reads the body with the same rules.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum AuthBody {
    ApiAuth(ApiAuth),
    OAuth(OAuth),
    WellKnownAuth(WellKnownAuth),
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub enum ApiType {
    #[serde(rename = "api")]
    Api,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub enum OAuthType {
    #[serde(rename = "oauth")]
    OAuth,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub enum WellKnownType {
    #[serde(rename = "wellknown")]
    WellKnown,
}

/// An API key, sent by the provider as its key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ApiAuth {
    r#type: ApiType,
    #[schema(min_length = 1)]
    key: String,
    metadata: Option<std::collections::BTreeMap<String, String>>,
}

/// OAuth tokens, stored only: Burrow runs no OAuth flow.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct OAuth {
    r#type: OAuthType,
    refresh: String,
    access: String,
    #[schema(minimum = 0, maximum = 9007199254740991_u64)]
    expires: u64,
    #[serde(rename = "accountId")]
    account_id: Option<String>,
    #[serde(rename = "enterpriseUrl")]
    enterprise_url: Option<String>,
}

/// A well-known server's key and token, stored only.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct WellKnownAuth {
    r#type: WellKnownType,
    #[schema(min_length = 1)]
    key: String,
    token: String,
}

/// `Auth` as OpenCode's schema has it: a known `type` and only its fields.
fn parse_auth(body: Value) -> ApiResult<Auth> {
    let fields: &[&str] = match body.get("type").and_then(Value::as_str) {
        Some("api") => &["type", "key", "metadata"],
        Some("oauth") => &["type", "refresh", "access", "expires", "accountId", "enterpriseUrl"],
        Some("wellknown") => &["type", "key", "token"],
        _ => return Err(ApiError::bad_request("expected a JSON object with \"type\": \"api\", \"oauth\" or \"wellknown\"")),
    };
    if let Some(extra) = body.as_object().and_then(|o| o.keys().find(|k| !fields.contains(&k.as_str()))) {
        return Err(ApiError::bad_request(format!("unknown field {extra:?}: a {} credential has {}", body["type"], fields.join(", "))));
    }
    let mut body = body;
    if let Some(expires) = body.get("expires").filter(|e| e.is_number()) {
        // JSON counts `1.0` as the integer 1 (serde's u64 does not); past
        // JavaScript's safe integers a time means nothing to OpenCode's clients.
        match expires.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER as f64).contains(f)) {
            Some(whole) => body["expires"] = json!(whole as u64),
            None => return Err(ApiError::bad_request(format!("expires must be a whole number from 0 to {MAX_SAFE_INTEGER}, not {expires}"))),
        }
    }
    serde_json::from_value(body).map_err(|e| ApiError::bad_request(format!("invalid credential: {e}")))
}

/// Removes a provider's stored credential (OpenCode's `auth.remove`); `true`
/// whether or not there was one, as in OpenCode.
#[utoipa::path(delete, path = "/auth/{providerID}", tag = "control", operation_id = "auth.remove", summary = "Remove auth credentials",
    params(("providerID" = String, Path)),
    responses((status = 200, description = "Successfully removed authentication credentials", body = bool), (status = 400, body = ErrorBody)))]
pub async fn auth_remove(State(st): State<Arc<AppState>>, Path(provider_id): Path<String>) -> ApiResult<JsonBody<bool>> {
    let provider_id = checked_provider(&provider_id)?;
    if st.runtime.auth.remove(provider_id).await.map_err(store_error)? {
        connection_updated(&st, provider_id);
    }
    Ok(JsonBody(true))
}

/// The integrations Burrow can connect: the known providers, the configured
/// ones and any with a stored credential, each with its methods (a key, the
/// environment) and its connections (the stored credential, a set variable).
async fn integrations_of(st: &AppState, config: &Config) -> ApiResult<Vec<Value>> {
    let stored = st.runtime.auth.list().await.map_err(store_error)?;
    let mut ids: Vec<(String, String, Vec<String>)> =
        provider::known().map(|(id, name, env)| (id.to_string(), name.to_string(), vec![env.to_string()])).collect();
    for p in provider::list(config) {
        if !ids.iter().any(|(id, ..)| *id == p.id) {
            ids.push((p.id, p.name, p.env));
        }
    }
    for c in &stored {
        if !ids.iter().any(|(id, ..)| *id == c.provider_id) {
            ids.push((c.provider_id.clone(), c.provider_id.clone(), Vec::new()));
        }
    }
    Ok(ids.into_iter().map(|(id, name, env)| integration(&id, &name, &env, &stored)).collect())
}

fn integration(id: &str, name: &str, env: &[String], stored: &[Listed]) -> Value {
    let mut connections: Vec<Value> =
        stored.iter().filter(|c| c.provider_id == id).map(|c| json!({ "type": "credential", "id": c.id, "label": c.label })).collect();
    connections.extend(env.iter().filter(|e| std::env::var(e).is_ok_and(|v| !v.is_empty())).map(|e| json!({ "type": "env", "name": e })));
    json!({ "id": id, "name": name, "methods": [{ "type": "key" }, { "type": "env", "names": env }], "connections": connections })
}

#[utoipa::path(get, path = "/api/integration", tag = "v2", operation_id = "v2.integration.list", params(DirectoryParams),
    responses((status = 200, body = Listing), (status = 400, body = ErrorBody)))]
pub async fn integrations(State(st): State<Arc<AppState>>, Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<JsonBody<Listing>> {
    let config = load(&ws, &inst).await?;
    Ok(JsonBody(Listing { location: inst.location(), data: integrations_of(&st, &config).await? }))
}

/// One integration, `{location, data}`.
#[derive(serde::Serialize, ToSchema)]
pub struct IntegrationGet {
    pub location: LocationInfo,
    #[schema(value_type = Object)]
    pub data: Value,
}

fn integration_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("integration not found: {id}"))
}

#[utoipa::path(get, path = "/api/integration/{integrationID}", tag = "v2", operation_id = "v2.integration.get", summary = "Get integration",
    params(("integrationID" = String, Path), DirectoryParams),
    responses((status = 200, body = IntegrationGet), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn integration_get(State(st): State<Arc<AppState>>, Path(id): Path<String>, Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<JsonBody<IntegrationGet>> {
    let config = load(&ws, &inst).await?;
    let data = integrations_of(&st, &config).await?.into_iter().find(|i| i["id"] == id.as_str()).ok_or_else(|| integration_not_found(&id))?;
    Ok(JsonBody(IntegrationGet { location: inst.location(), data }))
}

/// `POST /api/integration/{id}/connect/key`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectKey {
    #[schema(min_length = 1)]
    key: String,
    /// How clients show the credential; "API key" when left out.
    label: Option<String>,
}

/// Stores a key for an integration (a provider): the v2 form of `PUT /auth`.
#[utoipa::path(post, path = "/api/integration/{integrationID}/connect/key", tag = "v2", operation_id = "v2.integration.connect.key",
    summary = "Connect with key", params(("integrationID" = String, Path), DirectoryParams), request_body = ConnectKey,
    responses((status = 204, description = "Stored"), (status = 400, body = ErrorBody)))]
pub async fn connect_key(State(st): State<Arc<AppState>>, Path(id): Path<String>, _ctx: Ctx, Json(body): Json<ConnectKey>) -> ApiResult<StatusCode> {
    let id = checked_provider(&id)?;
    if body.key.is_empty() {
        return Err(ApiError::bad_request("the key is empty"));
    }
    let label = body.label.filter(|l| !l.is_empty());
    st.runtime.auth.set(id, Auth::Api { key: body.key, metadata: None }, label).await.map_err(store_error)?;
    connection_updated(&st, id);
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /api/credential/{id}`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialUpdate {
    #[schema(min_length = 1)]
    label: String,
}

fn credential_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("credential not found: {id}"))
}

#[utoipa::path(patch, path = "/api/credential/{credentialID}", tag = "v2", operation_id = "v2.credential.update", summary = "Update credential",
    description = "Update a stored credential label.", params(("credentialID" = String, Path), DirectoryParams), request_body = CredentialUpdate,
    responses((status = 204, description = "Updated"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn credential_update(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    _ctx: Ctx,
    Json(body): Json<CredentialUpdate>,
) -> ApiResult<StatusCode> {
    if body.label.is_empty() {
        return Err(ApiError::bad_request("the label is empty"));
    }
    let done = st.runtime.auth.relabel(&id, &body.label).await.map_err(store_error)?.ok_or_else(|| credential_not_found(&id))?;
    connection_updated(&st, &done.provider_id);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/credential/{credentialID}", tag = "v2", operation_id = "v2.credential.remove", summary = "Remove credential",
    description = "Remove a stored integration credential.", params(("credentialID" = String, Path), DirectoryParams),
    responses((status = 204, description = "Removed"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn credential_remove(State(st): State<Arc<AppState>>, Path(id): Path<String>, _ctx: Ctx) -> ApiResult<StatusCode> {
    let provider = st.runtime.auth.remove_id(&id).await.map_err(store_error)?.ok_or_else(|| credential_not_found(&id))?;
    connection_updated(&st, &provider);
    Ok(StatusCode::NO_CONTENT)
}
