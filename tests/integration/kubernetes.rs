//! The Kubernetes manifests in `runner/kubernetes/`: validated offline against the schemas of the
//! oldest and newest Kubernetes versions the README supports (PyPI `kubernetes-validate`, pinned
//! in `tests/requirements.txt`), checked field by field against the restricted Pod Security
//! profile and the exit-code table, and both Deployments (patterns A and B) and the ensureadmin
//! Job's Pod **run** with `podman kube play` against a throwaway cluster on loopback.

use crate::harness::{python, run, spawn, workspace_root, Auth, Cluster, Output, PASSWORD};

use djinit_cli::ExitCode;
use djinit_tests::ship;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The oldest Kubernetes the manifests support: native sidecars (an init container with
/// `restartPolicy: Always`) are on by default from 1.29.
const OLDEST: &str = "1.29";

/// Every `*.yaml` in `runner/kubernetes/`, sorted.
fn manifest_files() -> Vec<PathBuf> {
    let dir = workspace_root().join("runner/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the manifests in {}",
        dir.display()
    );
    files
}

fn manifest(name: &str) -> PathBuf {
    workspace_root().join("runner/kubernetes").join(name)
}

/// The documents of a YAML file as JSON values, parsed by PyYAML (what `kubernetes-validate`
/// parses with too) from the venv.
fn load(path: &Path) -> Vec<Value> {
    let out = run(
        Command::new(python()).args([
            "-c",
            "import json, sys, yaml\n\
             docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]\n\
             print(json.dumps(docs))",
            path.to_str().unwrap(),
        ]),
        Duration::from_secs(60),
    );
    out.assert_success();
    serde_json::from_str(&out.stdout).expect("PyYAML's JSON")
}

fn kubernetes_validate() -> PathBuf {
    let exe = workspace_root().join(".venv/bin/kubernetes-validate");
    assert!(
        exe.is_file(),
        "{} is missing: run `just venv` (tests/requirements.txt pins kubernetes-validate)",
        exe.display()
    );
    exe
}

/// The newest Kubernetes version whose schemas the installed `kubernetes-validate` ships
/// (`kubernetes-json-schema/v1.N.0-local-strict`), as `1.N`.
fn newest_shipped() -> String {
    let out = run(
        Command::new(python()).args([
            "-c",
            "import os, kubernetes_validate as k\n\
             print('\\n'.join(os.listdir(os.path.join(os.path.dirname(k.__file__), 'kubernetes-json-schema'))))",
        ]),
        Duration::from_secs(60),
    );
    out.assert_success();
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("v1.")?.strip_suffix(".0-local-strict"))
        .filter_map(|minor| minor.parse::<u32>().ok())
        .max()
        .map(|minor| format!("1.{minor}"))
        .expect("kubernetes-validate ships schemas")
}

fn validate(version: &str, files: &[PathBuf]) -> Output {
    run(
        Command::new(kubernetes_validate())
            .args(["--strict", "--quiet", "-k", &format!("{version}.0")])
            .args(files),
        Duration::from_secs(120),
    )
}

/// Every manifest is valid (strict: no unknown field) for the oldest supported Kubernetes and
/// the newest the validator knows, and the README names both versions. A manifest with a field
/// Kubernetes does not have is refused, so the check can fail.
#[test]
fn manifests_validate_against_oldest_and_newest_schemas() {
    let files = manifest_files();
    let newest = newest_shipped();
    for version in [OLDEST, newest.as_str()] {
        let out = validate(version, &files);
        assert!(
            out.code == Some(0) && out.stdout.trim().is_empty(),
            "the manifests do not validate against Kubernetes {version}\n{}",
            out.report()
        );
    }
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    for version in [OLDEST, newest.as_str()] {
        assert!(
            readme.contains(&format!("Kubernetes {version}")),
            "the README does not name Kubernetes {version}, which the manifests are validated against"
        );
    }

    // The negative control: a typo'd field in a container.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("deployment.yaml");
    let text = std::fs::read_to_string(manifest("deployment.yaml")).unwrap();
    let typo = text.replacen("readOnlyRootFilesystem:", "readOnlyRootFileSystem:", 1);
    assert_ne!(text, typo);
    std::fs::write(&bad, typo).unwrap();
    let out = validate(OLDEST, &[bad]);
    assert_eq!(out.code, Some(1), "{}", out.report());
    assert!(
        out.stdout.contains("readOnlyRootFileSystem"),
        "{}",
        out.report()
    );
}

/// No placeholder registry is left: the manifests name the images the README says to tag.
#[test]
fn manifests_and_readme_name_real_images() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    assert!(!readme.contains("registry.example"));
    assert!(readme.contains("runner/kubernetes/"));
    let mut images = BTreeSet::new();
    for file in manifest_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("registry.example"), "{}", file.display());
        for doc in load(&file) {
            for spec in pod_specs(&doc) {
                for c in containers(spec) {
                    images.insert(c["image"].as_str().unwrap().to_string());
                }
            }
        }
    }
    assert_eq!(
        images,
        BTreeSet::from([DJINIT_IMAGE.to_string(), APP_IMAGE.to_string()])
    );
    assert!(readme.contains(DJINIT_IMAGE) && readme.contains(APP_IMAGE));
    assert_eq!(format!("localhost/{DJINIT_IMAGE}"), ship::IMAGE);
}

/// The image names the manifests use (the README says what to tag and push): the djinit image
/// under the name `just image` gives it (`localhost/djinit:<version>`), without the registry.
const DJINIT_IMAGE: &str = concat!("djinit:", env!("CARGO_PKG_VERSION"));
const APP_IMAGE: &str = "myapp:1.0.0";

/// The Pod specs in a document: a Pod's `spec`, a workload's `spec.template.spec`.
fn pod_specs(doc: &Value) -> Vec<&Value> {
    match doc["kind"].as_str() {
        Some("Pod") => vec![&doc["spec"]],
        Some("Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicaSet") => {
            vec![&doc["spec"]["template"]["spec"]]
        }
        Some("CronJob") => vec![&doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]],
        _ => vec![],
    }
}

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| spec[k].as_array().into_iter().flatten())
}

/// Volume types the restricted profile allows.
const RESTRICTED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// What keeps a Pod spec from the restricted Pod Security Standard (as the API server's
/// admission checks it, plus what these manifests promise on top: user 65532, a read-only root
/// filesystem, resources), one line per problem.
fn restricted_violations(what: &str, spec: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let pod = &spec["securityContext"];
    for host in ["hostNetwork", "hostPID", "hostIPC", "hostUsers"] {
        if spec[host] == json!(true) {
            bad.push(format!("{what}: {host} is true"));
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let kind = v
            .as_object()
            .unwrap()
            .keys()
            .find(|k| *k != "name")
            .cloned()
            .unwrap_or_default();
        if !RESTRICTED_VOLUMES.contains(&kind.as_str()) {
            bad.push(format!("{what}: volume {} is a {kind} volume", v["name"]));
        }
    }
    let mut n = 0;
    for c in containers(spec) {
        n += 1;
        let name = format!("{what}: container {}", c["name"]);
        let sc = &c["securityContext"];
        // The container's setting wins over the Pod's.
        let eff = |k: &str| {
            if sc[k].is_null() {
                pod[k].clone()
            } else {
                sc[k].clone()
            }
        };
        if eff("runAsNonRoot") != json!(true) {
            bad.push(format!("{name}: runAsNonRoot is not true"));
        }
        if eff("runAsUser") != json!(65532) {
            bad.push(format!(
                "{name}: runAsUser is {} (expected 65532)",
                eff("runAsUser")
            ));
        }
        if eff("seccompProfile")["type"] != json!("RuntimeDefault") {
            bad.push(format!("{name}: seccompProfile is not RuntimeDefault"));
        }
        if sc["readOnlyRootFilesystem"] != json!(true) {
            bad.push(format!("{name}: readOnlyRootFilesystem is not true"));
        }
        if sc["allowPrivilegeEscalation"] != json!(false) {
            bad.push(format!("{name}: allowPrivilegeEscalation is not false"));
        }
        if sc["privileged"] == json!(true) {
            bad.push(format!("{name}: privileged"));
        }
        if sc["capabilities"]["drop"] != json!(["ALL"]) {
            bad.push(format!("{name}: capabilities.drop is not [ALL]"));
        }
        if !sc["capabilities"]["add"].is_null() {
            bad.push(format!("{name}: adds capabilities"));
        }
        for p in c["ports"].as_array().into_iter().flatten() {
            if !p["hostPort"].is_null() {
                bad.push(format!("{name}: hostPort"));
            }
        }
        let r = &c["resources"];
        for (k, v) in [
            ("requests", "cpu"),
            ("requests", "memory"),
            ("limits", "memory"),
        ] {
            if r[k][v].is_null() {
                bad.push(format!("{name}: resources.{k}.{v} not set"));
            }
        }
    }
    if n == 0 {
        bad.push(format!("{what}: no containers"));
    }
    bad
}

/// Every container of every Pod template is restricted (non-root 65532, RuntimeDefault seccomp,
/// read-only root, no privilege escalation, no capabilities, resources set); the namespace
/// enforces the profile. Removing one setting from one container is reported, so the walk can fail.
#[test]
fn every_pod_is_restricted() {
    let mut specs = 0;
    let mut bad = Vec::new();
    let mut enforced = false;
    for file in manifest_files() {
        for doc in load(&file) {
            let what = format!(
                "{} {}/{}",
                file.file_name().unwrap().to_string_lossy(),
                doc["kind"].as_str().unwrap(),
                doc["metadata"]["name"].as_str().unwrap()
            );
            if doc["kind"] == "Namespace" {
                enforced |=
                    doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted";
            }
            for spec in pod_specs(&doc) {
                specs += 1;
                bad.extend(restricted_violations(&what, spec));
            }
        }
    }
    assert_eq!(
        specs, 3,
        "expected two Deployments and one Job with Pod templates"
    );
    assert!(bad.is_empty(), "not restricted:\n{}", bad.join("\n"));
    assert!(
        enforced,
        "namespace.yaml does not enforce the restricted profile"
    );

    // Negative control.
    let mut doc = load(&manifest("deployment.yaml")).remove(0);
    doc["spec"]["template"]["spec"]["initContainers"][1]["securityContext"]
        .as_object_mut()
        .unwrap()
        .remove("allowPrivilegeEscalation");
    doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = json!(0);
    let found = restricted_violations("x", pod_specs(&doc)[0]);
    assert!(
        found
            .iter()
            .any(|l| l
                .contains("container \"lockedmigrate\": allowPrivilegeEscalation is not false")),
        "{found:?}"
    );
    assert_eq!(
        found
            .iter()
            .filter(|l| l.contains("runAsUser is 0"))
            .count(),
        containers(pod_specs(&doc)[0]).count(),
        "{found:?}"
    );
}

/// The ensureadmin Job's `podFailurePolicy` is the exit-code table of `components/cli`: every
/// "no-retry" code fails the Job at once, every "retry" code is counted or ignored, nothing
/// else is listed, and the Job is `restartPolicy: Never` (which the policy requires).
#[test]
fn job_pod_failure_policy_is_the_exit_code_table() {
    let docs = load(&manifest("ensureadmin-job.yaml"));
    let job = docs
        .iter()
        .find(|d| d["kind"] == "Job")
        .expect("a Job in ensureadmin-job.yaml");
    let spec = &job["spec"]["template"]["spec"];
    assert_eq!(spec["restartPolicy"], "Never");
    let container = spec["containers"][0]["name"].as_str().unwrap();
    assert_eq!(spec["containers"][0]["args"][0], "ensureadmin");

    let codes = |action: &str| -> Vec<i64> {
        let mut all = Vec::new();
        for rule in job["spec"]["podFailurePolicy"]["rules"].as_array().unwrap() {
            if rule["action"] != action || rule["onExitCodes"].is_null() {
                continue;
            }
            let on = &rule["onExitCodes"];
            assert_eq!(on["operator"], "In", "{rule}");
            assert_eq!(on["containerName"], container, "{rule}");
            let values: Vec<i64> = on["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            // Kubernetes requires them sorted and unique.
            assert!(values.windows(2).all(|w| w[0] < w[1]), "{rule}");
            all.extend(values);
        }
        all.sort();
        all
    };
    let table = |retry: bool| -> Vec<i64> {
        ExitCode::ALL
            .into_iter()
            .filter(|c| *c != ExitCode::Ok && c.retry_may_help() == retry)
            .map(|c| c as i64)
            .collect()
    };
    assert_eq!(
        codes("FailJob"),
        table(false),
        "FailJob = the no-retry codes"
    );
    let mut retry = codes("Count");
    retry.extend(codes("Ignore"));
    retry.sort();
    assert_eq!(retry, table(true), "Count + Ignore = the retry codes");
    assert!(
        job["spec"]["backoffLimit"].as_i64().is_some()
            && job["spec"]["activeDeadlineSeconds"].as_i64().is_some(),
        "retries and the Job's duration are bounded"
    );
}

/// How long podman may take for one step (build, play, down): bounded, generous on a busy machine.
const PODMAN_LIMIT: Duration = Duration::from_secs(300);

/// Everything one podman test run creates, removed on drop (also when the test fails).
struct PodmanRun {
    files: Vec<PathBuf>,
    pods: Vec<String>,
    volumes: Vec<String>,
    secret: Option<String>,
    image: Option<String>,
}

impl PodmanRun {
    /// Nothing created yet; `None` (and a loud line saying what was not run) without podman.
    fn or_skip(test: &str, not_run: &str) -> Option<PodmanRun> {
        if Command::new("podman").arg("--version").output().is_err() {
            eprintln!(
                "\n\n*** SKIPPED kubernetes::{test}: podman is not installed, so {not_run} \
                 (install podman, runc, buildah) ***\n\n"
            );
            return None;
        }
        Some(PodmanRun {
            files: vec![],
            pods: vec![],
            volumes: vec![],
            secret: None,
            image: None,
        })
    }
}

impl Drop for PodmanRun {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = run(ship::podman().args(args), PODMAN_LIMIT);
        };
        for f in &self.files {
            quiet(&["kube", "down", f.to_str().unwrap()]);
        }
        for p in &self.pods {
            quiet(&["pod", "rm", "-f", "--time", "2", p]);
        }
        for v in &self.volumes {
            quiet(&["volume", "rm", "-f", v]);
        }
        if let Some(s) = &self.secret {
            quiet(&["secret", "rm", s]);
        }
        if let Some(i) = &self.image {
            quiet(&["rmi", "-f", i]);
        }
    }
}

/// Standard base64 (Kubernetes Secret `data`, which podman's secretKeyRef reads).
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `runner/kubernetes/deployment.yaml` as one Pod of this run: the test's images and Secret
/// name put in, volume names made unique (podman turns an emptyDir into a named volume shared by
/// every Pod using the name), no `ports` (with the host's network there is nothing to publish,
/// and podman refuses them), and two changes for podman 4.3 itself: it has no native sidecars
/// (an init container with `restartPolicy: Always` would run as an init container that never
/// ends, so it is left out), and it applies the Pod's restart policy to init containers
/// (restarting finished ones), so the Pod gets `restartPolicy: Never`. The app container runs
/// `djinit checkmigrations` (exit 1 if anything is pending).
fn render(deployment: &Value, name: &str, app_image: &str, run: &mut PodmanRun) -> Value {
    let mut d = deployment.clone();
    d["metadata"]["name"] = json!(name);
    // Keep the init containers after they ran (podman's default removes them), so the test
    // can read their logs and times.
    d["metadata"]["annotations"] = json!({"io.podman.annotations.init.container.type": "always"});
    d["spec"]["replicas"] = json!(1);
    let spec = &mut d["spec"]["template"]["spec"];
    spec["restartPolicy"] = json!("Never");
    let renames: Vec<(String, String)> = spec["volumes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .map(|v| {
            let old = v["name"].as_str().unwrap().to_string();
            let new = format!("{name}-{old}");
            v["name"] = json!(new);
            run.volumes.push(new.clone());
            (old, new)
        })
        .collect();
    spec["initContainers"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["restartPolicy"] != "Always");
    let spec = spec.as_object_mut().unwrap();
    let mut all: Vec<&mut Value> = Vec::new();
    for (k, v) in spec.iter_mut() {
        if k == "initContainers" || k == "containers" {
            all.extend(v.as_array_mut().unwrap().iter_mut());
        }
    }
    for c in all {
        c["image"] = json!(match c["image"].as_str().unwrap() {
            APP_IMAGE => app_image,
            DJINIT_IMAGE => ship::image(),
            other => panic!("unexpected image {other}"),
        });
        for e in c["env"].as_array_mut().into_iter().flatten() {
            if !e["valueFrom"]["secretKeyRef"].is_null() {
                e["valueFrom"]["secretKeyRef"]["name"] = json!(run.secret.clone().unwrap());
            }
        }
        for m in c["volumeMounts"].as_array_mut().into_iter().flatten() {
            let (_, new) = renames.iter().find(|(old, _)| m["name"] == *old).unwrap();
            m["name"] = json!(new);
        }
        c.as_object_mut().unwrap().remove("ports");
        if c["name"] == "web" {
            c["command"] = json!(["djinit", "checkmigrations", "-v", "2"]);
        }
    }
    d
}

/// An application image built here FROM scratch, as the README's patterns build theirs: djinit
/// copied from the djinit image (pattern A; the test's app containers run `djinit
/// checkmigrations`), the exported bundle at /migrations with `DJINIT_MIGRATIONS`, and with
/// `with_cp` a static `cp` (busybox) for pattern B's copy step. Removed with `podrun`.
fn build_app_image(id: &str, bundle: &Path, with_cp: bool, podrun: &mut PodmanRun) -> String {
    let ctx = tempfile::tempdir().unwrap();
    let copy = run(
        Command::new("cp").args([
            "-R",
            bundle.to_str().unwrap(),
            ctx.path().join("migrations").to_str().unwrap(),
        ]),
        PODMAN_LIMIT,
    );
    copy.assert_success();
    let mut cp = String::new();
    if with_cp {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.is_file(),
            "/bin/busybox is missing: `.ci/setup --tests` installs busybox-static"
        );
        std::fs::copy(busybox, ctx.path().join("cp")).unwrap();
        cp = "COPY cp /usr/local/bin/cp\n".into();
    }
    std::fs::write(
        ctx.path().join("Containerfile"),
        format!(
            "FROM scratch\n\
             COPY --from={} /djinit /usr/local/bin/djinit\n\
             {cp}\
             COPY migrations /migrations\n\
             ENV PATH=/usr/local/bin DJINIT_MIGRATIONS=/migrations\n\
             USER 65532:65532\n",
            ship::image()
        ),
    )
    .unwrap();
    let app_image = format!("localhost/{id}-app:1");
    podrun.image = Some(app_image.clone());
    run(
        ship::podman().args([
            "build",
            "--quiet",
            "--pull=never",
            "-t",
            &app_image,
            ctx.path().to_str().unwrap(),
        ]),
        PODMAN_LIMIT,
    )
    .assert_success();
    app_image
}

/// The Secret the manifests read (`databaseURL`), as podman's secretKeyRef reads it: JSON of
/// base64 values. Removed with `podrun`.
fn db_secret(id: &str, url: &str, podrun: &mut PodmanRun) {
    let secret = format!("{id}-secret");
    crate::harness::run_with_input(
        ship::podman().args(["secret", "create", &secret, "-"]),
        json!({"databaseURL": base64(url.as_bytes())}).to_string(),
        PODMAN_LIMIT,
    )
    .assert_success();
    podrun.secret = Some(secret);
}

/// A throwaway cluster with database `app`, and the fixture project's bundle and manifest.
fn cluster_and_bundle() -> (Cluster, tempfile::TempDir, Value) {
    let pg = Cluster::start(Auth::Scram);
    pg.create_database("app");
    let bundle = crate::lockedmigrate::export("django_project");
    let exported: Value =
        serde_json::from_slice(&std::fs::read(bundle.path().join("manifest.json")).unwrap())
            .unwrap();
    (pg, bundle, exported)
}

/// The Deployment in `runner/kubernetes/<file>`.
fn deployment_in(file: &str) -> Value {
    load(&manifest(file))
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap()
}

/// `deployment` rendered as Pod `name` ([`render`]) into `dir/<name>.yaml` (JSON is YAML: podman
/// reads it as the manifest); the file and the Pod (`<name>-pod-0`) are removed with `podrun`.
fn write_pod(
    deployment: &Value,
    name: &str,
    app_image: &str,
    dir: &Path,
    podrun: &mut PodmanRun,
) -> PathBuf {
    let rendered = render(deployment, name, app_image, podrun);
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, serde_json::to_string_pretty(&rendered).unwrap()).unwrap();
    podrun.files.push(file.clone());
    podrun.pods.push(format!("{name}-pod-0"));
    file
}

/// Every container of `pod` in `order` exited 0, each started only after the one before it
/// finished.
fn ran_in_order(pod: &str, order: &[&str]) {
    let ctr = |c: &str| format!("{pod}-{c}");
    let states: Vec<_> = order
        .iter()
        .map(|c| inspect(&ctr(c)).unwrap_or_else(|| panic!("{pod}: no container {c}")))
        .collect();
    for (c, s) in order.iter().zip(&states) {
        assert_eq!(
            (s.0.as_str(), s.1),
            ("exited", 0),
            "{pod}-{c} did not exit 0:\n{}",
            logs(&ctr(c))
        );
    }
    for w in states.windows(2) {
        assert!(
            nanos(&w[0].3) <= nanos(&w[1].2),
            "{pod}: a container started ({}) before the previous one finished ({})",
            w[1].2,
            w[0].3
        );
    }
}

/// Wait until `container` has exited; its state. Panics after `limit` with every container of
/// run `id`.
fn until_exited(container: &str, limit: Duration, id: &str) -> (String, i64, String, String) {
    let start = Instant::now();
    loop {
        match inspect(container) {
            Some(s) if s.0 == "exited" => return s,
            _ if start.elapsed() > limit => panic!("{container} did not end\n{}", diagnose(id)),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// `podman inspect` of one container: (status, exit code, started at, finished at).
fn inspect(container: &str) -> Option<(String, i64, String, String)> {
    let out = run(
        ship::podman().args([
            "inspect",
            "--format",
            "{{.State.Status}}|{{.State.ExitCode}}|{{.State.StartedAt}}|{{.State.FinishedAt}}",
            container,
        ]),
        PODMAN_LIMIT,
    );
    if out.code != Some(0) {
        return None;
    }
    let f: Vec<&str> = out.stdout.trim().split('|').collect();
    Some((
        f[0].to_string(),
        f[1].parse().unwrap(),
        f[2].to_string(),
        f[3].to_string(),
    ))
}

/// podman's time format (`2026-12-02 07:06:39.369632708 +0000 UTC`) in nanoseconds, for order.
fn nanos(t: &str) -> (String, u64) {
    let (day_time, _) = t.split_once(" +").unwrap_or((t, ""));
    let (whole, frac) = day_time.split_once('.').unwrap_or((day_time, "0"));
    let frac: u64 = format!("{frac:0<9}")[..9].parse().unwrap();
    (whole.to_string(), frac)
}

/// The state and logs of every container of this run, for failure messages.
fn diagnose(id: &str) -> String {
    let ps = run(
        ship::podman().args([
            "ps",
            "-a",
            "--filter",
            &format!("name={id}"),
            "--format",
            "{{.Names}}",
        ]),
        PODMAN_LIMIT,
    );
    let mut text = String::from("podman containers of this run:\n");
    for name in ps.stdout.lines() {
        text.push_str(&format!(
            "--- {name}: {:?}\n{}\n",
            inspect(name),
            logs(name)
        ));
    }
    text
}

fn logs(container: &str) -> String {
    let out = run(ship::podman().args(["logs", container]), PODMAN_LIMIT);
    format!("{}{}", out.stdout, out.stderr)
}

/// The shipped Deployment under `podman kube play --network host` against a throwaway cluster on
/// loopback: two replicas, started at the same moment as two Pods, each running wait4db then
/// lockedmigrate from an app image built here FROM scratch (djinit copied from the djinit image as
/// the README's pattern A says, plus an exported bundle). A session holding `django_migrations`
/// makes the first lockedmigrate hold the advisory lock long enough for the other to be seen
/// waiting. Then: the migrations are applied once, by one Pod; the other waited (naming the
/// holder) and applied nothing; in each Pod the init containers ran in order and the app
/// container started after them and found nothing pending.
#[test]
fn deployment_runs_under_podman_kube_play() {
    let Some(mut podrun) = PodmanRun::or_skip(
        "deployment_runs_under_podman_kube_play",
        "the Deployment was NOT run",
    ) else {
        return;
    };
    let id = format!("djinit-kube-{}", std::process::id());
    let (pg, bundle, exported) = cluster_and_bundle();
    let migrations = exported["migrations"].as_array().unwrap().len();
    assert!(migrations > 10);

    // The app image of pattern A: djinit from the djinit image, the bundle, DJINIT_MIGRATIONS.
    let app_image = build_app_image(&id, bundle.path(), false, &mut podrun);
    db_secret(&id, &pg.url_for("postgres", PASSWORD, "app"), &mut podrun);

    // django_migrations exists (Django's own DDL, from the bundle) and a session holds it.
    pg.psql_in("app", exported["recorder"]["sql"].as_str().unwrap());
    let psql = djinit_tests::paths::pg_bindir().join("psql");
    let blocker = spawn(
        Command::new(if psql.is_file() { psql } else { "psql".into() })
            .env_clear()
            .env("PGPASSWORD", PASSWORD)
            .env("PGAPPNAME", "kube-test-blocker")
            .args(["-X", "-q", "-h", "127.0.0.1", "-U", "postgres"])
            .args(["-p", &pg.port().to_string(), "-d", "app", "-c"])
            .arg("BEGIN; LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600);")
            .stdout(Stdio::null()),
    );
    let failed: Arc<Mutex<Vec<Output>>> = Arc::default();
    let until = |what: &str, limit: Duration, mut ok: Box<dyn FnMut() -> bool + '_>| {
        let start = Instant::now();
        while !ok() {
            if let Some(out) = failed.lock().unwrap().first() {
                panic!(
                    "podman kube play failed\n{}\n{}",
                    out.report(),
                    diagnose(&id)
                );
            }
            assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}\n{}",
                diagnose(&id)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // Until a query in database `app` answers 1.
    let until_one = |what: &str, limit: Duration, sql: &'static str| {
        until(what, limit, Box::new(|| pg.psql_in("app", sql) == "1"))
    };
    until_one(
        "the blocker's lock on django_migrations",
        Duration::from_secs(30),
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         WHERE c.relname = 'django_migrations' AND l.mode = 'AccessExclusiveLock' AND l.granted",
    );

    // Two replicas as two Pods, played at the same moment.
    let deployment = deployment_in("deployment.yaml");
    let dir = tempfile::tempdir().unwrap();
    for r in ["a", "b"] {
        write_pod(
            &deployment,
            &format!("{id}-{r}"),
            &app_image,
            dir.path(),
            &mut podrun,
        );
    }
    // `podman kube play` returns once the Pod's containers are started; a play that fails
    // (while the test waits below) fails the test at once with its output.
    let plays: Vec<_> = podrun
        .files
        .iter()
        .map(|f| {
            let play = spawn(
                ship::podman()
                    .args(["kube", "play", "--network", "host"])
                    .arg(f),
            );
            let failed = failed.clone();
            std::thread::spawn(move || {
                let out = play.wait(PODMAN_LIMIT);
                if out.code != Some(0) {
                    failed.lock().unwrap().push(out.clone());
                }
                out
            })
        })
        .collect();
    let ctr = |pod: &str, c: &str| format!("{pod}-{c}");

    // Both lockedmigrate sessions are in the database: one holds the advisory lock and is
    // blocked on django_migrations, the other says it waits for the lock.
    until_one(
        "two lockedmigrate sessions, one blocked on django_migrations",
        Duration::from_secs(180),
        "SELECT (count(*) = 2 AND count(*) FILTER (WHERE wait_event_type = 'Lock') = 1)::int \
         FROM pg_stat_activity WHERE application_name = 'djinit lockedmigrate'",
    );
    until(
        "a lockedmigrate waiting for the advisory lock",
        Duration::from_secs(60),
        Box::new(|| {
            podrun
                .pods
                .iter()
                .any(|p| logs(&ctr(p, "lockedmigrate")).contains("waiting for advisory lock 1000"))
        }),
    );
    pg.psql_in(
        "app",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'kube-test-blocker'",
    );
    let _ = blocker.wait(Duration::from_secs(30));
    for play in plays {
        let out = play.join().unwrap();
        assert_eq!(
            out.code,
            Some(0),
            "podman kube play\n{}\n{}",
            out.report(),
            diagnose(&id)
        );
    }
    for pod in &podrun.pods {
        until(
            "the app container's checkmigrations ending",
            Duration::from_secs(120),
            Box::new(|| inspect(&ctr(pod, "web")).is_some_and(|s| s.0 == "exited")),
        );
    }

    // Applied once, all of them.
    assert_eq!(
        pg.psql_in("app", "SELECT count(*) FROM django_migrations"),
        migrations.to_string()
    );
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM (SELECT app, name FROM django_migrations GROUP BY 1, 2 HAVING count(*) > 1) d"
        ),
        "0"
    );
    let mut appliers = 0;
    let mut waiters = 0;
    for pod in &podrun.pods {
        ran_in_order(pod, &["wait4db", "lockedmigrate", "web"]);
        let log = logs(&ctr(pod, "lockedmigrate"));
        let applied = log.lines().filter(|l| l.contains("  Applying ")).count();
        if log.contains("waiting for advisory lock 1000") {
            waiters += 1;
            assert_eq!(applied, 0, "{pod}: the waiter applied migrations\n{log}");
            assert!(log.contains("No migrations to apply."), "{log}");
            assert!(
                log.contains("held by pid") && log.contains("\"djinit lockedmigrate\""),
                "{pod}: the waiter does not name the holder\n{log}"
            );
        } else {
            appliers += 1;
            assert_eq!(applied, migrations, "{pod}\n{log}");
        }
        let web = logs(&ctr(pod, "web"));
        assert!(!web.contains("pending"), "{pod}: {web}");
    }
    assert_eq!((appliers, waiters), (1, 1));
}

/// `runner/kubernetes/ensureadmin-job.yaml`'s Pod template as a Pod of this run (podman 4.3 has
/// no Job kind; what a Job adds, `podFailurePolicy` and `backoffLimit`, is the API server's and
/// is checked against the exit-code table above): the test's djinit image and Secret put in.
/// podman 4.3 reads the two uses of one Kubernetes Secret from two podman secrets of different
/// formats: `secretKeyRef` from JSON of base64 values (`env_secret`), a secret volume from a
/// Secret's YAML (`volume_secret`), writing `data` values to the files without base64-decoding
/// them (and ignoring `stringData`), so the test's holds the password as it is.
fn render_job_pod(job: &Value, name: &str, env_secret: &str, volume_secret: &str) -> Value {
    let mut spec = job["spec"]["template"]["spec"].clone();
    // Volume names made unique: podman keeps a Pod's volumes as named volumes after `kube down`,
    // and a later Pod with the same name would mount the old content.
    let mut renames = Vec::new();
    for v in spec["volumes"].as_array_mut().into_iter().flatten() {
        if !v["secret"].is_null() {
            v["secret"]["secretName"] = json!(volume_secret);
        }
        let new = format!("{name}-{}", v["name"].as_str().unwrap());
        renames.push((v["name"].clone(), new.clone()));
        v["name"] = json!(new);
    }
    for c in spec["containers"].as_array_mut().unwrap() {
        assert_eq!(c["image"], DJINIT_IMAGE, "the Job runs the djinit image");
        c["image"] = json!(ship::image());
        for e in c["env"].as_array_mut().into_iter().flatten() {
            if !e["valueFrom"]["secretKeyRef"].is_null() {
                e["valueFrom"]["secretKeyRef"]["name"] = json!(env_secret);
            }
        }
        for m in c["volumeMounts"].as_array_mut().into_iter().flatten() {
            let (_, new) = renames.iter().find(|(old, _)| m["name"] == *old).unwrap();
            m["name"] = json!(new);
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

/// The ensureadmin Job's Pod, run for real with `podman kube play --network host` (password as a
/// file from a Secret volume, the rest from secretKeyRef, user 65532, read-only root): twice
/// with a strong password (the user is created once, both exit 0), then with a weak one (exit
/// 65, which the Job's podFailurePolicy turns into FailJob).
#[test]
fn ensureadmin_job_runs_under_podman_kube_play() {
    let Some(mut podrun) = PodmanRun::or_skip(
        "ensureadmin_job_runs_under_podman_kube_play",
        "the Job's Pod was NOT run",
    ) else {
        return;
    };
    let id = format!("djinit-job-{}", std::process::id());
    let pg = Cluster::start(Auth::Scram);
    pg.create_database("app");
    pg.psql_in(
        "app",
        &std::fs::read_to_string(workspace_root().join("tests/fixtures/ensureadmin_auth_user.sql"))
            .unwrap(),
    );
    let job = load(&manifest("ensureadmin-job.yaml"))
        .into_iter()
        .find(|d| d["kind"] == "Job")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // One Pod run with `password`: its exit code and logs (the Pod and Secret removed after).
    let mut play = |round: &str, password: &str| -> (i64, String) {
        let keys = json!({
            "databaseURL": base64(pg.url_for("postgres", PASSWORD, "app").as_bytes()),
            "adminUsername": base64(b"admin"),
            "adminEmail": base64(b"admin@example.com"),
            "adminPassword": base64(password.as_bytes()),
        });
        let (env_secret, volume_secret) =
            (format!("{id}-{round}-env"), format!("{id}-{round}-vol"));
        for (secret, content) in [
            (&env_secret, keys.to_string()),
            (
                &volume_secret,
                json!({"data": {"adminPassword": password}}).to_string(),
            ),
        ] {
            crate::harness::run_with_input(
                ship::podman().args(["secret", "create", secret, "-"]),
                content,
                PODMAN_LIMIT,
            )
            .assert_success();
        }
        let name = format!("{id}-{round}");
        let file = dir.path().join(format!("{name}.yaml"));
        let pod = render_job_pod(&job, &name, &env_secret, &volume_secret);
        // podman keeps a secret volume as a named volume called after the secret.
        for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
            podrun.volumes.push(v["name"].as_str().unwrap().to_string());
        }
        podrun.volumes.push(volume_secret.clone());
        std::fs::write(&file, serde_json::to_string_pretty(&pod).unwrap()).unwrap();
        let out = run(
            ship::podman()
                .args(["kube", "play", "--network", "host"])
                .arg(&file),
            PODMAN_LIMIT,
        );
        assert_eq!(out.code, Some(0), "podman kube play\n{}", out.report());
        let container = format!("{name}-ensureadmin");
        let state = until_exited(&container, Duration::from_secs(120), &id);
        let text = logs(&container);
        let _ = run(
            ship::podman().args(["kube", "down"]).arg(&file),
            PODMAN_LIMIT,
        );
        let _ = run(
            ship::podman().args(["secret", "rm", &env_secret, &volume_secret]),
            PODMAN_LIMIT,
        );
        podrun.pods.push(name);
        (state.1, text)
    };
    let strong = "Kube#Job-Walrus/Ozone!73";
    let (code, text) = play("first", strong);
    assert_eq!(code, 0, "{text}");
    let (code, text) = play("again", strong);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*), bool_and(is_superuser) FROM auth_user WHERE username = 'admin'"
        ),
        "1|t"
    );
    // The password is the one from the Secret's file: Django accepts it.
    let hash = pg.psql_in(
        "app",
        "SELECT password FROM auth_user WHERE username = 'admin'",
    );
    let mut check = Command::new(python());
    check
        .env_clear()
        .env("PW", strong)
        .env("HASH", &hash)
        .arg("-c")
        .arg(
            "import os\nfrom django.conf import settings\nsettings.configure()\n\
             from django.contrib.auth.hashers import check_password\n\
             print(check_password(os.environ['PW'], os.environ['HASH']))",
        );
    let out = run(check, PODMAN_LIMIT);
    assert_eq!(out.stdout.trim(), "True", "{}", out.report());
    // A weak password: refused before anything is written, with the code the Job fails on at once.
    pg.psql_in("app", "DELETE FROM auth_user");
    let (code, text) = play("weak", "password");
    assert_eq!(code, 65, "{text}");
    assert_eq!(pg.psql_in("app", "SELECT count(*) FROM auth_user"), "0");
    let fail_job = job["spec"]["podFailurePolicy"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["onExitCodes"]["values"]
                .as_array()
                .is_some_and(|v| v.contains(&json!(65)))
        })
        .unwrap();
    assert_eq!(fail_job["action"], "FailJob");
}

/// `runner/kubernetes/deployment-bundle-volume.yaml` (pattern B) under `podman kube play
/// --network host` against a throwaway cluster: the app image's first init container copies the
/// bundle into the emptyDir (`cp`, a static busybox in the test's app image), the djinit image
/// waits for the database and applies the bundle from the read-only mount, then the app
/// container starts and finds nothing pending.
#[test]
fn bundle_volume_deployment_runs_under_podman_kube_play() {
    let Some(mut podrun) = PodmanRun::or_skip(
        "bundle_volume_deployment_runs_under_podman_kube_play",
        "the bundle-volume Deployment was NOT run",
    ) else {
        return;
    };
    let id = format!("djinit-kubeb-{}", std::process::id());
    let (pg, bundle, exported) = cluster_and_bundle();
    let migrations = exported["migrations"].as_array().unwrap().len();
    let app_image = build_app_image(&id, bundle.path(), true, &mut podrun);
    db_secret(&id, &pg.url_for("postgres", PASSWORD, "app"), &mut podrun);
    let deployment = deployment_in("deployment-bundle-volume.yaml");
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{id}-a");
    let file = write_pod(&deployment, &name, &app_image, dir.path(), &mut podrun);
    let pod = format!("{name}-pod-0");
    let play = run(
        ship::podman()
            .args(["kube", "play", "--network", "host"])
            .arg(&file),
        PODMAN_LIMIT,
    );
    assert_eq!(play.code, Some(0), "podman kube play\n{}", play.report());
    until_exited(&format!("{pod}-web"), Duration::from_secs(180), &id);
    ran_in_order(&pod, &["bundle", "wait4db", "lockedmigrate", "web"]);
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(DISTINCT (app, name)) FROM django_migrations"
        ),
        migrations.to_string()
    );
    let log = logs(&format!("{pod}-lockedmigrate"));
    assert_eq!(
        log.lines().filter(|l| l.contains("  Applying ")).count(),
        migrations,
        "{log}"
    );
}
