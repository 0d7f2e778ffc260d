//! `secrets` with the docker runtime against the real engine: the values
//! reach the container's environment (where `docker inspect` shows them, as
//! README says), a request without them fails before a container starts, and
//! state, history and status hold names only.

use crate::secrets::{DB, TOKEN_1, assert_clean, assert_files_clean};
use crate::support::docker::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_gets_its_secrets_and_its_spec_records_names_only() {
    let Some(docker) = engine().await else { return };
    let name = "dkt-secrets";
    remove_containers(&docker, name).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = docker_service(name, dir.path(), APP_1, 1);
    spec.secrets.names = vec!["DATABASE_URL".into(), "API_TOKEN".into()];
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;

    // A request without the values fails before anything starts.
    let stream = d.client.deploy(&deploy_request(&spec, "1")).await.unwrap();
    let failed = ActionResult::collect(stream).await;
    assert!(
        failed.text().contains("secret DATABASE_URL was not sent"),
        "{}",
        failed.text()
    );
    assert!(containers(&docker, name).await.is_empty());

    let values = [("DATABASE_URL", DB), ("API_TOKEN", TOKEN_1)];
    let req = teal::wire::DeployRequest {
        secrets: teal::secrets::SecretValues::new(
            values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..deploy_request(&spec, "1")
    };
    let stream = d.client.deploy(&req).await.unwrap();
    ActionResult::collect(stream).await.assert_live();
    let status = d.status().await;
    let container = &status.services[0].slots.blue.instances[0].id;
    let inspect = docker
        .inspect_container(
            container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    let env = inspect.config.unwrap().env.unwrap();
    for (k, v) in values {
        assert!(env.contains(&format!("{k}={v}")), "{k} in {env:?}");
    }
    let history = d.client.history(name).await.unwrap();
    assert_clean("history", &serde_json::to_string(&history).unwrap());
    assert_clean("status", &serde_json::to_string(&status).unwrap());
    d.stop().await;
    assert_files_clean(
        &dir.path().join("state"),
        &dir.path()
            .join("state/secret-store")
            .join(format!("{name}.json")),
    );
    remove_containers(&docker, name).await;
}
