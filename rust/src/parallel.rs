//! The thread pools the core runs on. mlpot owns them and never uses Rayon's global pool:
//!
//! - fork: a pool's threads do not exist in a child created by fork(), so a job sent to the
//!   parent's pool never returns there. Pools belong to a process id: a child builds its own
//!   on first use and leaks (never drops) the parent's, whose threads it cannot join.
//! - fairness: Rayon starts a job injected from outside only when its workers run out of
//!   work, so with one pool a small call waits behind a long one. Each call runs on a pool
//!   no other call is using, from a reusable set of at most `MAX_POOLS` built on demand; the
//!   OS time-slices concurrent calls. More concurrent calls than that wait for a free pool.
//!
//! Results never depend on the pool or its thread count: no chunking depends on the count.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

/// The environment variables that set the default thread count, the first one set wins:
/// mlpot's own, then Rayon's (which mlpot honoured when it ran on Rayon's global pool).
pub const THREAD_VARIABLES: [&str; 2] = ["MLPOT_NUM_THREADS", "RAYON_NUM_THREADS"];

/// Concurrent calls that get a pool of their own; bounds the threads to MAX_POOLS times the
/// thread count, while an MD driver and an analysis thread, say, each get their share.
pub const MAX_POOLS: usize = 4;

/// The largest thread count accepted (unless the machine has more cores). Past the core
/// count more threads only add overhead, and each reserves a stack: this bound rejects a
/// typo such as 100000 at once instead of spending seconds spawning threads that then fail.
pub const MAX_THREADS: usize = 1024;

/// Cores available to this process (affinity and cgroup quotas included), at least 1.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The largest thread count `set_num_threads` and the environment variables accept.
pub fn max_threads() -> usize {
    MAX_THREADS.max(cores())
}

/// The count set by `set_num_threads`; 0: the default.
static REQUESTED: AtomicUsize = AtomicUsize::new(0);

/// Uses `n` threads per call from now on; `n = 0` returns to the default (the environment
/// variables, or one thread per core). Starts a pool at once, so failures show here.
pub fn set_num_threads(n: i64) -> Result<()> {
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= max_threads())
        .ok_or_else(|| {
            Error::invalid(format!(
                "the number of threads must be from 0 (the default) to {}, got {n}",
                max_threads()
            ))
        })?;
    let pool = build_pool(if n == 0 { default_threads() } else { n })?;
    REQUESTED.store(n, Ordering::SeqCst);
    Pools::of_this_process().give_back(pool, false);
    Ok(())
}

/// Threads each call uses; never starts any.
pub fn num_threads() -> usize {
    match REQUESTED.load(Ordering::SeqCst) {
        0 => default_threads(),
        n => n,
    }
}

/// Runs `work` on a pool of this process that no other call is using. Fails only when no
/// pool can be started (the system refuses the threads).
pub fn install<R: Send>(work: impl FnOnce() -> R + Send) -> Result<R> {
    let lease = Pools::of_this_process().lease()?;
    Ok(lease.pool().install(work))
}

/// The message about a thread-count variable that could not be used, once per process
/// (and not again in a child forked after it was taken).
pub fn take_environment_warning() -> Option<String> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    let warning = environment_default().warning.clone()?;
    (!TAKEN.swap(true, Ordering::SeqCst)).then_some(warning)
}

/// The default thread count and, if a variable was unusable, why it was ignored.
#[derive(Debug, Clone, PartialEq)]
struct DefaultThreads {
    threads: usize,
    warning: Option<String>,
}

fn default_threads() -> usize {
    environment_default().threads
}

fn environment_default() -> &'static DefaultThreads {
    static DEFAULT: OnceLock<DefaultThreads> = OnceLock::new();
    DEFAULT.get_or_init(|| {
        let values = THREAD_VARIABLES.map(|name| (name, std::env::var_os(name)));
        default_from(&values, cores())
    })
}

/// The default from the variables' values (the first non-empty one decides): 0 means one
/// thread per core, as in Rayon; anything but 0..=max_threads() is ignored with a warning.
/// Falling back keeps mlpot usable, where an error would stop every call.
fn default_from(values: &[(&str, Option<std::ffi::OsString>)], cores: usize) -> DefaultThreads {
    let set = values
        .iter()
        .find_map(|(name, value)| Some((name, value.as_ref()?)).filter(|(_, v)| !v.is_empty()));
    let Some((name, value)) = set else {
        return DefaultThreads {
            threads: cores,
            warning: None,
        };
    };
    let count = value.to_str().and_then(|v| v.trim().parse::<usize>().ok());
    match count {
        Some(0) => DefaultThreads {
            threads: cores,
            warning: None,
        },
        Some(n) if n <= MAX_THREADS.max(cores) => DefaultThreads {
            threads: n,
            warning: None,
        },
        _ => DefaultThreads {
            threads: cores,
            warning: Some(format!(
                "{name}={value:?} is not a thread count from 0 to {}: mlpot ignores it and \
                 uses {cores} threads (one per core)",
                MAX_THREADS.max(cores)
            )),
        },
    }
}

fn build_pool(threads: usize) -> Result<ThreadPool> {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|k| format!("mlpot-{k}"))
        .build()
        .map_err(|e| {
            Error::invalid(format!(
                "cannot start {threads} threads for the mlpot core ({e}): choose fewer with \
                 mlpot.set_num_threads or {}",
                THREAD_VARIABLES[0]
            ))
        })
}

/// The pools of one process.
struct Pools {
    pid: u32,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<ThreadPool>,
    in_use: usize,
    /// MAX_POOLS, or fewer once the system refused to start another pool.
    limit: usize,
}

/// The pools of the process that created them; a child of fork() finds its parent's here.
static PROCESS_POOLS: AtomicPtr<Pools> = AtomicPtr::new(std::ptr::null_mut());

impl Pools {
    /// This process's pools, created on first use. The parent's are leaked in a forked child:
    /// dropping them would join threads that do not exist, and their lock may be held.
    fn of_this_process() -> &'static Pools {
        let pid = std::process::id();
        let current = PROCESS_POOLS.load(Ordering::Acquire);
        // SAFETY: the pointer is null or comes from Box::leak below and is never freed.
        if let Some(pools) = unsafe { current.as_ref() } {
            if pools.pid == pid {
                return pools;
            }
        }
        let fresh: &'static mut Pools = Box::leak(Box::new(Pools {
            pid,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                in_use: 0,
                limit: MAX_POOLS,
            }),
            returned: Condvar::new(),
        }));
        match PROCESS_POOLS.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => fresh,
            // another thread of this process won the race; `fresh` has no threads to leak
            // SAFETY: as above.
            Err(winner) => unsafe { &*winner },
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle pool of the current thread count, a new one, or (all MAX_POOLS in use) the
    /// next one returned.
    fn lease(&'static self) -> Result<Lease> {
        let mut state = self.lock();
        loop {
            let threads = num_threads();
            // pools of an earlier set_num_threads: dropping one lets its threads exit
            state
                .idle
                .retain(|pool| pool.current_num_threads() == threads);
            if let Some(pool) = state.idle.pop() {
                state.in_use += 1;
                return Ok(Lease {
                    pools: self,
                    pool: Some(pool),
                });
            }
            if state.in_use >= state.limit {
                state = self.returned.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.in_use += 1;
            drop(state);
            let built = build_pool(threads);
            state = self.lock();
            match built {
                Ok(pool) => {
                    return Ok(Lease {
                        pools: self,
                        pool: Some(pool),
                    })
                }
                Err(e) if state.in_use == 1 => {
                    state.in_use = 0;
                    return Err(e);
                }
                // the system starts no more threads: share the pools that exist
                Err(_) => {
                    state.in_use -= 1;
                    state.limit = state.in_use;
                }
            }
        }
    }

    /// Keeps `pool` for the next call, unless its thread count is out of date or the set is
    /// full; `leased`: it comes back from a call.
    fn give_back(&self, pool: ThreadPool, leased: bool) {
        let mut state = self.lock();
        state.in_use -= usize::from(leased);
        let threads = num_threads();
        state
            .idle
            .retain(|idle| idle.current_num_threads() == threads);
        if pool.current_num_threads() == threads && state.idle.len() + state.in_use < state.limit {
            state.idle.push(pool);
        }
        drop(state);
        self.returned.notify_one();
    }
}

/// A pool one call uses alone; returned to the idle set when dropped (also on a panic).
struct Lease {
    pools: &'static Pools,
    pool: Option<ThreadPool>,
}

impl Lease {
    fn pool(&self) -> &ThreadPool {
        self.pool
            .as_ref()
            .expect("a lease holds its pool until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            self.pools.give_back(pool, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::sync::Barrier;

    fn default_of(mlpot: Option<&str>, rayon: Option<&str>) -> DefaultThreads {
        let values = [
            ("MLPOT_NUM_THREADS", mlpot.map(OsString::from)),
            ("RAYON_NUM_THREADS", rayon.map(OsString::from)),
        ];
        default_from(&values, 2)
    }

    #[test]
    fn the_first_variable_set_decides_the_default() {
        assert_eq!(
            default_of(None, None),
            DefaultThreads {
                threads: 2,
                warning: None
            }
        );
        assert_eq!(default_of(None, Some("3")).threads, 3);
        assert_eq!(default_of(Some("5"), Some("3")).threads, 5);
        assert_eq!(default_of(Some(""), Some("3")).threads, 3);
        assert_eq!(default_of(Some(" 7 "), None).threads, 7);
        assert_eq!(
            default_of(Some("0"), Some("3")),
            DefaultThreads {
                threads: 2,
                warning: None
            }
        );
    }

    #[test]
    fn unusable_variables_fall_back_to_one_thread_per_core_with_a_warning() {
        for bad in ["100000", "-1", "two", "1.5"] {
            let d = default_of(None, Some(bad));
            assert_eq!(d.threads, 2);
            let warning = d.warning.unwrap();
            assert!(
                warning.contains("RAYON_NUM_THREADS") && warning.contains(bad),
                "{warning}"
            );
        }
        let d = default_of(Some("abc"), Some("3"));
        assert_eq!(d.threads, 2);
        assert!(d.warning.unwrap().contains("MLPOT_NUM_THREADS"));
        assert_eq!(
            default_of(None, Some(&MAX_THREADS.to_string())).threads,
            MAX_THREADS
        );
    }

    #[test]
    fn bad_thread_counts_are_refused_before_starting_threads() {
        for n in [-1, i64::MIN, max_threads() as i64 + 1, 100_000] {
            let e = set_num_threads(n).unwrap_err().to_string();
            assert!(
                e.contains("number of threads") && e.contains(&n.to_string()),
                "{e}"
            );
        }
    }

    #[test]
    fn concurrent_calls_run_on_different_pools() {
        // MAX_POOLS calls that each wait inside their pool for all the others: on one shared
        // pool of one thread they would deadlock
        set_num_threads(1).unwrap();
        let all_running = Barrier::new(MAX_POOLS);
        std::thread::scope(|s| {
            let calls: Vec<_> = (0..MAX_POOLS)
                .map(|_| s.spawn(|| install(|| all_running.wait()).is_ok()))
                .collect();
            for call in calls {
                assert!(call.join().unwrap());
            }
        });
        set_num_threads(0).unwrap();
    }

    #[test]
    fn work_runs_on_an_mlpot_pool_not_the_calling_thread() {
        let name = install(|| std::thread::current().name().map(str::to_owned)).unwrap();
        assert!(name.unwrap().starts_with("mlpot-"));
    }
}
