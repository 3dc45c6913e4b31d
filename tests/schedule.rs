//! The schedule engine through the real binary, each test in its own temp project of `noop`
//! jobs: validation (exit 2), a failing night (exit 1, JSON summary, report, re-run), the lock
//! (exit 4), kill -9 and resume, SIGTERM, shards, and the Airflow export.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_panorama");
const DATE: &str = "2026-11-26";

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(config: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("panorama.toml"), config).unwrap();
        std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
        Project { dir }
    }

    fn job(&self, rel: &str, text: &str) -> &Project {
        let p = self.dir.path().join("jobs").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("-C").arg(self.dir.path()).args(args);
        c.env_remove("PANORAMA_WAREHOUSE")
            .env_remove("PANORAMA_THREADS");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// The last stdout line, parsed.
fn summary(o: &Output) -> serde_json::Value {
    let out = text(&o.stdout);
    let last = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no stdout\n{}", show(o)));
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last line is not JSON ({e})\n{}", show(o)))
}

#[test]
fn invalid_jobs_exit_2_with_every_problem_listed() {
    let p = Project::new("");
    p.job("a.toml", "kind = \"noop\"\nafter = [\"noop.b\"]\n")
        .job("b.toml", "kind = \"noop\"\nafter = [\"noop.a\"]\n")
        .job(
            "c.toml",
            "kind = \"noop\"\nafter = [\"noop.missing\"]\nwrites = [\"clean.t\"]\n",
        )
        .job("d.toml", "kind = \"noop\"\nname = \"c\"\n")
        .job("e.toml", "kind = \"noop\"\nwrites = [\"clean.t\"]\n")
        .job(
            "f.toml",
            "kind = \"noop\"\n[matrix]\nbranch = { csv = \"branches.csv\", column = \"code\" }\n",
        )
        .job("g.toml", "kind = \"spark\"\n");
    let o = p.run(&["run", "--date", DATE]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = text(&o.stderr);
    for needle in [
        "dependency cycle: noop.",
        "duplicate job name noop.c",
        "both write clean.t",
        "branches.csv",
        "unknown kind \"spark\"",
    ] {
        assert!(err.contains(needle), "{needle:?} missing\n{}", show(&o));
    }
    // With the broken files gone, unknown dependencies are listed too.
    std::fs::remove_file(p.path("jobs/f.toml")).unwrap();
    std::fs::remove_file(p.path("jobs/g.toml")).unwrap();
    let o = p.run(&["plan", "--date", DATE]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("\"noop.missing\", which matches no job"),
        "{}",
        show(&o)
    );
    assert!(!p.path("warehouse").exists(), "validation writes nothing");
}

/// Regression: `[run] threads = 0`, `--threads 0` and `PANORAMA_THREADS=abc` ran without a
/// word (one thread, or the cores) instead of being refused like other bad settings.
#[test]
fn bad_thread_settings_exit_2() {
    let p = Project::new("[run]\nthreads = 0\n");
    p.job("a.toml", "kind = \"noop\"\n");
    let o = p.run(&["run", "--date", DATE]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("`run.threads` = 0"),
        "{}",
        show(&o)
    );
    std::fs::write(p.path("panorama.toml"), "").unwrap();
    let o = p
        .cmd(&["run", "--date", DATE])
        .env("PANORAMA_THREADS", "abc")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("PANORAMA_THREADS = \"abc\""),
        "{}",
        show(&o)
    );
    let o = p
        .cmd(&["run", "--date", DATE])
        .env("PANORAMA_THREADS", "0")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    for args in [
        &["run", "--date", DATE, "--threads", "0"][..],
        &["ingest", "--date", DATE, "--all", "--threads", "0"][..],
    ] {
        let o = p.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
    }
    assert!(!p.path("warehouse").exists(), "nothing ran");
    let o = p
        .cmd(&["run", "--date", DATE, "--threads", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}

/// Regression: a reader that closes stdout early (`| head -1`) made commands exit 5 ("internal
/// error ... failed printing to stdout: Broken pipe") or 1; it ends quietly with 0.
#[test]
fn a_closed_stdout_ends_quietly() {
    let p = Project::new("");
    for args in [
        &["tables"][..],
        &["tables", "--format", "json"][..],
        &["models", "list"][..],
        &["runs"][..],
        &["query", "SELECT 1 AS x"][..],
    ] {
        let mut child = p
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command writes.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", show(&o));
        assert!(!text(&o.stderr).contains("internal error"), "{}", show(&o));
    }
}

#[test]
fn a_failing_night_isolates_failures_reports_and_resumes() {
    let p = Project::new("[run]\nthreads = 2\npools = { train = 1 }\n");
    p.job(
        "ingest.toml",
        "kind = \"noop\"\ntags = [\"nightly\"]\nwrites = [\"clean.tx[branch={branch}]\"]\n[matrix]\nbranch = [\"0101\", \"0102\"]\n",
    )
    .job(
        "feature.toml",
        "kind = \"noop\"\nfail_times = 1\nretries = 2\nretry_delay = \"5ms\"\nreads = [\"clean.tx[branch={branch}]\"]\nwrites = [\"feature.f[branch={branch}]\"]\n[matrix]\nbranch = [\"0101\", \"0102\"]\n",
    )
    .job("train.toml", "kind = \"noop\"\npool = \"train\"\nfail = true\nreads = [\"feature.f\"]\n")
    .job("score.toml", "kind = \"noop\"\nafter = [\"noop.train\"]\n")
    .job("side.toml", "kind = \"noop\"\n");

    let o = p.run(&["run", "--date", DATE, "--log-format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let s = summary(&o);
    assert_eq!(s["status"], "failed");
    assert_eq!(s["exit_code"], 1);
    let c = &s["counts"];
    assert_eq!(
        (
            c["succeeded"].as_u64(),
            c["failed"].as_u64(),
            c["skipped"].as_u64()
        ),
        (Some(5), Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(c["retries"], 2);
    assert_eq!(s["failures"][0]["job"], "noop.train");
    assert!(s["failures"][0]["error"]
        .as_str()
        .unwrap()
        .contains("failed on purpose"));
    // Logs on stderr are JSON lines; stdout holds only the summary.
    for line in text(&o.stderr).lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|_| panic!("not JSON: {line}"));
    }
    assert_eq!(text(&o.stdout).lines().count(), 1);
    let report = p.path(s["reports"][0].as_str().unwrap());
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg") && html.contains("noop.train") && html.contains("Slowest"));

    // A re-run does only what did not succeed; it still fails, as train still fails.
    let o = p.run(&["run", "--date", DATE]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let c = &summary(&o)["counts"];
    assert_eq!(
        (c["to_run"].as_u64(), c["already_done"].as_u64()),
        (Some(2), Some(5)),
        "{c}"
    );

    // Fixed: --retry-failed runs train and score; then everything is done.
    p.job(
        "train.toml",
        "kind = \"noop\"\npool = \"train\"\nreads = [\"feature.f\"]\n",
    );
    let o = p.run(&["run", "--date", DATE, "--retry-failed"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(summary(&o)["counts"]["succeeded"], 2);
    let o = p.run(&["plan", "--date", DATE, "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(plan["nights"][0]["to_run"], 0);

    let o = p.run(&["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 3, "{}", show(&o));
    let o = p.run(&["runs", "--job", "noop.train"]);
    assert!(
        text(&o.stdout).contains("failed on purpose"),
        "{}",
        show(&o)
    );
}

#[test]
fn a_second_run_on_a_locked_warehouse_exits_4_naming_the_holder() {
    let p = Project::new("");
    p.job("a.toml", "kind = \"noop\"\n");
    let _held = panorama::warehouse::lock::WarehouseLock::acquire(
        &p.path("warehouse"),
        "panorama run --date 2026-11-25",
    )
    .unwrap();
    let o = p.run(&["run", "--date", DATE]);
    assert_eq!(o.status.code(), Some(4), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("panorama run --date 2026-11-25"),
        "{}",
        show(&o)
    );
    // Plans and dry runs do not need the lock.
    let o = p.run(&["run", "--date", DATE, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(summary(&o)["dry_run"], true);
}

fn markers(p: &Project) -> Vec<(String, usize)> {
    let dir = p.path(&format!("warehouse/_noop/dt={DATE}"));
    let mut out: Vec<(String, usize)> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| {
                    let lines = std::fs::read_to_string(e.path()).unwrap().lines().count();
                    (e.file_name().to_string_lossy().to_string(), lines)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_in_the_middle_then_resume_commits_each_job_exactly_once() {
    let p = Project::new("[run]\nthreads = 2\n");
    p.job("c.toml", "kind = \"noop\"\ncommit = true\nsleep_ms = 40\n[matrix]\ni = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]\n")
        .job("last.toml", "kind = \"noop\"\ncommit = true\nafter = [\"noop.c\"]\n");
    let mut child = p
        .cmd(&["run", "--date", DATE, "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("some jobs to commit", || markers(&p).len() >= 6);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = markers(&p).len();
    assert!(before < 25, "the run finished before it was killed");

    let o = p.run(&["run", "--date", DATE]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = summary(&o);
    let m = markers(&p);
    assert_eq!(m.len(), 25, "none lost: {m:?}");
    assert!(
        m.iter().all(|(_, n)| *n == 1),
        "a job committed twice: {m:?}"
    );
    let c = &s["counts"];
    let done = c["already_done"].as_u64().unwrap() + c["recovered"].as_u64().unwrap();
    assert_eq!(done + c["succeeded"].as_u64().unwrap(), 25, "{s}");
    let o = p.run(&["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"].as_str().unwrap().starts_with("crashed")),
        "{runs}"
    );
}

#[test]
fn sigterm_stops_launching_and_the_summary_says_interrupted() {
    let p = Project::new("[run]\nthreads = 1\n");
    p.job(
        "s.toml",
        "kind = \"noop\"\nsleep_ms = 300\n[matrix]\ni = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n",
    );
    let child = p
        .cmd(&["run", "--date", DATE])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the ledger", || p.path("warehouse/_ledger.sqlite").exists());
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let s = summary(&o);
    assert_eq!(s["status"], "interrupted", "{s}");
    assert!(s["counts"]["not_started"].as_u64().unwrap() > 0, "{s}");
    let o = p.run(&["run", "--date", DATE, "--threads", "4"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let c = &summary(&o)["counts"];
    assert_eq!(
        c["succeeded"].as_u64().unwrap() + c["already_done"].as_u64().unwrap(),
        10
    );
}

#[test]
fn shards_cover_the_selection_once_and_keep_dependencies_together() {
    let p = Project::new("");
    p.job(
        "i.toml",
        "kind = \"noop\"\nwrites = [\"clean.t[b={b}]\"]\n[matrix]\nb = [1, 2, 3, 4, 5, 6, 7, 8]\n",
    )
    .job(
        "f.toml",
        "kind = \"noop\"\nreads = [\"clean.t[b={b}]\"]\n[matrix]\nb = [1, 2, 3, 4, 5, 6, 7, 8]\n",
    )
    .job("x.toml", "kind = \"noop\"\n[matrix]\nx = [1, 2, 3, 4, 5]\n");
    let o = p.run(&["jobs", "--format", "json"]);
    let jobs: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    let mut all: Vec<String> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap().to_string())
        .collect();
    all.sort();
    assert_eq!(all.len(), 21);
    let mut union = Vec::new();
    for i in 1..=3 {
        let o = p.run(&[
            "plan",
            "--date",
            DATE,
            "--shard",
            &format!("{i}/3"),
            "--format",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let plan: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
        let names: Vec<String> = plan["nights"][0]["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["job"].as_str().unwrap().to_string())
            .collect();
        for n in &names {
            if let Some(b) = n.strip_prefix("noop.f[") {
                assert!(
                    names.contains(&format!("noop.i[{b}")),
                    "{n} without its upstream in shard {i}"
                );
            }
        }
        union.extend(names);
    }
    union.sort();
    assert_eq!(union, all, "union of shards = whole DAG, no job twice");
    let o = p.run(&["plan", "--date", DATE, "--shard", "4/3"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

#[test]
fn airflow_export_writes_a_loadable_dag() {
    let p = Project::new("");
    p.job("i.toml", "kind = \"noop\"\nwrites = [\"clean.t\"]\n");
    let out = p.path("dags");
    let o = p.run(&[
        "export",
        "airflow",
        "--out",
        out.to_str().unwrap(),
        "--shards",
        "3",
        "--dag-id",
        "nightly",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let file = out.join("nightly.py");
    let py = std::fs::read_to_string(&file).unwrap();
    assert!(py.contains("--shard {i}/{SHARDS}") && py.contains("{{{{ ds }}}}"));
    let Ok(check) = Command::new("python3")
        .arg("-c")
        .arg("import ast,sys; ast.parse(open(sys.argv[1]).read())")
        .arg(&file)
        .output()
    else {
        eprintln!("python3 not found: syntax not checked");
        return;
    };
    assert!(
        check.status.success(),
        "not valid Python: {}",
        text(&check.stderr)
    );
    let has_airflow = Command::new("python3")
        .args(["-c", "import airflow"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_airflow {
        // DagBag parses without a database; Airflow 3 dropped `include_examples`.
        let script = "import sys\nfrom airflow.models import DagBag\ntry:\n    b = DagBag(dag_folder=sys.argv[1], include_examples=False)\nexcept TypeError:\n    b = DagBag(dag_folder=sys.argv[1])\nassert not b.import_errors, b.import_errors\nprint(len(b.dags['nightly'].tasks))";
        let home = p.path("airflow-home");
        let load = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&out)
            .env("AIRFLOW_HOME", &home)
            .output()
            .unwrap();
        assert!(load.status.success(), "{}", text(&load.stderr));
        let printed = text(&load.stdout);
        assert_eq!(
            printed.lines().last().unwrap_or("").trim(),
            "3",
            "1 stage x 3 shards: {printed}"
        );
    }
    assert!(Path::new(&file).exists());
}

#[test]
fn sharded_runs_overlap_each_other_but_not_a_full_run() {
    let p = Project::new("");
    p.job("a.toml", "kind = \"noop\"\n");
    p.job("b.toml", "kind = \"noop\"\n");
    let wh = p.path("warehouse");
    // Another shard (2/2) is running: shard 1/2 runs beside it, a full run is refused.
    let other = panorama::warehouse::lock::WarehouseLock::acquire_run(
        &wh,
        Some(wh.join("_shards/2-of-2").as_path()),
        "panorama run --date 2026-11-26 --shard 2/2",
    )
    .unwrap();
    let o = p.run(&["run", "--date", DATE, "--shard", "1/2"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = p.run(&["run", "--date", DATE]);
    assert_eq!(o.status.code(), Some(4), "{}", show(&o));
    assert!(text(&o.stderr).contains("--shard 2/2"), "{}", show(&o));
    drop(other);
    // A full run is running: no shard starts.
    let full =
        panorama::warehouse::lock::WarehouseLock::acquire(&wh, "panorama run --date 2026-11-25")
            .unwrap();
    let o = p.run(&["run", "--date", DATE, "--shard", "2/2"]);
    assert_eq!(o.status.code(), Some(4), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("panorama run --date 2026-11-25"),
        "{}",
        show(&o)
    );
    drop(full);
    let o = p.run(&["run", "--date", DATE, "--shard", "2/2"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}
