//! The list of runtimes every suite runs on, written once: `every_runtime!({ case_a, case_b, })`
//! calls the suite's own `runtime_suite!` (defined in the suite file, since each passes its
//! cases a different start function) once per runtime, each behind its feature.

/// One `#[test]` per case for each runtime compiled in.
macro_rules! every_runtime {
    ($cases:tt) => {
        runtime_suite!("smol", smol, $cases);
        runtime_suite!("async-std", async_std, $cases);
        runtime_suite!("tokio", tokio, $cases);
        runtime_suite!("threadpool", threadpool, $cases);
        runtime_suite!("mio", mio, $cases);
        runtime_suite!("poll", poll, $cases);
    };
}
