//! Allocation of large output buffers.
//!
//! Neighbor lists and descriptor gradients are tens to hundreds of MB written once. With 4 kB
//! pages, first-touch page faults cost as much as computing the pairs (measured: 40% of a
//! 64,000-atom neighbor list). Asking the kernel for transparent huge pages on such buffers
//! cuts the faults 512-fold, as PyTorch's CPU allocator does for large tensors. It is only a
//! hint: where THP is disabled the buffer is an ordinary allocation.

/// Buffers at least this large get the huge-page hint.
const HUGE_PAGE_THRESHOLD: usize = 4 << 20;

/// An empty Vec with room for `n` elements, backed by huge pages where the OS allows.
pub fn large_vec<T>(n: usize) -> Vec<T> {
    let v = Vec::with_capacity(n);
    let bytes = n * std::mem::size_of::<T>();
    if bytes >= HUGE_PAGE_THRESHOLD {
        advise_huge_pages(v.as_ptr() as usize, bytes);
    }
    v
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(start: usize, bytes: usize) {
    const HUGE: usize = 2 << 20;
    // madvise needs page-aligned ranges: advise the whole huge pages inside the buffer
    let first = start.next_multiple_of(HUGE);
    let end = (start + bytes) / HUGE * HUGE;
    if end > first {
        // SAFETY: [first, end) lies inside the allocation just made; MADV_HUGEPAGE changes
        // only how the kernel backs it, not its contents or validity. Failure is harmless.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: usize, _bytes: usize) {}

/// Bytes the process can still allocate: the smaller of the system's available memory
/// (MemAvailable, which counts reclaimable caches) and the room left under the address-space
/// limit (RLIMIT_AS, `ulimit -v`). None where neither can be read.
///
/// Overcommit means a too-large allocation usually "succeeds" and the process is killed when
/// it touches the pages, so large buffers are checked against this before they are made.
/// Reading /proc costs tens of microseconds, as much as a whole small neighbor list: callers
/// ask only for large work (`UNCHECKED_BELOW`).
pub fn available_bytes() -> Option<u64> {
    #[cfg(test)]
    READS.with(|r| r.set(r.get() + 1));
    let system = mem_available();
    let limit = address_space_room();
    match (system, limit) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(target_os = "linux")]
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(target_os = "linux")]
fn address_space_room() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct passed; nothing else is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    // the current virtual size, in pages, is the first field of /proc/self/statm
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    Some((limit.rlim_cur as u64).saturating_sub(pages * page))
}

#[cfg(not(target_os = "linux"))]
fn mem_available() -> Option<u64> {
    None
}

#[cfg(not(target_os = "linux"))]
fn address_space_room() -> Option<u64> {
    None
}

/// Work of fewer bytes is not checked against the memory available: reading it costs tens of
/// microseconds (one or two /proc files), as much as a neighbor list or descriptor of a small
/// structure; buffers this small cannot exhaust a machine that still runs Python; and an
/// allocation the allocator refuses is still an error (`try_large_vec`), not an abort.
pub const UNCHECKED_BELOW: u128 = 64 << 20;

#[cfg(test)]
thread_local! {
    /// Calls of `available_bytes` on this thread, for tests that small work reads no /proc.
    pub static READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Fails with `Error::OutOfMemory` naming `what` when `bytes` more would not fit in the
/// memory available (not checked below `UNCHECKED_BELOW`). Call it with the whole estimate
/// before a large computation starts, so the user is told before minutes of work, not after.
pub fn ensure_fits(bytes: u128, what: &str) -> crate::error::Result<()> {
    if bytes < UNCHECKED_BELOW {
        return Ok(());
    }
    let Some(room) = available_bytes() else {
        return Ok(());
    };
    if bytes > room as u128 {
        return Err(crate::error::Error::OutOfMemory(format!(
            "{what} needs about {:.2} GB, but only {:.2} GB of memory is available",
            bytes as f64 / 1e9,
            room as f64 / 1e9
        )));
    }
    Ok(())
}

/// Like `large_vec`, but checked: the buffer must fit in the available memory, and an
/// allocation the allocator refuses is an `Error::OutOfMemory` instead of an abort.
pub fn try_large_vec<T>(n: usize, what: &str) -> crate::error::Result<Vec<T>> {
    let bytes = (n as u128) * (std::mem::size_of::<T>() as u128);
    ensure_fits(bytes, what)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        crate::error::Error::OutOfMemory(format!(
            "{what}: could not allocate {:.2} GB",
            bytes as f64 / 1e9
        ))
    })?;
    if bytes as usize >= HUGE_PAGE_THRESHOLD {
        advise_huge_pages(v.as_ptr() as usize, bytes as usize);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_buffer_is_an_error_not_an_abort() {
        // 2^60 bytes exceeds any machine's memory: refused by the estimate or the allocator
        let r = try_large_vec::<u8>(1usize << 60, "a test buffer");
        match r {
            Err(crate::error::Error::OutOfMemory(m)) => assert!(m.contains("a test buffer"), "{m}"),
            other => panic!(
                "expected OutOfMemory, got {:?}",
                other.map(|v| v.capacity())
            ),
        }
    }

    #[test]
    fn a_small_buffer_is_allocated_without_reading_proc() {
        let before = READS.with(|r| r.get());
        let v = try_large_vec::<f64>(1000, "small").unwrap();
        assert!(v.capacity() >= 1000);
        assert!(ensure_fits(1 << 20, "1 MB").is_ok());
        assert_eq!(READS.with(|r| r.get()), before, "small buffers read /proc");
        // above the threshold the memory available is read
        assert!(ensure_fits(UNCHECKED_BELOW, "64 MB").is_ok());
        assert_eq!(READS.with(|r| r.get()), before + 1);
    }
}
