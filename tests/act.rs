//! End to end: the repository's real `action.yml` run by nektos/act, as a workflow step. act evaluates the
//! action's own inputs, defaults (`github_token: ${{ github.token }}`) and outputs, masks the secret it was
//! given, runs the action's container (built here from this test's octopush binary, see
//! `common::act::build_action_image`) in a real dockerd, and hands the outputs to a later step. The registry
//! is checked with curl, never with octopush's client.

mod common;

use std::path::Path;

use common::act::{ActResult, act_push, action_yml_with_image, build_action_image, git_commit_all};
use common::{Dockerd, Mode, Registry, push_busybox_base};

const USER: &str = "act-robot";
/// Distinctive enough that it cannot show up by accident in a log or a digest.
const PASSWORD: &str = "Act-Pa55word-9f3e1c7b";
const WRONG_PASSWORD: &str = "Act-Wr0ng-7d2a4e61";
const REPO: &str = "octo-org/app";
const ACTION_IMAGE: &str = "octopush-act/action:test";

/// A registry with a busybox base, a dockerd holding the action image, and a one-commit repository whose
/// workflow publishes through `uses: ./action`.
struct Setup {
    registry: Registry,
    dockerd: Dockerd,
    dir: tempfile::TempDir,
    sha: String,
}

impl Setup {
    fn new() -> Setup {
        let registry = Registry::start(Mode::htpasswd(USER, PASSWORD));
        push_busybox_base(&registry, "base/busybox:1");
        let dockerd = Dockerd::start();
        build_action_image(&dockerd, Path::new(env!("CARGO_BIN_EXE_octopush")), ACTION_IMAGE);
        let dir = tempfile::Builder::new().prefix("octopush-act-").tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        let write = |rel: &str, text: &str| {
            let path = repo.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        };
        write("Dockerfile", &format!("FROM {}\nCOPY hello.txt /srv/hello.txt\n", registry.image("base/busybox:1")));
        write("hello.txt", "hello from act\n");
        write("action/action.yml", &action_yml_with_image(&format!("docker://{ACTION_IMAGE}")));
        write(".github/workflows/publish.yml", &workflow(&registry, &repo, &dir.path().join("outputs.json")));
        let sha = git_commit_all(&repo, "Octo-Org/App");
        // The push event act hands to the workflow (`-e`): the runner's payload for this commit, whose
        // `head_commit.timestamp` makes the `created` label reproducible.
        let mut event = common::workflow::default_push_event();
        event["after"] = sha.as_str().into();
        event["head_commit"]["id"] = sha.as_str().into();
        std::fs::write(dir.path().join("event.json"), serde_json::to_vec_pretty(&event).expect("event JSON"))
            .expect("write event.json");
        std::fs::create_dir_all(dir.path().join("home")).expect("mkdir home");
        Setup { registry, dockerd, dir, sha }
    }

    /// `act push` in host mode with `password` as the `REGISTRY_PASSWORD` secret.
    fn act(&self, password: &str) -> ActResult {
        act_push(self.dir.path(), &self.dockerd, ".github/workflows/publish.yml", password)
    }

    fn outputs_file(&self) -> std::path::PathBuf {
        self.dir.path().join("outputs.json")
    }
}

/// The workflow: copy the repository in (act's host mode starts from an empty workspace), publish with the
/// action, then print the outputs and write them all to `outputs_file` (unmasked, for the test to read).
fn workflow(registry: &Registry, repo: &Path, outputs_file: &Path) -> String {
    format!(
        r#"name: publish
on: push
jobs:
  publish:
    runs-on: ubuntu-latest
    steps:
      - name: copy the repository into the workspace
        run: cp -a '{repo}/.' "$GITHUB_WORKSPACE/"
      - name: publish
        id: publish
        uses: ./action
        with:
          registry: {host}
          repository: {REPO}
          tags: latest,v1
          username: {USER}
          password: ${{{{ secrets.REGISTRY_PASSWORD }}}}
      - name: show the outputs
        env:
          DIGEST: ${{{{ steps.publish.outputs.digest }}}}
          TAGS: ${{{{ steps.publish.outputs.tags }}}}
          OUTPUTS: ${{{{ toJSON(steps.publish.outputs) }}}}
        run: |
          echo "octopush-digest=[$DIGEST]"
          printf '%s\n' "$TAGS" | sed 's/^/octopush-tag=/'
          printf '%s' "$OUTPUTS" > '{outputs}'
"#,
        repo = repo.display(),
        host = registry.host(),
        outputs = outputs_file.display(),
    )
}

fn assert_no_panic(result: &ActResult) {
    let all = result.all();
    assert!(!all.contains("panicked") && !all.contains("stack backtrace"), "{}", result.dump());
}

/// The step issued `::add-mask::` (which act prints as `⚙  ***`) and `secret` shows nowhere in act's output.
fn assert_masked(result: &ActResult, secret: &str) {
    let masks = result.stdout.lines().filter(|l| l.trim_end().ends_with("\u{2699}  ***")).count();
    assert!(masks >= 1, "no ::add-mask:: from the step:\n{}", result.dump());
    let all = result.all();
    if let Some(line) = all.lines().find(|l| l.contains(secret)) {
        panic!("the password leaked into act's output: {}", line.replace(secret, "<SECRET>"));
    }
}

#[test]
fn action_yml_publishes_under_act() {
    let setup = Setup::new();
    let result = setup.act(PASSWORD);
    assert!(result.status.success(), "act failed ({}):\n{}", result.status, result.dump());
    assert_no_panic(&result);

    // The registry has both tags, and the digest the later step printed is the registry's.
    let (_, registry_digest) = setup.registry.get_manifest(REPO, "latest");
    let (_, v1_digest) = setup.registry.get_manifest(REPO, "v1");
    assert_eq!(v1_digest, registry_digest);
    assert!(registry_digest.starts_with("sha256:"), "{registry_digest}");
    assert_eq!(result.marked("octopush-digest="), vec![format!("[{registry_digest}]")], "{}", result.dump());
    let host = setup.registry.host();
    let tags = result.marked("octopush-tag=");
    assert_eq!(tags, vec![format!("{host}/{REPO}:latest"), format!("{host}/{REPO}:v1")], "{}", result.dump());

    // Every output of action.yml reached the later step; none holds the password.
    let text = std::fs::read_to_string(setup.outputs_file())
        .unwrap_or_else(|e| panic!("the last step wrote no outputs file ({e}):\n{}", result.dump()));
    let outputs: serde_json::Value = serde_json::from_str(&text).expect("outputs JSON");
    assert_eq!(outputs["digest"], registry_digest.as_str(), "{text}");
    for name in ["digest", "imageid", "tags", "tag-names", "version", "labels", "json", "metadata"] {
        assert!(outputs[name].as_str().is_some_and(|v| !v.is_empty()), "output {name} missing or empty: {text}");
    }
    assert!(!text.contains(PASSWORD), "the password is in the step's outputs");

    // The config's labels come from the workflow context act gave: the git remote and the commit.
    let (manifest, _) = setup.registry.get_manifest_json(REPO, "latest");
    let config_digest = manifest["config"]["digest"].as_str().expect("config digest");
    assert_eq!(outputs["imageid"], config_digest, "{text}");
    let config: serde_json::Value =
        serde_json::from_slice(&setup.registry.get_blob(REPO, config_digest)).expect("config JSON");
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.source"], "https://github.com/Octo-Org/App", "{labels}");
    assert_eq!(labels["org.opencontainers.image.revision"], setup.sha.as_str(), "{labels}");
    assert_eq!(
        labels["org.opencontainers.image.created"], "2020-01-10T10:00:00.000Z",
        "the event's commit time: {labels}"
    );

    // octopush masked the password first thing (act shows an `::add-mask::` command as `⚙  ***`), and act,
    // which masks its secrets too, never printed it.
    assert_masked(&result, PASSWORD);
}

#[test]
fn wrong_password_fails_the_step_with_one_error_under_act() {
    let setup = Setup::new();
    let result = setup.act(WRONG_PASSWORD);
    assert!(!result.status.success(), "act succeeded with a wrong password:\n{}", result.dump());
    assert_no_panic(&result);
    let errors: Vec<String> = result.all().lines().filter(|l| l.contains("::error")).map(String::from).collect();
    assert_eq!(errors.len(), 1, "expected one ::error:: line:\n{}", result.dump());
    assert!(errors[0].contains("`username`") && errors[0].contains("`password`"), "{}", errors[0]);
    assert_masked(&result, WRONG_PASSWORD);
    assert!(setup.registry.tags(REPO).is_empty(), "nothing may be pushed with a wrong password");
    assert!(!setup.outputs_file().exists(), "the step after a failed publish must not run");
}
