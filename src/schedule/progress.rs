//! What a run tells a person while it goes: an indicatif bar (overall progress, running jobs,
//! ETA) on a terminal; otherwise one log line per finished job (human or JSON, on stderr).

use std::collections::BTreeSet;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::dag::Dag;
use super::executor::{Attempt, Event, Status};
use crate::log;

pub struct Progress {
    bar_wanted: bool,
    bar: Option<ProgressBar>,
    running: BTreeSet<u32>,
    date: String,
    run_id: String,
}

impl Progress {
    /// `bar`: draw a progress bar (only when stderr is a terminal and logs are human).
    pub fn new(bar: bool) -> Progress {
        Progress {
            bar_wanted: bar,
            bar: None,
            running: BTreeSet::new(),
            date: String::new(),
            run_id: String::new(),
        }
    }

    /// Whether stderr is a terminal and logs are for humans.
    pub fn terminal() -> bool {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal() && log::format() == log::LogFormat::Human
    }

    pub fn start_night(&mut self, date: &str, run_id: &str, to_run: usize, already_done: usize) {
        self.date = date.to_string();
        self.run_id = run_id.to_string();
        self.running.clear();
        log::info(
            "night started",
            &[
                ("date", date.into()),
                ("run_id", run_id.into()),
                ("to_run", to_run.into()),
                ("already_done", already_done.into()),
            ],
        );
        if self.bar_wanted && to_run > 0 {
            let bar =
                ProgressBar::with_draw_target(Some(to_run as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} {elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} ETA {eta} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(date.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            self.bar = Some(bar);
        }
    }

    fn say(&self, f: impl FnOnce()) {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    pub fn event(&mut self, dag: &Dag, ev: &Event<'_>) {
        match ev {
            Event::Started { job, attempt } => {
                self.running.insert(*job);
                if *attempt > 1 {
                    let name = &dag.job(*job).name;
                    self.say(|| {
                        log::info(
                            "retrying",
                            &[
                                ("job", name.as_str().into()),
                                ("attempt", (*attempt).into()),
                            ],
                        )
                    });
                }
                self.update_msg(dag);
            }
            Event::Finished(a) => {
                self.running.remove(&a.job);
                self.finished(dag, a);
                if a.final_state {
                    if let Some(b) = &self.bar {
                        b.inc(1);
                    }
                }
                self.update_msg(dag);
            }
        }
    }

    fn finished(&self, dag: &Dag, a: &Attempt) {
        let name = dag.job(a.job).name.as_str();
        let secs = ((a.end - a.start) * 1000.0).round() / 1000.0;
        match (a.status, a.final_state) {
            (Status::Succeeded | Status::Recovered, _) => {
                if self.bar.is_none() {
                    log::info(
                        a.status.as_str(),
                        &[
                            ("job", name.into()),
                            ("seconds", secs.into()),
                            ("rows_out", a.outcome.rows_out.into()),
                            ("attempt", a.attempt.into()),
                        ],
                    );
                }
            }
            (Status::Skipped, _) => {
                if self.bar.is_none() {
                    log::warn(
                        "skipped",
                        &[
                            ("job", name.into()),
                            ("reason", a.outcome.message.as_str().into()),
                        ],
                    );
                }
            }
            (status, final_state) => {
                let err = a.error.as_deref().unwrap_or("");
                self.say(|| {
                    log::event(
                        if final_state {
                            log::Level::Error
                        } else {
                            log::Level::Warn
                        },
                        status.as_str(),
                        &[
                            ("job", name.into()),
                            ("attempt", a.attempt.into()),
                            ("seconds", secs.into()),
                            ("error", err.into()),
                        ],
                    )
                });
            }
        }
    }

    fn update_msg(&self, dag: &Dag) {
        if let Some(b) = &self.bar {
            let mut names: Vec<&str> = self
                .running
                .iter()
                .take(2)
                .map(|&j| dag.job(j).name.as_str())
                .collect();
            let more = self.running.len().saturating_sub(names.len());
            let mut msg = format!("running {}", self.running.len());
            if !names.is_empty() {
                msg.push_str(": ");
                msg.push_str(&names.join(", "));
                names.clear();
            }
            if more > 0 {
                msg.push_str(&format!(" +{more}"));
            }
            b.set_message(msg);
        }
    }

    pub fn finish_night(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }
}
