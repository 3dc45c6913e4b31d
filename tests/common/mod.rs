//! A project folder in a temp directory and the real binary run inside it (xsv's workdir).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Workdir {
    pub dir: tempfile::TempDir,
}

pub const PII_KEY: &str = "test-key-0123456789abcdef";

impl Workdir {
    /// An empty project: panorama.toml with the default warehouse, no key file.
    pub fn new() -> Workdir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("panorama.toml"),
            "[project]\nname = \"test\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
        Workdir { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_panorama"));
        c.current_dir(self.dir.path())
            .args(args)
            .env("PANORAMA_PII_KEY", PII_KEY)
            .env_remove("PANORAMA_PROJECT")
            .env_remove("PANORAMA_WAREHOUSE");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run panorama")
    }

    /// Runs and asserts the exit code, printing both streams when it differs.
    pub fn run_code(&self, args: &[&str], code: i32) -> Output {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "panorama {args:?} exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn read_parquet(&self, rel_dir: &str) -> polars::prelude::DataFrame {
        read_partition(&self.path(rel_dir))
    }
}

/// All part files of a partition folder, stacked.
pub fn read_partition(dir: &Path) -> polars::prelude::DataFrame {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    let mut out: Option<polars::prelude::DataFrame> = None;
    for f in files {
        let df = panorama::warehouse::parquet::read_frame(&f).unwrap();
        out = Some(match out {
            None => df,
            Some(mut o) => {
                o.vstack_mut(&df).unwrap();
                o
            }
        });
    }
    out.expect("no parquet file")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
