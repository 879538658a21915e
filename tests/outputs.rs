//! `output: docker-archive:FILE` end to end: the binary builds on a busybox base that stays in a real registry,
//! writes the archive (base layer streamed from the registry into it), and a real Docker Engine loads it, runs it
//! and reports the labels and the image ID the step gave as `imageid`.

mod common;

use common::{Dockerd, Mode, Registry, Workflow, push_busybox_base};

const CONTENT: &str = "hello from a docker archive\n";

fn project(registry: &Registry) -> Workflow {
    Workflow::new().file("greeting.txt", CONTENT).file(
        "Dockerfile",
        format!(
            "FROM {}/base/busybox:1\nLABEL com.example.team=octo\nCOPY greeting.txt /srv/greeting.txt\n\
             CMD [\"cat\", \"/srv/greeting.txt\"]\n",
            registry.host()
        ),
    )
}

#[test]
fn docker_load_runs_the_archive_with_labels_and_the_same_image_id() {
    let registry = Registry::start(Mode::Anonymous);
    let base = push_busybox_base(&registry, "base/busybox:1");
    let wf = project(&registry)
        .input("registry", registry.host())
        .input("repository", "octo-org/app")
        .input("tags", "v1,latest")
        .input("push", "false")
        .input("output", "docker-archive:out/app.tar");
    let archive = wf.workspace().join("out/app.tar");
    let puts_before = registry.manifest_puts();
    let result = wf.run();
    result.assert_success();
    assert!(archive.is_file(), "no archive at {}:\n{}", archive.display(), result.dump());
    let base_layer = base.layer_digest.clone();
    assert_eq!(registry.blob_gets(&base_layer), 1, "the base layer is fetched once, into the archive");
    assert_eq!(registry.manifest_puts(), puts_before, "push: false pushes nothing");

    let docker = Dockerd::start();
    let loaded = docker.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
    let v1 = format!("{}/octo-org/app:v1", registry.host());
    let latest = format!("{}/octo-org/app:latest", registry.host());
    assert!(loaded.contains(&v1) && loaded.contains(&latest), "docker load named both tags:\n{loaded}");

    let out = docker.docker_ok(&["run", "--rm", "--network", "none", &v1]);
    assert_eq!(out, CONTENT, "CMD cats the copied file");
    let out = docker.docker_ok(&["run", "--rm", "--network", "none", &latest, "cat", "/srv/greeting.txt"]);
    assert_eq!(out, CONTENT);

    let id = docker.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &v1]);
    assert_eq!(id.trim(), result.output("imageid"), "docker's image ID is the imageid output");
    let labels = docker.docker_ok(&["image", "inspect", "--format", "{{json .Config.Labels}}", &v1]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["com.example.team"], "octo", "{labels}");
    assert_eq!(labels["org.opencontainers.image.source"], "https://github.com/Octo-Org/App", "{labels}");
}

#[test]
fn a_multi_platform_docker_archive_is_refused_before_any_work() {
    let registry = Registry::start(Mode::Anonymous);
    let wf = project(&registry)
        .input("registry", registry.host())
        .input("repository", "octo-org/app")
        .input("platforms", "linux/amd64,linux/arm64")
        .input("output", "docker-archive:app.tar");
    let result = wf.run();
    result.assert_failure();
    let errors: Vec<String> = result.commands().into_iter().filter(|(c, _)| c == "error").map(|(_, l)| l).collect();
    assert_eq!(errors.len(), 1, "{}", result.dump());
    assert!(errors[0].contains("`output`") && errors[0].contains("`platforms`"), "{}", errors[0]);
    assert!(registry.access_entries().iter().all(|e| e.is_harness()), "nothing was asked of the registry");
    assert!(!wf.workspace().join("app.tar").exists());
}
