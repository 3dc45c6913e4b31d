//! `panorama export airflow`: the nightly as an Airflow DAG of coarse stage × shard tasks.

use std::path::PathBuf;

use crate::cli::Ctx;
use crate::error::{Context, Error, ExitCode, Result};
use crate::schedule::airflow::{render, stages, AirflowOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub target: Target,
}

#[derive(Debug, clap::Subcommand)]
pub enum Target {
    /// Write an Airflow DAG file: one task per stage (job kinds in dependency order) and shard.
    Airflow(AirflowArgs),
}

#[derive(Debug, clap::Args)]
pub struct AirflowArgs {
    /// Folder to write `<dag-id>.py` into (e.g. Airflow's dags/ folder).
    #[arg(long)]
    pub out: PathBuf,
    /// Parallel tasks per stage; each runs `--shard i/K`.
    #[arg(long, default_value_t = 4)]
    pub shards: usize,
    /// The Airflow DAG id, also the file name (`<dag-id>.py`).
    #[arg(long, default_value = "panorama_nightly")]
    pub dag_id: String,
    /// Cron expression of the DAG's schedule.
    #[arg(long, default_value = "30 2 * * *")]
    pub schedule: String,
    /// The project folder on the Airflow workers (default: this project's absolute path).
    #[arg(long)]
    pub project_dir: Option<String>,
    /// The panorama binary on the Airflow workers.
    #[arg(long, default_value = "panorama")]
    pub bin: String,
    /// Airflow retries per task (a retry re-runs only the jobs that did not succeed).
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    match args.target {
        Target::Airflow(a) => airflow(ctx, a),
    }
}

fn airflow(ctx: &Ctx, a: AirflowArgs) -> Result<ExitCode> {
    if a.shards == 0 || a.shards > 1000 {
        return Err(Error::config("--shards: from 1 to 1000"));
    }
    if a.dag_id.is_empty()
        || !a
            .dag_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err(Error::config(format!(
            "--dag-id {:?}: letters, digits, _ - . only",
            a.dag_id
        )));
    }
    let project = ctx.project()?;
    let dag = crate::schedule::load(&project, &crate::jobkinds::registry())?;
    let opts = AirflowOptions {
        dag_id: a.dag_id.clone(),
        schedule: a.schedule,
        shards: a.shards,
        project_dir: a
            .project_dir
            .unwrap_or_else(|| project.root.display().to_string()),
        bin: a.bin,
        retries: a.retries,
    };
    let text = render(&dag, &opts);
    std::fs::create_dir_all(&a.out).ctx(|| format!("creating {}", a.out.display()))?;
    let path = a.out.join(format!("{}.py", a.dag_id));
    std::fs::write(&path, text).ctx(|| format!("writing {}", path.display()))?;
    let st = stages(&dag);
    crate::log::info(
        "wrote the Airflow DAG",
        &[
            ("path", path.display().to_string().into()),
            (
                "stages",
                st.iter()
                    .map(|s| s.name.clone())
                    .collect::<Vec<_>>()
                    .join(" -> ")
                    .into(),
            ),
            ("tasks", (st.len() * a.shards).into()),
            ("jobs", dag.len().into()),
        ],
    );
    println!("{}", path.display());
    Ok(ExitCode::Ok)
}
