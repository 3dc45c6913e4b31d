//! Unit tests of the engine on small temp projects with `noop` jobs (and a probe kind that
//! measures concurrency).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::executor::{execute, Event, ExecConfig, Status};
use super::ledger::{Ledger, RunRow};
use super::night::{run_nights, NightOptions};
use super::plan::{changed_inputs, plan_night, shard_of, Action, PlanOptions, Shard};
use super::progress::Progress;
use super::*;
use crate::config::Project;

struct TempProject {
    dir: tempfile::TempDir,
}

impl TempProject {
    fn new(config: &str) -> TempProject {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("panorama.toml"), config).unwrap();
        std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
        TempProject { dir }
    }
    fn file(&self, rel: &str, text: &str) -> &TempProject {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }
    fn project(&self) -> Project {
        Project::open(self.dir.path()).unwrap()
    }
    fn load(&self) -> Result<Dag, Vec<String>> {
        let p = self.project();
        let jobs = spec::load_jobs(&p, &registry())?;
        Dag::build(jobs)
    }
}

/// A kind that counts how many of its jobs run at once (per test, by `group`).
struct ProbeKind;
struct Probe {
    sleep: Duration,
    group: usize,
}
static PROBE_NOW: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
static PROBE_MAX: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

impl JobKind for ProbeKind {
    fn kind(&self) -> &str {
        "probe"
    }
    fn prepare(
        &self,
        file: &JobFile<'_>,
        _: &Project,
    ) -> Result<Arc<dyn PreparedJob>, Vec<String>> {
        let ms = file
            .table
            .get("sleep_ms")
            .and_then(|v| v.as_integer())
            .unwrap_or(20) as u64;
        let group = file
            .table
            .get("group")
            .and_then(|v| v.as_integer())
            .unwrap_or(0) as usize;
        Ok(Arc::new(Probe {
            sleep: Duration::from_millis(ms),
            group,
        }))
    }
}

impl PreparedJob for Probe {
    fn io(&self, _: &Vars) -> Io {
        Io::default()
    }
    fn run(&self, _: &JobRef<'_>, _: &JobCtx<'_>) -> Result<JobOutcome, JobError> {
        let now = PROBE_NOW[self.group].fetch_add(1, Ordering::SeqCst) + 1;
        PROBE_MAX[self.group].fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.sleep);
        PROBE_NOW[self.group].fetch_sub(1, Ordering::SeqCst);
        Ok(JobOutcome::default())
    }
}

fn registry() -> Registry {
    let mut r = crate::jobkinds::registry();
    r.register(ProbeKind);
    r
}

fn names(dag: &Dag, mark: &[bool]) -> Vec<String> {
    let mut v: Vec<String> = (0..dag.len())
        .filter(|&i| mark[i])
        .map(|i| dag.jobs[i].name.clone())
        .collect();
    v.sort();
    v
}

fn date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
}

struct Ran {
    final_status: HashMap<String, Status>,
    attempts: HashMap<String, u32>,
}

fn exec(project: &Project, dag: &Dag, threads: usize, stop: &AtomicU8) -> Ran {
    let to_run: Vec<u32> = dag.order.clone();
    let cfg = ExecConfig {
        project: Arc::new(project.clone()),
        date: date(),
        run_id: "test".into(),
        threads,
        job_threads: 1,
        pools: project.config.run.pools.clone(),
        stop,
        timeout_grace: Duration::from_secs(5),
    };
    let mut attempts: HashMap<String, u32> = HashMap::new();
    let report = execute(dag, &to_run, &cfg, &mut |ev| {
        if let Event::Started { job, .. } = ev {
            *attempts.entry(dag.job(job).name.clone()).or_default() += 1;
        }
    });
    Ran {
        final_status: report
            .final_status
            .iter()
            .map(|(j, s)| (dag.job(*j).name.clone(), *s))
            .collect(),
        attempts,
    }
}

#[test]
fn families_expand_from_lists_and_csv_with_substituted_after() {
    let t = TempProject::new("");
    t.file("data/branches.csv", "code,name\n0101,north\n0102,south\n0101,dup\n")
        .file(
            "jobs/a/extract.toml",
            "kind = \"noop\"\n[matrix]\nbranch = { csv = \"data/branches.csv\", column = \"code\" }\nproduct = [\"loan\", 7]\n",
        )
        .file(
            "jobs/b/load.toml",
            "kind = \"noop\"\nname = \"load\"\nafter = [\"noop.extract[branch={branch},product=loan]\"]\n[matrix]\nbranch = [\"0101\", \"0102\"]\n",
        );
    let dag = t.load().unwrap();
    let all: Vec<&str> = dag.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        all,
        [
            "noop.extract[branch=0101,product=loan]",
            "noop.extract[branch=0101,product=7]",
            "noop.extract[branch=0102,product=loan]",
            "noop.extract[branch=0102,product=7]",
            "noop.load[branch=0101]",
            "noop.load[branch=0102]",
        ]
    );
    let load = dag.by_name["noop.load[branch=0102]"];
    let ps: Vec<&str> = dag.parents[load as usize]
        .iter()
        .map(|d| dag.job(d.job).name.as_str())
        .collect();
    assert_eq!(ps, ["noop.extract[branch=0102,product=loan]"]);
    assert_eq!(dag.job(load).vars["branch"], "0102");
}

#[test]
fn dependencies_are_inferred_from_tables_read_and_written() {
    let t = TempProject::new("");
    t.file(
        "jobs/ingest.toml",
        "kind = \"noop\"\nwrites = [\"clean.tx[branch={branch}]\"]\n[matrix]\nbranch = [\"01\", \"02\"]\n",
    )
    .file(
        "jobs/feat.toml",
        "kind = \"noop\"\nreads = [\"clean.tx[branch={branch}]\"]\nwrites = [\"feature.f[branch={branch}]\"]\n[matrix]\nbranch = [\"01\", \"02\"]\n",
    )
    .file("jobs/report.toml", "kind = \"noop\"\nreads = [\"feature.f\", \"clean.external\"]\n");
    let dag = t.load().unwrap();
    let parents = |n: &str| -> Vec<String> {
        let mut v: Vec<String> = dag.parents[dag.by_name[n] as usize]
            .iter()
            .map(|d| format!("{} ({})", dag.job(d.job).name, d.why))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        parents("noop.feat[branch=02]"),
        ["noop.ingest[branch=02] (reads clean.tx[branch=02])"]
    );
    assert_eq!(
        parents("noop.report"),
        [
            "noop.feat[branch=01] (reads feature.f)",
            "noop.feat[branch=02] (reads feature.f)"
        ]
    );
    assert!(
        dag.warnings.iter().any(|w| w.contains("clean.external")),
        "{:?}",
        dag.warnings
    );
    // Parents come before children in the order.
    let pos: HashMap<u32, usize> = dag.order.iter().enumerate().map(|(p, &j)| (j, p)).collect();
    for (c, ps) in dag.parents.iter().enumerate() {
        for d in ps {
            assert!(pos[&d.job] < pos[&(c as u32)]);
        }
    }
}

/// Regression: a job naming itself in `after` was told the name "matches no job (did you mean
/// <the same name>?)".
#[test]
fn a_job_after_itself_is_told_so() {
    let t = TempProject::new("");
    t.file("jobs/a.toml", "kind = \"noop\"\nafter = [\"noop.a\"]\n")
        .file("jobs/b.toml", "kind = \"noop\"\nafter = [\"noop.*\"]\n");
    let all = t.load().unwrap_err().join("\n");
    assert!(
        all.contains("noop.a (jobs/a.toml): `after` names \"noop.a\", which is this job itself"),
        "{all}"
    );
    assert!(!all.contains("matches no job"), "{all}");
    // A pattern matching the job and others means the others.
    assert!(!all.contains("noop.b"), "{all}");
}

#[test]
fn validation_lists_every_problem_at_once() {
    let t = TempProject::new("[run]\npools = { train = 1 }\n");
    t.file("jobs/a.toml", "kind = \"noop\"\nafter = [\"noop.c\"]\n")
        .file("jobs/b.toml", "kind = \"noop\"\nafter = [\"noop.a\"]\n")
        .file("jobs/c.toml", "kind = \"noop\"\nafter = [\"noop.b\"]\n")
        .file(
            "jobs/d.toml",
            "kind = \"noop\"\nafter = [\"noop.nope\", \"sql.*\"]\n",
        )
        .file("jobs/dup1.toml", "kind = \"noop\"\nname = \"same\"\n")
        .file("jobs/sub/dup2.toml", "kind = \"noop\"\nname = \"same\"\n")
        .file("jobs/w1.toml", "kind = \"noop\"\nwrites = [\"clean.t\"]\n")
        .file(
            "jobs/w2.toml",
            "kind = \"noop\"\nwrites = [\"clean.t[branch=01]\"]\n",
        )
        .file("jobs/k.toml", "kind = \"spark\"\n")
        .file(
            "jobs/m.toml",
            "kind = \"noop\"\n[matrix]\nb = { csv = \"nowhere.csv\", column = \"x\" }\n",
        )
        .file(
            "jobs/p.toml",
            "kind = \"noop\"\npool = \"gpu\"\ncolour = \"red\"\ntimeout = \"5 parsecs\"\n",
        )
        .file("jobs/bad.toml", "kind = \"noop\"\nthis is not toml\n");
    // File-level problems come first (the graph cannot be built from broken files)...
    let p = spec::load_jobs(&t.project(), &registry()).unwrap_err();
    let all = p.join("\n");
    for needle in [
        "unknown kind \"spark\"",
        "nowhere.csv",
        "\"gpu\" is not declared",
        "`colour`",
        "parsecs",
        "bad.toml",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
    // `load` lists the graph problems of the good files too.
    let all = super::load(&t.project(), &registry())
        .unwrap_err()
        .to_string();
    for needle in [
        "unknown kind",
        "duplicate job name",
        "cycle",
        "both write clean.t",
        "bad.toml",
        "checked once they parse",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
    // ... then, with those fixed, every graph problem at once.
    for f in ["k", "m", "p", "bad"] {
        std::fs::remove_file(t.dir.path().join(format!("jobs/{f}.toml"))).unwrap();
    }
    let p = t.load().unwrap_err();
    let all = p.join("\n");
    assert!(
        all.contains("duplicate job name noop.same: in jobs/dup1.toml and jobs/sub/dup2.toml"),
        "{all}"
    );
    assert!(all.contains("\"noop.nope\", which matches no job"), "{all}");
    assert!(all.contains("\"sql.*\", which matches no job"), "{all}");
    assert!(
        all.contains("noop.w1 and noop.w2 both write clean.t"),
        "{all}"
    );
    let cycle = p
        .iter()
        .find(|l| l.contains("cycle"))
        .expect("a cycle is reported");
    // The path closes on itself and names the three jobs.
    assert!(
        cycle.contains("noop.a") && cycle.contains("noop.b") && cycle.contains("noop.c"),
        "{cycle}"
    );
    let path: Vec<&str> = cycle
        .split(": ")
        .nth(1)
        .unwrap()
        .split(" (")
        .next()
        .unwrap()
        .split(" -> ")
        .collect();
    assert_eq!(path.len(), 4, "{cycle}");
    assert_eq!(path[0], path[3]);
}

#[test]
fn ingest_jobs_report_missing_files_and_unknown_keys() {
    let t = TempProject::new("");
    t.file(
        "jobs/ingest/apps.toml",
        r#"kind = "ingest"
name = "apps"
colour = "red"
[source]
path = "data/apps-{branch}.csv"
format = "csv"
[matrix]
branch = ["0101"]
[[columns]]
name = "id"
type = "string"
"#,
    );
    let p = spec::load_jobs(&t.project(), &registry())
        .unwrap_err()
        .join("\n");
    assert!(p.contains("`colour`: unknown key"), "{p}");
    let text = std::fs::read_to_string(t.dir.path().join("jobs/ingest/apps.toml")).unwrap();
    t.file(
        "jobs/ingest/apps.toml",
        &text.replace("colour = \"red\"\n", ""),
    );
    let p = spec::load_jobs(&t.project(), &registry())
        .unwrap_err()
        .join("\n");
    assert!(
        p.contains("missing file") && p.contains("apps-0101.csv"),
        "{p}"
    );
    // A dated path is only checked when it runs; the job writes clean and rejects partitions.
    t.file(
        "jobs/ingest/apps.toml",
        r#"kind = "ingest"
[source]
path = "data/apps-{branch}-{date}.csv"
format = "csv"
[matrix]
branch = ["0101"]
[[columns]]
name = "id"
type = "string"
"#,
    );
    let dag = t.load().unwrap();
    let j = &dag.jobs[0];
    assert_eq!(j.name, "ingest.apps[branch=0101]");
    let w: Vec<String> = j.writes.iter().map(|w| w.to_string()).collect();
    assert_eq!(w, ["clean.apps[branch=0101]", "rejects.apps[branch=0101]"]);
}

#[test]
fn selection_grammar() {
    let t = TempProject::new("[run]\npools = { train = 1 }\n");
    t.file("jobs/i.toml", "kind = \"noop\"\ntags = [\"nightly\"]\nwrites = [\"clean.t[b={b}]\"]\n[matrix]\nb = [\"1\", \"2\"]\n")
        .file("jobs/f.toml", "kind = \"noop\"\nreads = [\"clean.t[b={b}]\"]\nwrites = [\"feature.f[b={b}]\"]\n[matrix]\nb = [\"1\", \"2\"]\n")
        .file("jobs/m.toml", "kind = \"probe\"\npool = \"train\"\nreads = []\nafter = [\"noop.f\"]\n")
        .file("jobs/other.toml", "kind = \"noop\"\ntags = [\"adhoc\"]\n");
    let dag = t.load().unwrap();
    let sel = |s: &[&str], e: &[&str]| -> Vec<String> {
        let s: Vec<String> = s.iter().map(|x| x.to_string()).collect();
        let e: Vec<String> = e.iter().map(|x| x.to_string()).collect();
        names(&dag, &select::select(&dag, &s, &e).unwrap())
    };
    assert_eq!(sel(&[], &[]).len(), 6);
    assert_eq!(sel(&["noop.i"], &[]), ["noop.i[b=1]", "noop.i[b=2]"]);
    assert_eq!(sel(&["noop.i[b=1]"], &[]), ["noop.i[b=1]"]);
    assert_eq!(sel(&["*[b=2]"], &[]), ["noop.f[b=2]", "noop.i[b=2]"]);
    assert_eq!(sel(&["tag:nightly"], &[]), ["noop.i[b=1]", "noop.i[b=2]"]);
    assert_eq!(sel(&["kind:probe"], &[]), ["probe.m"]);
    assert_eq!(sel(&["pool:train"], &[]), ["probe.m"]);
    assert_eq!(sel(&["table:feature.f[b=1]"], &[]), ["noop.f[b=1]"]);
    assert_eq!(sel(&["path:jobs/other.toml"], &[]), ["noop.other"]);
    assert_eq!(sel(&["+noop.f[b=2]"], &[]), ["noop.f[b=2]", "noop.i[b=2]"]);
    assert_eq!(
        sel(&["noop.i[b=1]+"], &[]),
        ["noop.f[b=1]", "noop.i[b=1]", "probe.m"]
    );
    // Unions with commas or spaces; commas inside [..] belong to the name.
    assert_eq!(
        sel(&["noop.other,kind:probe noop.i[b=1]"], &[]),
        ["noop.i[b=1]", "noop.other", "probe.m"]
    );
    assert_eq!(select::terms("a[x=1,y=2], b c"), ["a[x=1,y=2]", "b", "c"]);
    assert_eq!(
        sel(&["+probe.m"], &["tag:nightly", "noop.f[b=1]"]),
        ["noop.f[b=2]", "probe.m"]
    );
    let err = select::select(
        &dag,
        &["noop.nope".into(), "tag:x".into()],
        &["colour:red".into()],
    )
    .unwrap_err();
    assert_eq!(err.len(), 3, "{err:?}");
}

#[test]
fn retries_recover_transient_failures_and_failures_skip_only_descendants() {
    let t = TempProject::new("");
    t.file(
        "jobs/flaky.toml",
        "kind = \"noop\"\nfail_times = 2\nretries = 2\nretry_delay = \"1ms\"\n",
    )
    .file(
        "jobs/too_flaky.toml",
        "kind = \"noop\"\nfail_times = 2\nretries = 1\nretry_delay = \"1ms\"\n",
    )
    .file(
        "jobs/broken.toml",
        "kind = \"noop\"\nfail = true\nretries = 3\n",
    )
    .file(
        "jobs/child.toml",
        "kind = \"noop\"\nafter = [\"noop.broken\"]\n",
    )
    .file(
        "jobs/grandchild.toml",
        "kind = \"noop\"\nafter = [\"noop.child\", \"noop.flaky\"]\n",
    )
    .file("jobs/independent.toml", "kind = \"noop\"\nsleep_ms = 30\n")
    .file(
        "jobs/after_flaky.toml",
        "kind = \"noop\"\nafter = [\"noop.flaky\"]\n",
    );
    let dag = t.load().unwrap();
    let stop = AtomicU8::new(0);
    let r = exec(&t.project(), &dag, 3, &stop);
    let st = |n: &str| r.final_status[n];
    assert_eq!(st("noop.flaky"), Status::Succeeded);
    assert_eq!(r.attempts["noop.flaky"], 3);
    assert_eq!(st("noop.too_flaky"), Status::Failed);
    assert_eq!(r.attempts["noop.too_flaky"], 2);
    // A permanent failure is not retried.
    assert_eq!(st("noop.broken"), Status::Failed);
    assert_eq!(r.attempts["noop.broken"], 1);
    assert_eq!(st("noop.child"), Status::Skipped);
    assert_eq!(st("noop.grandchild"), Status::Skipped);
    assert!(!r.attempts.contains_key("noop.child"));
    assert_eq!(st("noop.independent"), Status::Succeeded);
    assert_eq!(st("noop.after_flaky"), Status::Succeeded);
}

#[test]
fn pools_and_threads_bound_concurrency() {
    let t = TempProject::new("[run]\npools = { train = 1 }\n");
    t.file(
        "jobs/t.toml",
        "kind = \"probe\"\npool = \"train\"\ngroup = 1\n[matrix]\nm = [1, 2, 3, 4]\n",
    )
    .file(
        "jobs/u.toml",
        "kind = \"probe\"\ngroup = 2\n[matrix]\nm = [1, 2, 3, 4, 5, 6]\n",
    );
    let dag = t.load().unwrap();
    let stop = AtomicU8::new(0);
    let r = exec(&t.project(), &dag, 3, &stop);
    assert!(r.final_status.values().all(|s| *s == Status::Succeeded));
    assert_eq!(
        PROBE_MAX[1].load(Ordering::SeqCst),
        1,
        "pool train has one slot"
    );
    assert!(
        PROBE_MAX[2].load(Ordering::SeqCst) <= 3,
        "at most 3 threads"
    );
}

#[test]
fn timeouts_cancel_the_job_and_are_retried() {
    let t = TempProject::new("");
    t.file("jobs/slow.toml", "kind = \"noop\"\nsleep_ms = 60000\ntimeout = \"50ms\"\nretries = 1\nretry_delay = \"1ms\"\n")
        .file("jobs/next.toml", "kind = \"noop\"\nafter = [\"noop.slow\"]\n");
    let dag = t.load().unwrap();
    let stop = AtomicU8::new(0);
    let t0 = std::time::Instant::now();
    let r = exec(&t.project(), &dag, 2, &stop);
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(r.final_status["noop.slow"], Status::Timeout);
    assert_eq!(r.attempts["noop.slow"], 2);
    assert_eq!(r.final_status["noop.next"], Status::Skipped);
}

#[test]
fn a_stop_request_launches_nothing_more() {
    let t = TempProject::new("");
    t.file(
        "jobs/a.toml",
        "kind = \"noop\"\nsleep_ms = 60000\n[matrix]\ni = [1, 2, 3, 4, 5, 6, 7, 8]\n",
    );
    let dag = t.load().unwrap();
    let stop = AtomicU8::new(1);
    let r = exec(&t.project(), &dag, 2, &stop);
    assert!(r.attempts.is_empty());
    // Cancel: running jobs see their cancel flag and stop.
    let stop = AtomicU8::new(0);
    let project = t.project();
    let cfg = ExecConfig {
        project: Arc::new(project.clone()),
        date: date(),
        run_id: "t".into(),
        threads: 2,
        job_threads: 1,
        pools: Default::default(),
        stop: &stop,
        timeout_grace: Duration::from_secs(5),
    };
    let to_run = dag.order.clone();
    let mut started = 0;
    let rep = execute(&dag, &to_run, &cfg, &mut |ev| {
        if let Event::Started { .. } = ev {
            started += 1;
            if started == 2 {
                stop.store(2, Ordering::SeqCst);
            }
        }
    });
    assert!(rep.interrupted);
    assert_eq!(
        rep.final_status
            .values()
            .filter(|s| **s == Status::Cancelled)
            .count(),
        2
    );
    assert_eq!(rep.not_started.len(), 6);
}

#[test]
fn shards_partition_the_selection_and_keep_dependencies_together() {
    let t = TempProject::new("");
    t.file(
        "jobs/i.toml",
        "kind = \"noop\"\nwrites = [\"clean.t[b={b}]\"]\n[matrix]\nb = [1, 2, 3, 4, 5, 6, 7]\n",
    )
    .file(
        "jobs/f.toml",
        "kind = \"noop\"\nreads = [\"clean.t[b={b}]\"]\n[matrix]\nb = [1, 2, 3, 4, 5, 6, 7]\n",
    )
    .file(
        "jobs/solo.toml",
        "kind = \"noop\"\n[matrix]\nx = [1, 2, 3]\n",
    );
    let dag = t.load().unwrap();
    let all = vec![true; dag.len()];
    for n in [1, 2, 3, 5] {
        let a = shard_of(&dag, &all, n);
        assert!(a.iter().all(|&s| s < n));
        for (c, ps) in dag.parents.iter().enumerate() {
            for d in ps {
                assert_eq!(a[c], a[d.job as usize], "dependency split across shards");
            }
        }
        let mut seen = vec![0; dag.len()];
        for i in 1..=n {
            let mut m = all.clone();
            plan::shard(&dag, &mut m, Shard { index: i, count: n });
            for (j, s) in m.iter().enumerate() {
                seen[j] += *s as usize;
            }
        }
        assert!(
            seen.iter().all(|&c| c == 1),
            "every job in exactly one shard"
        );
        assert_eq!(shard_of(&dag, &all, n), a, "deterministic");
    }
    let loads: Vec<usize> = (0..3)
        .map(|s| shard_of(&dag, &all, 3).iter().filter(|&&x| x == s).count())
        .collect();
    assert!(
        loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 2,
        "{loads:?}"
    );
    assert!(
        "0/3".parse::<Shard>().is_err()
            && "4/3".parse::<Shard>().is_err()
            && "x".parse::<Shard>().is_err()
    );
}

fn night_opts(plan: PlanOptions) -> NightOptions {
    NightOptions {
        dates: vec![date()],
        plan,
        shard: None,
        threads: 2,
        command: "test".into(),
        timeout_grace: Duration::from_secs(5),
        report: true,
        after_night: None,
    }
}

#[test]
fn changed_inputs_run_a_succeeded_job_again_with_the_jobs_after_it() {
    let t = TempProject::new("");
    t.file("jobs/src.toml", "kind = \"noop\"\n")
        .file(
            "jobs/feat.toml",
            "kind = \"noop\"\nafter = [\"noop.src\"]\n",
        )
        .file("jobs/other.toml", "kind = \"noop\"\n");
    let project = Arc::new(t.project());
    let dag = t.load().unwrap();
    let all = vec![true; dag.len()];
    let stop = AtomicU8::new(0);
    let mut progress = Progress::new(false);
    run_nights(
        project.clone(),
        &dag,
        &all,
        &night_opts(PlanOptions::default()),
        &stop,
        &mut progress,
    )
    .unwrap();
    let prev = Ledger::open(&project.warehouse_root)
        .unwrap()
        .statuses("2026-11-26")
        .unwrap();
    let src = dag.by_name["noop.src"];
    let changed = HashMap::from([(src, "its source changed".to_string())]);
    let plan = plan_night(&dag, &all, date(), &prev, &changed, PlanOptions::default());
    let run: Vec<(&str, &str)> = plan
        .items
        .iter()
        .filter(|i| i.action == Action::Run)
        .map(|i| (dag.job(i.job).name.as_str(), i.reason.as_str()))
        .collect();
    assert_eq!(run.len(), 2, "{run:?}");
    assert_eq!(run[0], ("noop.src", "its source changed"));
    assert_eq!(run[1].0, "noop.feat");
    assert!(
        run[1]
            .1
            .ends_with("runs again after noop.src, whose inputs changed"),
        "{run:?}"
    );
    // --retry-failed runs only what failed, whatever changed.
    let retry = PlanOptions {
        force: false,
        retry_failed: true,
    };
    assert!(changed_inputs(&project, &dag, &all, date(), &prev, retry).is_empty());
    let plan = plan_night(&dag, &all, date(), &prev, &HashMap::new(), retry);
    assert!(plan.to_run().is_empty());
}

#[test]
fn nights_skip_what_succeeded_and_retry_what_failed() {
    let t = TempProject::new("");
    t.file("jobs/ok.toml", "kind = \"noop\"\n[matrix]\ni = [1, 2]\n")
        .file("jobs/bad.toml", "kind = \"noop\"\nfail = true\n")
        .file(
            "jobs/after_bad.toml",
            "kind = \"noop\"\nafter = [\"noop.bad\"]\n",
        );
    let project = Arc::new(t.project());
    let dag = t.load().unwrap();
    let all = vec![true; dag.len()];
    let stop = AtomicU8::new(0);
    let mut progress = Progress::new(false);
    let r = run_nights(
        project.clone(),
        &dag,
        &all,
        &night_opts(PlanOptions::default()),
        &stop,
        &mut progress,
    )
    .unwrap();
    let c = &r[0].counts;
    assert_eq!((c.succeeded, c.failed, c.skipped), (2, 1, 1));
    assert_eq!(r[0].status, "failed");
    assert_eq!(r[0].failures[0].job, "noop.bad");
    let report = project.root.join(r[0].report.as_ref().unwrap());
    let html = std::fs::read_to_string(report).unwrap();
    assert!(
        html.contains("<svg") && html.contains("noop.bad") && html.contains("failed on purpose")
    );

    let ledger = Ledger::open(&project.warehouse_root).unwrap();
    let prev = ledger.statuses("2026-11-26").unwrap();
    let plan = plan_night(
        &dag,
        &all,
        date(),
        &prev,
        &HashMap::new(),
        PlanOptions::default(),
    );
    let run: Vec<&str> = plan
        .items
        .iter()
        .filter(|i| i.action == Action::Run)
        .map(|i| dag.job(i.job).name.as_str())
        .collect();
    assert_eq!(run, ["noop.bad", "noop.after_bad"]);
    let forced = plan_night(
        &dag,
        &all,
        date(),
        &prev,
        &HashMap::new(),
        PlanOptions {
            force: true,
            retry_failed: false,
        },
    );
    assert_eq!(forced.to_run().len(), 4);

    // Fix the job; --retry-failed runs only what failed or was skipped.
    t.file("jobs/bad.toml", "kind = \"noop\"\n");
    let dag = t.load().unwrap();
    let r = run_nights(
        project.clone(),
        &dag,
        &all,
        &night_opts(PlanOptions {
            force: false,
            retry_failed: true,
        }),
        &stop,
        &mut progress,
    )
    .unwrap();
    let c = &r[0].counts;
    assert_eq!((c.succeeded, c.failed, c.already_done), (2, 0, 2));
    let r = run_nights(
        project,
        &dag,
        &all,
        &night_opts(PlanOptions::default()),
        &stop,
        &mut progress,
    )
    .unwrap();
    assert_eq!(r[0].counts.to_run, 0);
    assert_eq!(r[0].counts.already_done, 4);
    assert_eq!(ledger.runs(None, 10).unwrap().len(), 3);
}

#[test]
fn a_job_committed_by_a_killed_run_is_recorded_not_redone() {
    let t = TempProject::new("");
    t.file(
        "jobs/c.toml",
        "kind = \"noop\"\ncommit = true\n[matrix]\ni = [1, 2]\n",
    );
    let project = Arc::new(t.project());
    let dag = t.load().unwrap();
    // A run that died (its pid start time does not match) after committing noop.c[i=1].
    let ledger = Ledger::open(&project.warehouse_root).unwrap();
    ledger
        .start_run(&RunRow {
            run_id: "killed".into(),
            date: "2026-11-26".into(),
            started_at: ledger::now_iso(),
            command: "run".into(),
            host: ledger::hostname(),
            pid: std::process::id() as i64,
            pid_start: "not-this-process".into(),
            ..Default::default()
        })
        .unwrap();
    let marker = project
        .warehouse_root
        .join("_noop/dt=2026-11-26/noop.c[i=1]");
    std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
    std::fs::write(&marker, "killed\n").unwrap();

    let stop = AtomicU8::new(0);
    let all = vec![true; dag.len()];
    let r = run_nights(
        project.clone(),
        &dag,
        &all,
        &night_opts(PlanOptions::default()),
        &stop,
        &mut Progress::new(false),
    )
    .unwrap();
    assert_eq!(r[0].counts.recovered, 1);
    assert_eq!(r[0].counts.succeeded, 1);
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "killed\n",
        "not committed twice"
    );
    let other = project
        .warehouse_root
        .join("_noop/dt=2026-11-26/noop.c[i=2]");
    assert_eq!(std::fs::read_to_string(other).unwrap().lines().count(), 1);
    let runs = ledger.runs(Some("2026-11-26"), 10).unwrap();
    assert!(runs
        .iter()
        .any(|r| r.run_id == "killed" && r.status.starts_with("crashed")));
}

#[test]
fn airflow_stages_follow_the_kind_graph() {
    let t = TempProject::new("");
    t.file("jobs/i.toml", "kind = \"noop\"\nwrites = [\"clean.t\"]\n")
        .file("jobs/p.toml", "kind = \"probe\"\nafter = [\"noop.i\"]\n")
        .file("jobs/z.toml", "kind = \"noop\"\nafter = [\"probe.p\"]\n");
    // noop -> probe -> noop: mutually dependent kinds share a stage.
    let dag = t.load().unwrap();
    let st = airflow::stages(&dag);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].selector(), "kind:noop,kind:probe");
    std::fs::remove_file(t.dir.path().join("jobs/z.toml")).unwrap();
    let dag = t.load().unwrap();
    let st: Vec<String> = airflow::stages(&dag)
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(st, ["noop", "probe"]);
    let py = airflow::render(
        &dag,
        &airflow::AirflowOptions {
            dag_id: "d".into(),
            schedule: "0 2 * * *".into(),
            shards: 3,
            project_dir: "/srv/my project".into(),
            bin: "panorama".into(),
            retries: 1,
        },
    );
    assert!(
        py.contains("{{{{ ds }}}}") && py.contains("'/srv/my project'"),
        "{py}"
    );
}

#[test]
fn unused_cancel_flag_type_is_atomic_bool() {
    // JobCtx hands kinds an AtomicBool, as the ingest API takes.
    let f = AtomicBool::new(false);
    let _: Option<&AtomicBool> = Some(&f);
    assert!(Path::new("jobs").is_relative());
}
