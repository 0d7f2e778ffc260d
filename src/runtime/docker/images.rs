//! Images: resolving a reference to the image ID a deploy records (pulling it when
//! the engine does not have it), and pruning what nothing can roll back to.
//!
//! Containers always run by image ID, never by tag, so a tag that moves (`:latest`)
//! never changes what a slot or a rollback runs.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListContainersOptionsBuilder, RemoveImageOptionsBuilder,
};
use futures_util::StreamExt;

use super::engine::{engine_error, is_not_found, short};
use crate::runtime::RuntimeError;

/// The image reference of `version`: `{version}` substituted.
pub fn reference(image: &str, version: &str) -> String {
    image.replace("{version}", version)
}

/// The image ID (`sha256:...`) `reference` names now, pulling it when missing.
pub(super) async fn resolve(docker: &Docker, reference: &str) -> Result<String, RuntimeError> {
    match docker.inspect_image(reference).await {
        Ok(image) => image
            .id
            .ok_or_else(|| RuntimeError::Engine(format!("image {reference} has no ID"))),
        Err(e) if is_not_found(&e) => {
            pull(docker, reference).await?;
            let image = docker
                .inspect_image(reference)
                .await
                .map_err(|e| engine_error(format!("inspecting image {reference}"), e))?;
            image
                .id
                .ok_or_else(|| RuntimeError::Engine(format!("image {reference} has no ID")))
        }
        Err(e) => Err(engine_error(format!("inspecting image {reference}"), e)),
    }
}

/// Whether the engine still has the image with this ID.
pub(super) async fn exists(docker: &Docker, id: &str) -> Result<bool, RuntimeError> {
    match docker.inspect_image(id).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(engine_error(format!("inspecting image {id}"), e)),
    }
}

/// Whether the image defines a HEALTHCHECK (that is not `NONE`).
pub(super) async fn has_healthcheck(docker: &Docker, id: &str) -> bool {
    let Ok(image) = docker.inspect_image(id).await else {
        return false;
    };
    image
        .config
        .and_then(|c| c.healthcheck)
        .and_then(|h| h.test)
        .is_some_and(|test| !test.is_empty() && test[0] != "NONE")
}

async fn pull(docker: &Docker, reference: &str) -> Result<(), RuntimeError> {
    let (from_image, tag) = split_tag(reference);
    let options = CreateImageOptionsBuilder::default()
        .from_image(from_image)
        .tag(tag)
        .build();
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(step) = progress.next().await {
        step.map_err(|e| {
            RuntimeError::InvalidSpec(format!(
                "image {reference} is not on this engine and pulling it failed: {}",
                short(&e)
            ))
        })?;
    }
    Ok(())
}

/// `repo:tag` → (`repo`, `tag`); a digest or a missing tag keeps the whole reference
/// (with `latest` as the engine's default tag).
pub fn split_tag(reference: &str) -> (&str, &str) {
    if reference.contains('@') {
        return (reference, "");
    }
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

/// Removes the images among `candidates` that no tag names and no container uses,
/// like `docker image prune` restricted to images teal deployed. Returns the IDs
/// removed; an image that cannot be removed is left alone (and logged).
pub(super) async fn prune(docker: &Docker, candidates: &[String]) -> Vec<String> {
    let mut removed = Vec::new();
    for id in candidates {
        let image = match docker.inspect_image(id).await {
            Ok(image) => image,
            Err(e) if is_not_found(&e) => continue,
            Err(e) => {
                tracing::warn!(image = %id, "prune: cannot inspect: {}", short(&e));
                continue;
            }
        };
        let tagged = image
            .repo_tags
            .unwrap_or_default()
            .iter()
            .any(|t| t != "<none>:<none>");
        if tagged {
            continue;
        }
        let filters = HashMap::from([("ancestor", vec![id.as_str()])]);
        let users = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await;
        if !matches!(users, Ok(ref list) if list.is_empty()) {
            continue;
        }
        let options = RemoveImageOptionsBuilder::default().build();
        match docker.remove_image(id, Some(options), None).await {
            Ok(_) => {
                tracing::info!(image = %id, "pruned an image nothing can roll back to");
                removed.push(id.clone());
            }
            Err(e) => tracing::warn!(image = %id, "prune: cannot remove: {}", short(&e)),
        }
    }
    removed
}

/// The first 12 hex digits of an image ID, as `docker images` shows it.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(split_tag("app:1.0"), ("app", "1.0"));
        assert_eq!(split_tag("app"), ("app", "latest"));
        assert_eq!(
            split_tag("reg:5000/team/app"),
            ("reg:5000/team/app", "latest")
        );
        assert_eq!(split_tag("reg:5000/app:2"), ("reg:5000/app", "2"));
        assert_eq!(reference("app:{version}", "1.2"), "app:1.2");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}
