//! The thread pool the core runs on. By default Rayon's global pool (RAYON_NUM_THREADS or
//! one thread per core); `set_num_threads` swaps in a dedicated pool so benchmarks and users
//! can choose the thread count at run time. Results never depend on it.

use std::sync::{Arc, RwLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

fn current_pool() -> Option<Arc<ThreadPool>> {
    POOL.read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// Uses `n` threads from now on; `n = 0` returns to Rayon's global pool.
pub fn set_num_threads(n: usize) -> Result<()> {
    let pool = if n == 0 {
        None
    } else {
        let built = ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|k| format!("mlpot-{k}"))
            .build()
            .map_err(|e| Error::invalid(format!("cannot start {n} threads: {e}")))?;
        Some(Arc::new(built))
    };
    *POOL
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = pool;
    Ok(())
}

/// Number of threads the core currently uses.
pub fn num_threads() -> usize {
    current_pool().map_or_else(rayon::current_num_threads, |p| p.current_num_threads())
}

/// Runs `work` on the current pool.
pub fn install<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    match current_pool() {
        Some(pool) => pool.install(work),
        None => work(),
    }
}
